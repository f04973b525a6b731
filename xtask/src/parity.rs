//! `cargo xtask parity`: full-size models in kd and in PyTorch/timm, logits compared.
//!
//! 1. `tools/reference/export_models.py --full DIR` and `tools/reference/export_beit.py --full
//!    DIR` write seeded random weights, an input batch and the reference logits of resnet18,
//!    resnet50 (torchvision), resnet32x4, wrn_40_2 (CRD) and beit_base_patch16_224 (timm) into
//!    `DIR = <target dir>/parity`.
//! 2. For each model, the input goes to an `.npy` file and the dev-profile `kd predict` (through
//!    `cargo run`, with the target dir of the tests) writes kd's logits.
//! 3. A markdown table gives `max |kd - torch| / max |torch|`, kd's forward time (from `kd
//!    predict`'s report) and PyTorch's (from the io file's metadata); any error above
//!    [`TOLERANCE`] fails the task.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use kd_data::npy::{NpyArray, read_npy, write_npy};

use crate::{kd_command, root, run};

/// Largest accepted `max |kd - torch| / max |torch|`.
pub const TOLERANCE: f64 = 1e-4;

/// One model of the comparison.
struct Model {
    /// File stem of the exported files and row name of the table.
    name: &'static str,
    /// Weights file written by the export script.
    weights: &'static str,
    /// `--arch-params` of `kd predict`.
    arch_params: &'static [&'static str],
}

const MODELS: [Model; 5] = [
    Model {
        name: "resnet18",
        weights: "resnet18.pth",
        arch_params: &["num_classes=1000"],
    },
    Model {
        name: "resnet50",
        weights: "resnet50.pth",
        arch_params: &["num_classes=1000"],
    },
    Model {
        name: "resnet32x4",
        weights: "resnet32x4.pth",
        arch_params: &["num_classes=100"],
    },
    Model {
        name: "wrn_40_2",
        weights: "wrn_40_2.pth",
        arch_params: &["num_classes=100"],
    },
    Model {
        name: "beit_base_patch16_224",
        weights: "beit_base_patch16_224.safetensors",
        arch_params: &[],
    },
];

/// The reference Python: `$KD_REFENV` (a venv folder or its python), else `~/.kd-refenv`.
fn reference_python() -> Result<PathBuf> {
    let how = "create it with `python3 -m venv ~/.kd-refenv && ~/.kd-refenv/bin/pip install torch==2.9.0 torchvision==0.24.0 timm safetensors numpy`, or point $KD_REFENV at an existing one";
    let candidate = match std::env::var_os("KD_REFENV") {
        Some(v) => {
            let p = PathBuf::from(v);
            if p.is_dir() { p.join("bin/python") } else { p }
        }
        None => {
            let home = std::env::var_os("HOME").context("HOME is not set")?;
            PathBuf::from(home).join(".kd-refenv/bin/python")
        }
    };
    if !candidate.is_file() {
        bail!(
            "the Python reference environment is missing (no `{}`): {how}",
            candidate.display()
        );
    }
    Ok(candidate)
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

/// The input, the reference logits and the metadata of an exported io file.
struct IoFile {
    input: NpyArray,
    logits: NpyArray,
    params: Option<String>,
    torch_seconds: Option<f64>,
}

fn read_io(path: &Path) -> Result<IoFile> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read `{}`", path.display()))?;
    let st = safetensors::SafeTensors::deserialize(&bytes)
        .with_context(|| format!("`{}` is not a safetensors file", path.display()))?;
    let tensor = |key: &str| -> Result<NpyArray> {
        let view = st
            .tensor(key)
            .with_context(|| format!("`{}` has no tensor `{key}`", path.display()))?;
        if view.dtype() != safetensors::Dtype::F32 {
            bail!(
                "`{}`: `{key}` is {:?}, expected F32",
                path.display(),
                view.dtype()
            );
        }
        let data = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Ok(NpyArray::new(view.shape().to_vec(), data)?)
    };
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes)?;
    let meta = header.metadata().clone().unwrap_or_default();
    Ok(IoFile {
        input: tensor("input")?,
        logits: tensor("logits")?,
        params: meta.get("params").cloned(),
        torch_seconds: meta.get("torch_seconds").and_then(|s| s.parse().ok()),
    })
}

/// `max |got - want| / max |want|`, in f64.
fn max_rel_error(got: &[f32], want: &[f32]) -> f64 {
    let scale = want.iter().fold(0.0f64, |m, w| m.max(f64::from(w.abs())));
    let diff = got
        .iter()
        .zip(want)
        .fold(0.0f64, |m, (g, w)| m.max(f64::from((g - w).abs())));
    diff / scale.max(f64::MIN_POSITIVE)
}

