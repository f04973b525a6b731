//! The `kd` command: train and distil from YAML recipes on any compiled-in Burn backend, and
//! classify `.npy` batches or images with a registry network and its weights.

mod allocator;
mod bench;
mod device;
mod predict;
mod preprocess;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use crate::device::{compiled_backends, make_device};

/// Knowledge distillation on Burn.
#[derive(Parser)]
#[command(name = "kd", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs a recipe: obtains the teacher, distils the student, reports accuracies.
    Train {
        /// The recipe file.
        recipe: PathBuf,
        /// Overrides `key.path=value` and shortcuts (`lr=0.1`, `epochs=3`, `batch_size=64`, ...).
        overrides: Vec<String>,
        /// Backend, overriding the recipe's `device` (flex, tch, wgpu, cuda).
        #[arg(long)]
        backend: Option<String>,
    },
    /// Parses a recipe and prints it after overrides, without running it.
    Check {
        /// The recipe file.
        recipe: PathBuf,
        /// Overrides `key.path=value`.
        overrides: Vec<String>,
    },
    /// Times the KD training step (teacher forward + student forward/backward + SGD step).
    Bench {
        /// Configuration: `fashion` (ResNet-18 small-stem → SmallCnn, batch 128, 1×28×28),
        /// `cifar` (ResNet-50 → ResNet-18, small-input stems, batch 64, 3×32×32), `tiny`, or `all`.
        #[arg(long, default_value = "all")]
        config: String,
        /// Backend (flex, tch, wgpu, cuda).
        #[arg(long, default_value = "flex")]
        backend: String,
        /// Untimed steps first.
        #[arg(long, default_value_t = 2)]
        warmup: usize,
        /// Timed steps per run.
        #[arg(long, default_value_t = 3)]
        steps: usize,
        /// Timed runs (the median is reported).
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Print one JSON object per configuration instead of a table.
        #[arg(long)]
        json: bool,
        /// The teacher's precision: f32, bf16 or f16.
        #[arg(long, default_value = "f32")]
        teacher_precision: String,
        /// Read the teacher's logits from a teacher cache (filled by the warm-up steps).
        #[arg(long)]
        teacher_cache: bool,
        /// The part timed: `kd` (the whole step), `student` (its training step alone, with
        /// cross-entropy) or `teacher` (its forward pass alone).
        #[arg(long, default_value = "kd")]
        part: String,
    },
    /// Times the image-folder training pipeline (JPEG decode and augmentation into host
    /// batches of 64): the rate per run, their median, and the rate per worker thread.
    BenchData {
        /// The image folder (`class_x/*.jpg|png`), for example an ImageNet `train/` split.
        #[arg(long, required_unless_present = "generate")]
        root: Option<PathBuf>,
        /// Write this many generated JPEGs (about 500×375, 10 classes) under `--root` first,
        /// or under `target/bench-data` without `--root`.
        #[arg(long)]
        generate: Option<usize>,
        /// Output size of the crop.
        #[arg(long, default_value_t = 224)]
        size: usize,
        /// Worker threads.
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// Batches per timed run.
        #[arg(long, default_value_t = 8)]
        batches: usize,
        /// Timed runs (the median is reported).
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// `standard` (RandomResizedCrop, flip, normalise) or `sg` (SuperGradients' ImageNet
        /// recipe: random interpolation and RandAugment rand-m7-mstd0.5 added).
        #[arg(long, default_value = "standard")]
        pipeline: String,
        /// Print one JSON object instead of a line of text.
        #[arg(long)]
        json: bool,
    },
    /// Classifies a `.npy` batch or image files with a registry network and its weights, in
    /// eval mode: writes the logits as a float32 `.npy` and prints each row's top classes.
    Predict {
        /// Architecture name (see `kd list`).
        #[arg(long)]
        arch: String,
        /// Arch params as `key=value` (values are YAML: `num_classes=10 layers=[1,2,1,1]`).
        #[arg(long, num_args = 1..)]
        arch_params: Vec<String>,
        /// Weights: a PyTorch `.pth`/`.pt`, a `.safetensors`, or a kd `.bpk` checkpoint.
        #[arg(long)]
        weights: PathBuf,
        /// One float32/float64 `.npy` batch `[N, C, H, W]` (used as is), or `.png`/`.jpg`
        /// images (resized, centre-cropped and normalised as the model's weights expect).
        #[arg(long, num_args = 1.., required = true)]
        input: Vec<PathBuf>,
        /// Where to write the float32 logits `[N, num_classes]` (`.npy`).
        #[arg(long)]
        output: PathBuf,
        /// Classes printed per row, with their softmax probabilities.
        #[arg(long, default_value_t = 5)]
        topk: usize,
        /// Backend (flex, tch, wgpu, cuda).
        #[arg(long, default_value = "flex")]
        backend: String,
        /// Rows per forward pass.
        #[arg(long, default_value_t = 32)]
        batch_size: usize,
    },
    /// Lists the registered architectures and the compiled backends.
    List,
    /// Prints the per-epoch table of a finished or interrupted run (and of its `teacher/` and
    /// `scratch/` runs), and refreshes its `metrics.csv` and `metrics.png`.
    Report {
        /// The run folder (`<ckpt_root_dir>/<experiment_name>`).
        run_dir: PathBuf,
    },
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Train {
            recipe,
            overrides,
            backend,
        } => {
            let recipe = kd_recipes::load_recipe(&recipe, &overrides)?;
            let backend = backend.unwrap_or_else(|| recipe.device.clone());
            let device = make_device(&backend, recipe.device_index)?;
            eprintln!(
                "kd: experiment `{}` on {backend}, run folder {}",
                recipe.experiment_name,
                recipe.ckpt_root_dir.join(&recipe.experiment_name).display()
            );
            let report = kd_recipes::run_recipe(&recipe, &device)
                .with_context(|| format!("experiment `{}` failed", recipe.experiment_name))?;
            println!("\n{}", report.table());
            Ok(())
        }
        Command::Check { recipe, overrides } => {
            let parsed = kd_recipes::load_recipe(&recipe, &overrides)?;
            println!("{parsed:#?}");
            Ok(())
        }
        Command::Bench {
            config,
            backend,
            warmup,
            steps,
            runs,
            json,
            teacher_precision,
            teacher_cache,
            part,
        } => {
            let device = make_device(&backend, None)?;
            let options = bench::StepOptions {
                part: bench::Part::parse(&part).with_context(|| {
                    format!(
                        "unknown part `{part}`; known: {}",
                        bench::Part::NAMES.join(", ")
                    )
                })?,
                teacher_precision: kd_core::Precision::parse(&teacher_precision).with_context(
                    || {
                        format!(
                            "unknown precision `{teacher_precision}`; known: {}",
                            kd_core::Precision::NAMES.join(", ")
                        )
                    },
                )?,
                teacher_cache,
            };
            let chosen: Vec<&bench::BenchConfig> = bench::CONFIGS
                .iter()
                .filter(|c| config == "all" && c.name != "tiny" || c.name == config)
                .collect();
            if chosen.is_empty() {
                anyhow::bail!(
                    "unknown bench configuration `{config}`; known: all, {}",
                    bench::CONFIGS
                        .iter()
                        .map(|c| c.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            for c in chosen {
                let mut rates = bench::run(c, &device, warmup, steps, runs, options)?;
                rates.sort_by(f64::total_cmp);
                let median = rates[rates.len() / 2];
                let rss = bench::peak_rss_mib();
                if json {
                    println!(
                        "{}",
                        serde_json::json!({
                            "framework": "kd",
                            "backend": backend,
                            "config": c.name,
                            "batch": c.batch,
                            "part": part,
                            "teacher_precision": teacher_precision,
                            "teacher_cache": teacher_cache,
                            "img_per_s": rates,
                            "median_img_per_s": median,
                            "peak_rss_mib": rss,
                        })
                    );
                } else {
                    println!(
                        "{:<8} {} -> {} batch {}: {median:.1} img/s (median of {runs}), peak RSS {:.0} MiB",
                        c.name,
                        c.teacher.0,
                        c.student.0,
                        c.batch,
                        rss.unwrap_or(f64::NAN)
                    );
                }
            }
            Ok(())
        }
        Command::BenchData {
            root,
            generate,
            size,
            threads,
            batches,
            runs,
            pipeline,
            json,
        } => {
            let kind = kd_data::BenchPipeline::parse(&pipeline).with_context(|| {
                format!(
                    "unknown pipeline `{pipeline}`; known: {}",
                    kd_data::BenchPipeline::NAMES.join(", ")
                )
            })?;
            let root = root.unwrap_or_else(|| PathBuf::from("target/bench-data"));
            if let Some(n) = generate {
                kd_data::write_bench_jpegs(&root, n, 10)?;
                eprintln!("wrote {n} JPEGs under {}", root.display());
            }
            anyhow::ensure!(
                runs > 0 && batches > 0,
                "--runs and --batches must be at least 1"
            );
            let mut rates = Vec::with_capacity(runs);
            for _ in 0..runs {
                rates.push(kd_data::bench_image_folder(
                    &root, size, threads, batches, kind,
                )?);
            }
            let mut sorted = rates.clone();
            sorted.sort_by(f64::total_cmp);
            let median = sorted[sorted.len() / 2];
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "framework": "kd",
                        "pipeline": pipeline,
                        "size": size,
                        "threads": threads,
                        "img_per_s": rates,
                        "median_img_per_s": median,
                        "per_thread": median / threads.max(1) as f64,
                    })
                );
            } else {
                println!(
                    "{pipeline} pipeline at {size}, {threads} thread(s): {median:.1} img/s (median of {runs}), {:.1} img/s per thread",
                    median / threads.max(1) as f64
                );
            }
            Ok(())
        }
        Command::Report { run_dir } => {
            let mut found = false;
            for dir in [
                run_dir.join("teacher"),
                run_dir.join("scratch"),
                run_dir.clone(),
            ] {
                if dir.join("metrics.jsonl").is_file() {
                    found = true;
                    kd_trainer::refresh_run_files(&dir)?;
                    println!("{}", kd_trainer::summary(&dir)?);
                }
            }
            if !found {
                anyhow::bail!(
                    "{} holds no metrics.jsonl (nor teacher/ or scratch/ runs): give a run folder such as runs/<experiment_name>",
                    run_dir.display()
                );
            }
            Ok(())
        }
        Command::Predict {
            arch,
            arch_params,
            weights,
            input,
            output,
            topk,
            backend,
            batch_size,
        } => predict::run(&predict::PredictArgs {
            arch,
            arch_params,
            weights,
            inputs: input,
            output,
            topk,
            backend,
            batch_size,
        }),
        Command::List => {
            println!("architectures:");
            for (name, _, about) in kd_recipes::ARCHITECTURES {
                println!("  {name:<12} {about}");
            }
            println!("dataloaders:");
            for (name, _, _) in kd_recipes::DATALOADERS {
                println!("  {name}");
            }
            println!("backends compiled in: {}", compiled_backends().join(", "));
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    allocator::tune();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
