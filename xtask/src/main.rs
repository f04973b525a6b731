//! `cargo xtask`: the project's tasks, each a thin wrapper over cargo.
//!
//! - `cargo xtask train [--recipe FILE] [--features F] [key=value ...]`: runs a recipe
//!   (default `recipes/fashion_mnist/default.yaml`, the main job).
//! - `cargo xtask test`: the test suite (fmt, clippy, every crate's tests and doctests).
//! - `cargo xtask bench [--runs N] [--config C]`: the KD step in kd and in PyTorch, side by side.
//! - `cargo xtask compare [--recipes A,B] [--seeds N] [--epochs E]`: runs recipes for several
//!   seeds on a short schedule and writes a table to `docs/results.md`.
//! - `cargo xtask data fashion-mnist`: installs Fashion-MNIST with apt.
//! - `cargo xtask parity`: full-size models in kd and in PyTorch/timm, logits compared.

mod bench_data;
mod parity;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};

mod compare;

const DEFAULT_RECIPE: &str = "recipes/fashion_mnist/default.yaml";
pub(crate) const USAGE: &str =
    "usage: cargo xtask <train|test|bench|bench-data|compare|parity|data> [args]

  train [--recipe FILE] [--features F] [--backend B] [key=value ...]
        run a recipe (default: recipes/fashion_mnist/default.yaml, the main job)
  test  [--no-lint]
        cargo fmt --check, clippy -D warnings, and every test of the workspace
  bench [--config all|fashion|cifar] [--runs N] [--features F] [--backend B] [--python PY]
        [--part kd|student|teacher] [--teacher-cache] [--teacher-precision f32|bf16|f16]
        time the KD step (or the student's step, or the teacher's forward pass) in kd and in
        PyTorch (interleaved runs) and print the ratio; the last two options change kd's side
  bench-data [--images N] [--root DIR] [--threads 1,2] [--pipelines standard,sg] [--runs N]
        time the image-folder pipeline (JPEG decode, RandomResizedCrop 224, flip, normalise;
        `sg` adds SuperGradients' RandAugment) in kd and in a PyTorch DataLoader on the same
        files and thread counts
  compare [--recipes A.yaml,B.yaml] [--seeds N] [--epochs E] [--teacher BPK] [--out FILE]
        run distillation recipes for N seeds (default 2) on a short schedule (default 3
        epochs) with one shared teacher, and write mean ± std of the best and last
        validation accuracy to docs/results.md
  data  fashion-mnist
        install the dataset with apt (package dataset-fashion-mnist)
  parity
        full-size resnet18, resnet50, resnet32x4, wrn_40_2 and beit_base_patch16_224 with
        random weights: kd predict against PyTorch/timm (needs ~/.kd-refenv or $KD_REFENV)";

pub(crate) fn root() -> PathBuf {
    // At run time first: a target folder shared by several checkouts may hold another
    // checkout's xtask binary.
    let manifest =
        std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into());
    Path::new(&manifest)
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    c
}

pub(crate) fn run(mut cmd: Command) -> Result<()> {
    let shown = format!("{cmd:?}");
    let status = cmd
        .status()
        .with_context(|| format!("cannot start {shown}"))?;
    if !status.success() {
        bail!("{shown} failed with {status}");
    }
    Ok(())
}

/// Splits `--flag value` options from the other arguments.
pub(crate) fn take_opt(args: &mut Vec<String>, flag: &str) -> Option<String> {
    let i = args.iter().position(|a| a == flag)?;
    if i + 1 < args.len() {
        let v = args.remove(i + 1);
        args.remove(i);
        Some(v)
    } else {
        None
    }
}

fn take_flag(args: &mut Vec<String>, flag: &str) -> bool {
    let found = args.iter().any(|a| a == flag);
    args.retain(|a| a != flag);
    found
}

/// The Python of the reference environment (`~/.kd-refenv`) when it exists, else `python3`.
pub(crate) fn python_for_reference() -> String {
    let venv = std::env::var("HOME")
        .map(|h| format!("{h}/.kd-refenv/bin/python"))
        .unwrap_or_default();
    if Path::new(&venv).exists() {
        venv
    } else {
        "python3".into()
    }
}

/// The `kd` binary `cargo build -p kd-cli` writes (dev profile).
pub(crate) fn kd_binary() -> PathBuf {
    std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root().join("target"))
        .join("debug")
        .join("kd")
}

pub(crate) fn kd_command(features: Option<&str>) -> Command {
    let mut c = cargo();
    c.args(["run", "--quiet", "--package", "kd-cli", "--bin", "kd"]);
    if let Some(f) = features {
        c.args(["--features", f]);
    }
    c.arg("--");
    c
}

fn train(mut args: Vec<String>) -> Result<()> {
    let recipe = take_opt(&mut args, "--recipe").unwrap_or_else(|| DEFAULT_RECIPE.into());
    let features = take_opt(&mut args, "--features");
    let backend = take_opt(&mut args, "--backend");
    let mut c = kd_command(features.as_deref());
    c.arg("train").arg(&recipe).args(&args);
    if let Some(b) = backend {
        c.args(["--backend", &b]);
    }
    run(c)
}

fn test(mut args: Vec<String>) -> Result<()> {
    let no_lint = take_flag(&mut args, "--no-lint");
    if !no_lint {
        let mut fmt = cargo();
        fmt.args(["fmt", "--all", "--", "--check"]);
        run(fmt)?;
        let mut clippy = cargo();
        clippy.args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]);
        run(clippy)?;
    }
    let mut t = cargo();
    t.args(["test", "--workspace", "--no-fail-fast"])
        .args(&args);
    run(t)
}

