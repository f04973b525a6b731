//! `cargo xtask compare`: distillation methods side by side on a short schedule.
//!
//! Every recipe runs once per seed (`training_hyperparams.seed`), with the same teacher
//! checkpoint, `max_epochs` cut to the given count and no scratch baseline, except
//! `default.yaml`, whose scratch baseline is the "student alone" row. Accuracies are read
//! from each run's `metrics.jsonl`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use std::process::Command;

use crate::{cargo, root, run, take_opt};

const DEFAULT_TEACHER: &str = "runs/fashion_mnist_kd/teacher/ckpt_best.bpk";
const RECIPE_DIR: &str = "recipes/fashion_mnist";

/// Best and last validation top-1 of one run.
struct Outcome {
    best: f64,
    last: f64,
}

fn read_outcome(metrics: &Path) -> Result<Outcome> {
    let text = std::fs::read_to_string(metrics)
        .with_context(|| format!("cannot read {}", metrics.display()))?;
    let accs: Vec<f64> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l)
                .with_context(|| format!("{}: not a JSON line", metrics.display()))?;
            v["valid"]["Accuracy"]
                .as_f64()
                .with_context(|| format!("{}: no valid.Accuracy", metrics.display()))
        })
        .collect::<Result<_>>()?;
    let (Some(&last), Some(best)) = (accs.last(), accs.iter().copied().reduce(f64::max)) else {
        bail!("{} holds no epoch", metrics.display());
    };
    Ok(Outcome { best, last })
}

fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = if values.len() > 1 {
        values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var.sqrt())
}

fn recipes(arg: Option<String>) -> Result<Vec<PathBuf>> {
    if let Some(list) = arg {
        return Ok(list.split(',').map(PathBuf::from).collect());
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join(RECIPE_DIR))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    Ok(files)
}

/// Runs the comparison (see the module docs).
pub fn compare(mut args: Vec<String>) -> Result<()> {
    let seeds: u64 = take_opt(&mut args, "--seeds").map_or(Ok(2), |s| s.parse())?;
    let epochs: usize = take_opt(&mut args, "--epochs").map_or(Ok(3), |s| s.parse())?;
    let teacher = take_opt(&mut args, "--teacher").unwrap_or_else(|| DEFAULT_TEACHER.into());
    let out = take_opt(&mut args, "--out").unwrap_or_else(|| "docs/results.md".into());
    let files = recipes(take_opt(&mut args, "--recipes"))?;
    if !args.is_empty() {
        bail!("unexpected arguments {args:?}: see `cargo xtask help`");
    }
    if !root().join(&teacher).is_file() {
        bail!(
            "teacher checkpoint {teacher} not found: run `cargo xtask train` once (it trains and keeps the teacher), or pass --teacher"
        );
    }
    // One build, then a copy of the binary: edits made while the comparison runs do not
    // change the program half-way.
    let mut build = cargo();
    build.args(["build", "--quiet", "--package", "kd-cli", "--bin", "kd"]);
    run(build)?;
    let target =
        std::env::var("CARGO_TARGET_DIR").map_or_else(|_| root().join("target"), PathBuf::from);
    let kd = target.join("compare-kd");
    std::fs::copy(target.join("debug/kd"), &kd)
        .with_context(|| format!("cannot copy the kd binary to {}", kd.display()))?;
    let started = Instant::now();
    // (label, best accuracies, last accuracies, seconds per run)
    let mut rows: Vec<(String, Vec<f64>, Vec<f64>, f64)> = Vec::new();
    let mut scratch = (Vec::new(), Vec::new(), 0.0);
    for file in &files {
        let stem = file
            .file_stem()
            .and_then(|s| s.to_str())
            .context("recipe without a name")?
            .to_string();
        let is_default = stem == "default";
        let (mut best, mut last, mut seconds) = (Vec::new(), Vec::new(), 0.0);
        for seed in 0..seeds {
            let experiment = format!("compare_{stem}_seed{seed}");
            let run_dir = root().join("runs").join(&experiment);
            let _ = std::fs::remove_dir_all(&run_dir);
            eprintln!("== {stem}, seed {seed}");
            let t = Instant::now();
            let mut c = Command::new(&kd);
            c.current_dir(root());
            c.arg("train").arg(file).args([
                format!("experiment_name={experiment}"),
                format!("training_hyperparams.seed={seed}"),
                format!("training_hyperparams.max_epochs={epochs}"),
                format!("teacher_checkpoint_params.checkpoint_path={teacher}"),
                format!("scratch_baseline={is_default}"),
            ]);
            run(c)?;
            seconds += t.elapsed().as_secs_f64();
            let o = read_outcome(&run_dir.join("metrics.jsonl"))?;
            best.push(o.best);
            last.push(o.last);
            if is_default {
                let s = read_outcome(&run_dir.join("scratch/metrics.jsonl"))?;
                scratch.0.push(s.best);
                scratch.1.push(s.last);
            }
        }
        let label = if is_default {
            "KdLogitsLoss (default.yaml)".to_string()
        } else {
            stem
        };
        rows.push((label, best, last, seconds / seeds as f64));
    }
    let total = started.elapsed().as_secs_f64();
    let mut md = String::new();
    writeln!(md, "# Distillation methods compared on Fashion-MNIST\n")?;
    writeln!(
        md,
        "Written by `cargo xtask compare --seeds {seeds} --epochs {epochs}` in {:.1} min on this machine (flex backend). Each recipe of `{RECIPE_DIR}` ran once per seed (0..{seeds}) for {epochs} epochs with the teacher `{teacher}`; the student is small_cnn 16/32/64 on the 3,000-image transfer set, accuracy on 5,000 test images. Best = best epoch, last = final epoch; mean ± sample standard deviation over seeds. Short schedules rank methods only roughly: feature losses with paper weights may need the full schedule.\n",
        total / 60.0
    )?;
    writeln!(md, "| method | best top-1 | last top-1 | s per run |")?;
    writeln!(md, "|---|---:|---:|---:|")?;
    let fmt = |v: &[f64]| {
        let (m, s) = mean_std(v);
        format!("{:.2} ± {:.2}%", 100.0 * m, 100.0 * s)
    };
    if !scratch.0.is_empty() {
        writeln!(
            md,
            "| student alone (scratch) | {} | {} | – |",
            fmt(&scratch.0),
            fmt(&scratch.1)
        )?;
    }
    for (label, best, last, secs) in &rows {
        writeln!(
            md,
            "| {label} | {} | {} | {secs:.0} |",
            fmt(best),
            fmt(last)
        )?;
    }
    let path = root().join(&out);
    std::fs::write(&path, &md).with_context(|| format!("cannot write {}", path.display()))?;
    println!("{md}");
    eprintln!("wrote {}", path.display());
    Ok(())
}
