//! `cargo xtask bench-data`: the image-folder pipeline in kd and in PyTorch, same files, same
//! thread counts, interleaved runs.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::{USAGE, cargo, json_line, kd_binary, python_for_reference, root, run, take_opt};

pub(crate) fn bench_data(mut args: Vec<String>) -> Result<()> {
    let images: usize = take_opt(&mut args, "--images")
        .map_or(Ok(512), |v| v.parse())
        .context("--images takes a number")?;
    let size = take_opt(&mut args, "--size").unwrap_or_else(|| "224".into());
    let runs: usize = take_opt(&mut args, "--runs")
        .map_or(Ok(3), |v| v.parse())
        .context("--runs takes a number")?;
    let all = std::thread::available_parallelism().map_or(2, |n| n.get());
    let threads: Vec<usize> = take_opt(&mut args, "--threads")
        .unwrap_or_else(|| format!("1,{all}"))
        .split(',')
        .map(|t| {
            t.trim()
                .parse()
                .context("--threads takes numbers such as 1,2")
        })
        .collect::<Result<_>>()?;
    let pipelines = take_opt(&mut args, "--pipelines").unwrap_or_else(|| "standard,sg".into());
    let python = take_opt(&mut args, "--python").unwrap_or_else(python_for_reference);
    let given_root = take_opt(&mut args, "--root").map(PathBuf::from);
    if !args.is_empty() {
        bail!("unexpected arguments {args:?}\n{USAGE}");
    }

    let mut build = cargo();
    build.args(["build", "--quiet", "--package", "kd-cli", "--bin", "kd"]);
    run(build)?;
    let kd_bin = kd_binary();

    // The same JPEG files for both frameworks: a given folder, or generated ones kept
    // between runs.
    let (folder, count) = match given_root {
        Some(dir) => {
            let n = count_images(&dir)?;
            (dir, n)
        }
        None => {
            let dir = kd_bin
                .parent()
                .and_then(Path::parent)
                .unwrap_or(Path::new("target"))
                .join(format!("bench-data/jpegs-{images}"));
            let done = dir.join(".complete");
            if !done.is_file() {
                let mut c = Command::new(&kd_bin);
                c.current_dir(root()).args([
                    "bench-data",
                    "--root",
                    &dir.to_string_lossy(),
                    "--generate",
                    &images.to_string(),
                    "--size",
                    "32",
                    "--runs",
                    "1",
                    "--batches",
                    "1",
                ]);
                let out = c.output().context("cannot run kd bench-data --generate")?;
                if !out.status.success() {
                    bail!(
                        "generating the JPEGs failed: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
                std::fs::write(&done, b"")
                    .with_context(|| format!("cannot write {}", done.display()))?;
            }
            (dir, images)
        }
    };
    let batches = count.div_ceil(64).max(1).to_string();
    println!(
        "kd bench-data: {count} JPEGs in {}, crops of {size}, batch 64, {runs} interleaved runs per framework (one epoch each)",
        folder.display()
    );
    println!(
        "{:<9} {:>7} {:>12} {:>12} {:>14} {:>14} {:>7}",
        "pipeline", "threads", "kd img/s", "per thread", "pytorch img/s", "per thread", "ratio"
    );
    for pipeline in pipelines.split(',').map(str::trim) {
        for &t in &threads {
            let (mut kd, mut pt) = (Vec::new(), Vec::new());
            for _ in 0..runs {
                let mut c = Command::new(&kd_bin);
                c.current_dir(root()).args([
                    "bench-data",
                    "--root",
                    &folder.to_string_lossy(),
                    "--size",
                    &size,
                    "--threads",
                    &t.to_string(),
                    "--batches",
                    &batches,
                    "--runs",
                    "1",
                    "--pipeline",
                    pipeline,
                    "--json",
                ]);
                kd.push(json_line(c)?.0);
                let mut p = Command::new(&python);
                p.current_dir(root()).args([
                    "bench/pytorch_data.py",
                    "--root",
                    &folder.to_string_lossy(),
                    "--size",
                    &size,
                    "--threads",
                    &t.to_string(),
                    "--runs",
                    "1",
                    "--pipeline",
                    pipeline,
                ]);
                pt.push(json_line(p)?.0);
            }
            let (k, p) = (median(&mut kd), median(&mut pt));
            println!(
                "{pipeline:<9} {t:>7} {k:>12.1} {:>12.1} {p:>14.1} {:>14.1} {:>6.2}x",
                k / t.max(1) as f64,
                p / t.max(1) as f64,
                k / p
            );
        }
    }
    Ok(())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The number of image files in the class folders of `dir`.
fn count_images(dir: &Path) -> Result<usize> {
    let mut n = 0;
    for class in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let class = class?.path();
        if class.is_dir() {
            n += std::fs::read_dir(&class)?
                .filter_map(|e| e.ok())
                .filter(|e| {
                    e.path().extension().is_some_and(|x| {
                        ["jpg", "jpeg", "png"]
                            .contains(&x.to_string_lossy().to_lowercase().as_str())
                    })
                })
                .count();
        }
    }
    if n == 0 {
        bail!(
            "{} holds no class folders of .jpg/.png images",
            dir.display()
        );
    }
    Ok(n)
}