/// The seconds of `kd predict: forward of N rows on B in X s` in its stderr.
fn kd_forward_seconds(stderr: &str) -> Option<f64> {
    stderr
        .lines()
        .find_map(|l| l.strip_prefix("kd predict: forward of "))
        .and_then(|rest| rest.rsplit_once(" in "))
        .and_then(|(_, t)| t.trim_end_matches(" s").trim().parse().ok())
}

/// Thousands separated by commas: `11689512` is `11,689,512`.
fn group(n: &str) -> String {
    let mut out = String::new();
    for (i, c) in n.chars().enumerate() {
        if i > 0 && (n.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Runs the comparison (see the module docs).
pub fn parity(args: Vec<String>) -> Result<()> {
    if !args.is_empty() {
        bail!("`cargo xtask parity` takes no arguments, got {args:?}");
    }
    let started = Instant::now();
    let python = reference_python()?;
    let dir = target_dir().join("parity");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
    for script in [
        "tools/reference/export_models.py",
        "tools/reference/export_beit.py",
    ] {
        eprintln!("parity: {script} --full {}", dir.display());
        let mut c = Command::new(&python);
        c.current_dir(root()).arg(script).arg("--full").arg(&dir);
        run(c)?;
    }
    let mut rows = Vec::new();
    let mut failed = Vec::new();
    for model in &MODELS {
        let io = read_io(&dir.join(format!("{}.io.safetensors", model.name)))?;
        let input = dir.join(format!("{}.input.npy", model.name));
        let output = dir.join(format!("{}.kd.npy", model.name));
        write_npy(&input, &io.input)?;
        let mut c = kd_command(None);
        c.args(["predict", "--arch", model.name, "--weights"])
            .arg(dir.join(model.weights))
            .arg("--input")
            .arg(&input)
            .arg("--output")
            .arg(&output)
            .args(["--topk", "1"]);
        if !model.arch_params.is_empty() {
            c.arg("--arch-params").args(model.arch_params);
        }
        eprintln!("parity: kd predict --arch {}", model.name);
        let shown = format!("{c:?}");
        let out = c
            .output()
            .with_context(|| format!("cannot start {shown}"))?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            bail!("{shown} failed with {}:\n{stderr}", out.status);
        }
        // The load report (applied, missing, ignored keys) and the forward time.
        eprint!("{stderr}");
        let got = read_npy(&output)?;
        if got.shape != io.logits.shape {
            bail!(
                "{}: kd wrote logits of shape {:?}, PyTorch {:?}",
                model.name,
                got.shape,
                io.logits.shape
            );
        }
        let err = max_rel_error(&got.data, &io.logits.data);
        if err.is_nan() || err > TOLERANCE {
            failed.push(format!("{} ({err:.2e})", model.name));
        }
        let secs = |s: Option<f64>| s.map_or("?".to_string(), |s| format!("{s:.3}"));
        rows.push(format!(
            "| {} | {} | {err:.2e} | {} | {} |",
            model.name,
            io.params.as_deref().map_or("?".to_string(), group),
            secs(kd_forward_seconds(&stderr)),
            secs(io.torch_seconds),
        ));
    }
    println!("\n| model | params | max rel error | kd s | torch s |");
    println!("|---|---:|---:|---:|---:|");
    for row in rows {
        println!("{row}");
    }
    println!(
        "\nmax rel error = max |kd - torch| / max |torch| over the logits of a [2, 3, H, W] batch; \
         kd s and torch s are one eval forward pass (kd: dev profile, flex); total {:.0} s",
        started.elapsed().as_secs_f64()
    );
    if !failed.is_empty() {
        bail!(
            "max rel error above {TOLERANCE:e} for {}: compare the model with its reference in tools/reference/",
            failed.join(", ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(group("11689512"), "11,689,512");
        assert_eq!(group("999"), "999");
        assert_eq!(group("1000"), "1,000");
        assert_eq!(
            kd_forward_seconds(
                "model: loaded x\nkd predict: forward of 2 rows on flex in 1.250 s\n"
            ),
            Some(1.25)
        );
        assert_eq!(kd_forward_seconds("nothing"), None);
        assert!((max_rel_error(&[1.0, 2.1], &[1.0, 2.0]) - 0.05).abs() < 1e-6);
    }
}
