//! Recipes for kd: SuperGradients-style YAML, the model registry, and recipe → run.
//!
//! A recipe uses SuperGradients' KD keys (`student_architecture`, `teacher_arch_params`,
//! `training_hyperparams`, `dataset_params`, ...), plus `device`. Every key is typed: an
//! unknown key, a wrong type or an unknown name is an error naming the key (and its line)
//! with a did-you-mean. Command-line overrides are `key.path=value`, with SuperGradients'
//! shortcuts `lr`, `batch_size`, `val_batch_size`, `epochs`, `resume` and `num_workers`.
//!
//! ```
//! let text = "
//! experiment_name: demo
//! student_architecture: small_cnn
//! teacher_architecture: resnet18
//! training_hyperparams: {max_epochs: 2, initial_lr: 0.1, loss: KdLogitsLoss}
//! dataset_params: {}
//! ";
//! let recipe = kd_recipes::parse_recipe(text, "demo.yaml", &["epochs=5".to_string()]).unwrap();
//! assert_eq!(recipe.training_hyperparams.max_epochs, 5);
//!
//! let err = kd_recipes::parse_recipe(&text.replace("max_epochs", "max_epocs"), "demo.yaml", &[])
//!     .unwrap_err()
//!     .to_string();
//! assert!(err.contains("did you mean `max_epochs`"), "{err}");
//! ```

mod data;
mod error;
mod load;
mod losses;
pub mod registry;
mod run;
pub mod schema;
mod weights;

pub use data::{DATALOADERS, build_loaders, build_loaders_from, dataset_location, transforms};
pub use error::RecipeError;
pub use load::{SHORTCUTS, apply_override, load_recipe, parse_recipe};
pub use losses::{
    DISTILLATION_LOSS, build_distillation_loss, distillation_config, is_distillation_loss,
    tap_shapes,
};
pub use registry::{ARCHITECTURES, Network};
pub use run::{ReportRow, RunReport, check_recipe, run_recipe, training_params};
pub use schema::Recipe;
pub use weights::{build_network, checkpoint_file, strict_load};
