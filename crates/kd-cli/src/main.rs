//! The `kd` command: train and distil from YAML recipes on any compiled-in Burn backend.

mod device;

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
    /// Lists the registered architectures and the compiled backends.
    List,
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
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