fn bench(mut args: Vec<String>) -> Result<()> {
    let config = take_opt(&mut args, "--config").unwrap_or_else(|| "all".into());
    let runs: usize = take_opt(&mut args, "--runs")
        .map_or(Ok(5), |r| r.parse())
        .context("--runs takes a number")?;
    let features = take_opt(&mut args, "--features");
    let backend = take_opt(&mut args, "--backend").unwrap_or_else(|| "flex".into());
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "2".into());
    let python = take_opt(&mut args, "--python").unwrap_or_else(python_for_reference);
    let teacher_cache = take_flag(&mut args, "--teacher-cache");
    let teacher_precision = take_opt(&mut args, "--teacher-precision");
    let part = take_opt(&mut args, "--part").unwrap_or_else(|| "kd".into());
    if !args.is_empty() {
        bail!("unexpected arguments {args:?}\n{USAGE}");
    }
    // Build once, then interleave single-run processes of both frameworks.
    let mut build = cargo();
    build.args(["build", "--quiet", "--package", "kd-cli", "--bin", "kd"]);
    if let Some(f) = &features {
        build.args(["--features", f]);
    }
    run(build)?;
    let kd_bin = kd_binary();
    let configs: Vec<&str> = if config == "all" {
        vec!["fashion", "cifar"]
    } else {
        vec![config.as_str()]
    };
    println!(
        "kd bench ({part} step): {runs} interleaved runs per framework, {threads} threads, backend {backend}{}{}",
        if teacher_cache {
            "; kd reads the teacher's logits from its cache (PyTorch runs the teacher)"
        } else {
            ""
        },
        teacher_precision
            .as_deref()
            .map(|p| format!("; kd's teacher in {p}"))
            .unwrap_or_default()
    );
    for cfg in configs {
        let mut kd = Vec::new();
        let mut pt = Vec::new();
        for _ in 0..runs {
            let mut c = Command::new(&kd_bin);
            c.current_dir(root())
                .env("RAYON_NUM_THREADS", &threads)
                .args([
                    "bench",
                    "--config",
                    cfg,
                    "--backend",
                    &backend,
                    "--runs",
                    "1",
                    "--json",
                    "--part",
                    &part,
                ]);
            if teacher_cache {
                c.arg("--teacher-cache");
            }
            if let Some(p) = &teacher_precision {
                c.args(["--teacher-precision", p]);
            }
            kd.push(json_line(c)?);
            let mut p = Command::new(&python);
            p.current_dir(root()).args([
                "bench/pytorch_kd_step.py",
                "--config",
                cfg,
                "--runs",
                "1",
                "--threads",
                &threads,
                "--part",
                &part,
            ]);
            pt.push(json_line(p)?);
        }
        let med = |v: &[(f64, f64)], i: usize| {
            let mut x: Vec<f64> = v.iter().map(|r| if i == 0 { r.0 } else { r.1 }).collect();
            x.sort_by(f64::total_cmp);
            x[x.len() / 2]
        };
        let (k, p) = (med(&kd, 0), med(&pt, 0));
        println!(
            "{cfg:<8} kd {k:>8.1} img/s (peak {:>5.0} MiB) | pytorch {p:>8.1} img/s (peak {:>5.0} MiB) | ratio {:.2}x",
            med(&kd, 1),
            med(&pt, 1),
            k / p
        );
    }
    Ok(())
}

/// Runs a benchmark process and returns (median img/s, peak RSS MiB) from its JSON line.
pub(crate) fn json_line(mut cmd: Command) -> Result<(f64, f64)> {
    let shown = format!("{cmd:?}");
    let out = cmd
        .output()
        .with_context(|| format!("cannot start {shown}"))?;
    if !out.status.success() {
        bail!("{shown} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .with_context(|| format!("{shown} printed no JSON"))?;
    let field = |name: &str| -> Option<f64> {
        let i = line.find(&format!("\"{name}\":"))? + name.len() + 3;
        let rest = &line[i..];
        let end = rest.find([',', '}']).unwrap_or(rest.len());
        rest[..end].trim().parse().ok()
    };
    Ok((
        field("median_img_per_s").with_context(|| format!("no median in {line}"))?,
        field("peak_rss_mib").unwrap_or(f64::NAN),
    ))
}

fn data(args: Vec<String>) -> Result<()> {
    match args.first().map(String::as_str) {
        Some("fashion-mnist") => {
            if Path::new("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz").exists() {
                println!("fashion-mnist is already installed in /usr/share/datasets/fashion-mnist");
                return Ok(());
            }
            if Command::new("apt-get").arg("--version").output().is_err() {
                bail!(
                    "apt-get is not available: download the four files from https://github.com/zalandoresearch/fashion-mnist into ./data/fashion-mnist"
                );
            }
            let mut c = Command::new("apt-get");
            c.args(["install", "-y", "dataset-fashion-mnist"]);
            run(c)
        }
        _ => bail!("usage: cargo xtask data fashion-mnist"),
    }
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        args.push("train".into());
    }
    let task = args.remove(0);
    let result = match task.as_str() {
        "train" => train(args),
        "test" => test(args),
        "bench" => bench(args),
        "bench-data" => bench_data::bench_data(args),
        "compare" => compare::compare(args),
        "data" => data(args),
        "parity" => parity::parity(args),
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            Ok(())
        }
        other => Err(anyhow::anyhow!("unknown task `{other}`\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
