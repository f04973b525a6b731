//! The recipe schema: SuperGradients' KD recipe keys as typed structs.
//!
//! Every struct rejects unknown keys. kd's own additions are marked "kd extension".

use std::path::PathBuf;

use serde::Deserialize;

/// A KD (or plain training) recipe.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    /// Name of the run; the run folder is `<ckpt_root_dir>/<experiment_name>`.
    pub experiment_name: String,
    /// Where run folders go (default `runs`).
    #[serde(default = "default_ckpt_root")]
    pub ckpt_root_dir: PathBuf,
    /// The backend: `flex` (CPU, default), `tch`, `wgpu` or `cuda` (`cpu` means `flex`).
    #[serde(default = "default_device")]
    pub device: String,
    /// Which GPU (for `cuda`, `tch` on CUDA) — kd extension.
    #[serde(default)]
    pub device_index: Option<usize>,
    /// SuperGradients' `multi_gpu`; only `Off` (or absent) is supported.
    #[serde(default)]
    pub multi_gpu: Option<String>,
    /// SuperGradients' `num_gpus`; only 1 is supported.
    #[serde(default)]
    pub num_gpus: Option<usize>,
    /// The KD module (`kd_module`, the default).
    #[serde(default)]
    pub architecture: Option<String>,
    /// The student's registry name.
    pub student_architecture: String,
    /// The teacher's registry name; absent for plain training of the student.
    #[serde(default)]
    pub teacher_architecture: Option<String>,
    /// Arguments of the student's constructor.
    #[serde(default)]
    pub student_arch_params: serde_yaml::Mapping,
    /// Arguments of the teacher's constructor.
    #[serde(default)]
    pub teacher_arch_params: serde_yaml::Mapping,
    /// How to initialise the student.
    #[serde(default)]
    pub student_checkpoint_params: CheckpointParams,
    /// How to obtain the teacher's weights.
    #[serde(default)]
    pub teacher_checkpoint_params: CheckpointParams,
    /// Arguments of the KD module: the input adapters.
    #[serde(default)]
    pub arch_params: KdArchParamsSpec,
    /// Keep the teacher in eval mode while training (default true, as both SuperGradients
    /// recipes set it).
    #[serde(default = "yes")]
    pub run_teacher_on_eval: bool,
    /// The training loop's settings.
    pub training_hyperparams: TrainingHyperparams,
    /// The train dataloader's registry name (`fashion_mnist_train`, `mnist_train`).
    #[serde(default)]
    pub train_dataloader: Option<String>,
    /// The validation dataloader's registry name (`fashion_mnist_val`, `mnist_val`).
    #[serde(default)]
    pub val_dataloader: Option<String>,
    /// Datasets, transforms and loaders.
    pub dataset_params: DatasetParams,
    /// kd extension: train the teacher with these settings when no teacher checkpoint is
    /// given, keeping it in `<run folder>/teacher` and reusing it on later runs.
    #[serde(default)]
    pub teacher_training_hyperparams: Option<TrainingHyperparams>,
    /// kd extension: the data the teacher is trained on (default: `dataset_params`), e.g. the
    /// full training set while the student distils on a smaller transfer set.
    #[serde(default)]
    pub teacher_dataset_params: Option<DatasetParams>,
    /// kd extension: also train the student without distillation, with the same budget and
    /// seed, and report the three accuracies side by side.
    #[serde(default)]
    pub scratch_baseline: bool,
}

fn default_ckpt_root() -> PathBuf {
    PathBuf::from("runs")
}
fn default_device() -> String {
    "flex".into()
}
fn yes() -> bool {
    true
}

/// SuperGradients' `*_checkpoint_params`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointParams {
    /// A checkpoint kd wrote (`ckpt_best.bpk`, or a student record).
    #[serde(default)]
    pub checkpoint_path: Option<PathBuf>,
    /// Named pretrained weights (`imagenet`, ...); an alias of a path when it names a file.
    #[serde(default)]
    pub pretrained_weights: Option<String>,
    /// `true`/`on` (default) or `false`/`off`/`no_key_matching`/`key_matching`.
    #[serde(default)]
    pub strict_load: Option<serde_yaml::Value>,
    /// Load only the backbone.
    #[serde(default)]
    pub load_backbone: Option<bool>,
    /// Build with this head size, load, then replace the head.
    #[serde(default)]
    pub checkpoint_num_classes: Option<usize>,
}

/// SuperGradients' KD `arch_params`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KdArchParamsSpec {
    /// Adapter applied to the teacher's input.
    #[serde(default, with = "serde_yaml::with::singleton_map_recursive")]
    pub teacher_input_adapter: Option<AdapterSpec>,
    /// Adapter applied to the student's input.
    #[serde(default, with = "serde_yaml::with::singleton_map_recursive")]
    pub student_input_adapter: Option<AdapterSpec>,
}

/// An input adapter, written `{NormalizationAdapter: {mean_original: ..., ...}}`.
#[derive(Debug, Clone, Deserialize)]
pub enum AdapterSpec {
    /// SuperGradients' `NormalizationAdapter`.
    NormalizationAdapter(NormalizationAdapterSpec),
}

/// The arguments of a `NormalizationAdapter`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NormalizationAdapterSpec {
    /// Per-channel mean the input was normalised with.
    pub mean_original: Vec<f64>,
    /// Per-channel std the input was normalised with.
    pub std_original: Vec<f64>,
    /// Per-channel mean the network expects.
    pub mean_required: Vec<f64>,
    /// Per-channel std the network expects.
    pub std_required: Vec<f64>,
}

/// SuperGradients' `training_hyperparams` (the keys kd implements).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingHyperparams {
    /// Number of epochs.
    pub max_epochs: usize,
    /// Learning rate after warmup.
    pub initial_lr: f64,
    /// `CosineLRScheduler`, `StepLRScheduler`, `PolyLRScheduler`, `ExponentialLRScheduler`,
    /// or absent for a constant lr.
    #[serde(default)]
    pub lr_mode: Option<String>,
    /// Final lr ratio of the cosine schedule (default 0.01).
    #[serde(default = "default_cosine_ratio")]
    pub cosine_final_lr_ratio: f64,
    /// Epochs at which `StepLRScheduler` decays.
    #[serde(default)]
    pub lr_updates: Vec<usize>,
    /// Decay factor of the step and exponential schedules.
    #[serde(default)]
    pub lr_decay_factor: Option<f64>,
    /// Epochs of linear warmup.
    #[serde(default)]
    pub lr_warmup_epochs: usize,
    /// Steps of linear warmup (with `warmup_mode: LinearBatchLRWarmup`).
    #[serde(default)]
    pub lr_warmup_steps: usize,
    /// `LinearEpochLRWarmup` (default) or `LinearBatchLRWarmup`.
    #[serde(default)]
    pub warmup_mode: Option<String>,
    /// Start lr of the warmup (default `initial_lr / (warmup + 1)`).
    #[serde(default)]
    pub warmup_initial_lr: Option<f64>,
    /// Final epochs with the lr frozen.
    #[serde(default)]
    pub lr_cooldown_epochs: usize,
    /// `SGD` (default), `Adam`, `AdamW`, `RMSprop`, `Lamb` or `Lion`.
    #[serde(default = "default_optimizer")]
    pub optimizer: String,
    /// Optimizer arguments, merged over SuperGradients' per-optimizer defaults.
    #[serde(default)]
    pub optimizer_params: OptimizerParams,
    /// `KdLogitsLoss` (alias `kd_loss`) or `DistillationLoss` (a weighted sum of
    /// `criterion_params.terms`) for KD, `CrossEntropyLoss` for plain training.
    pub loss: String,
    /// Arguments of the loss.
    #[serde(default)]
    pub criterion_params: CriterionParams,
    /// Metrics on training batches (`Accuracy`, `Top5`).
    #[serde(default)]
    pub train_metrics_list: Vec<String>,
    /// Metrics on validation batches (`Accuracy`, `Top5`).
    #[serde(default)]
    pub valid_metrics_list: Vec<String>,
    /// The validation value that selects `ckpt_best` (default `Accuracy`).
    #[serde(default = "default_metric")]
    pub metric_to_watch: String,
    /// Direction of improvement (default true).
    #[serde(default = "yes")]
    pub greater_metric_to_watch_is_better: bool,
    /// Cap on training batches per epoch.
    #[serde(default)]
    pub max_train_batches: Option<usize>,
    /// Cap on validation batches.
    #[serde(default)]
    pub max_valid_batches: Option<usize>,
    /// Seed of initialisation, data order and augmentation (default 42).
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Continue from the run folder's `ckpt_latest.kd`.
    #[serde(default)]
    pub resume: bool,
    /// Continue from this checkpoint.
    #[serde(default)]
    pub resume_path: Option<PathBuf>,
    /// No progress bar or epoch lines.
    #[serde(default)]
    pub silent_mode: bool,
    /// Keep an exponential moving average of the student, validated and saved in its place.
    #[serde(default)]
    pub ema: bool,
    /// The EMA's decay schedule.
    #[serde(default)]
    pub ema_params: EmaParamsSpec,
    /// No weight decay on biases and normalisation layers.
    #[serde(default)]
    pub zero_weight_decay_on_bias_and_bn: bool,
    /// Clip the global L2 norm of the gradients to this (default: no clipping).
    #[serde(default)]
    pub clip_grad_norm: Option<f64>,
    /// Sum the gradients of this many batches per optimizer step (default 1).
    #[serde(default = "one")]
    pub batch_accumulate: usize,
    /// Average the best snapshots by `metric_to_watch` (default true).
    #[serde(default = "yes")]
    pub average_best_models: bool,
    /// Validate every this many epochs, and after the last (default 1).
    #[serde(default = "one")]
    pub run_validation_freq: usize,
    /// Also keep the checkpoints of these epochs (0-based).
    #[serde(default)]
    pub save_ckpt_epoch_list: Vec<usize>,
    /// kd extension: also write `ckpt_latest` every this many optimizer steps.
    #[serde(default)]
    pub ckpt_every_n_steps: Option<usize>,
    /// In a KD run, the teacher computes in bf16 (f16 where the backend lacks bf16); the
    /// student stays f32 (Burn 0.22 has no autocast).
    #[serde(default)]
    pub mixed_precision: bool,
    /// kd extension: the teacher's precision, `f32`, `bf16` or `f16` (overrides the choice of
    /// `mixed_precision`).
    #[serde(default)]
    pub teacher_precision: Option<String>,
    /// kd extension: compute the teacher's logits once per training sample and reuse them
    /// (needs deterministic training transforms, no mixing, and a loss that reads only the
    /// teacher's logits).
    #[serde(default)]
    pub teacher_cache: bool,
    /// kd extension: the fraction of cached batches the teacher recomputes to check the cache.
    #[serde(default)]
    pub teacher_cache_verify: f64,
}

fn one() -> usize {
    1
}

/// SuperGradients' `ema_params`; absent keys take SG's defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmaParamsSpec {
    /// The largest decay (default 0.9999).
    #[serde(default = "default_ema_decay")]
    pub decay: f64,
    /// `constant`, `threshold` or `exp` (default).
    #[serde(default = "default_ema_decay_type")]
    pub decay_type: String,
    /// How fast the `exp` decay saturates (default 15).
    #[serde(default = "default_ema_beta")]
    pub beta: f64,
}

impl Default for EmaParamsSpec {
    fn default() -> Self {
        Self {
            decay: default_ema_decay(),
            decay_type: default_ema_decay_type(),
            beta: default_ema_beta(),
        }
    }
}

fn default_ema_decay() -> f64 {
    0.9999
}
fn default_ema_decay_type() -> String {
    "exp".into()
}
fn default_ema_beta() -> f64 {
    15.0
}

fn default_cosine_ratio() -> f64 {
    0.01
}
fn default_optimizer() -> String {
    "SGD".into()
}
fn default_metric() -> String {
    "Accuracy".into()
}
fn default_seed() -> u64 {
    42
}

/// `optimizer_params`; absent keys take SuperGradients' defaults for the optimizer
/// (`kd_trainer::OptimizerConfig::defaults`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimizerParams {
    /// SGD and RMSprop momentum (SG default 0.9).
    #[serde(default)]
    pub momentum: Option<f64>,
    /// Weight decay (SG default 1e-4 for SGD, Adam and RMSprop, 0.01 for AdamW and Lamb, 0 for
    /// Lion).
    #[serde(default)]
    pub weight_decay: Option<f64>,
    /// SGD Nesterov momentum.
    #[serde(default)]
    pub nesterov: Option<bool>,
    /// SGD dampening (PyTorch default 0).
    #[serde(default)]
    pub dampening: Option<f64>,
    /// Adam, AdamW, Lamb and Lion betas.
    #[serde(default)]
    pub betas: Option<(f64, f64)>,
    /// Adam, AdamW, RMSprop and Lamb epsilon (PyTorch default 1e-8, Lamb 1e-6).
    #[serde(default)]
    pub eps: Option<f64>,
    /// RMSprop smoothing constant (PyTorch default 0.99).
    #[serde(default)]
    pub alpha: Option<f64>,
    /// RMSprop: centred second moment.
    #[serde(default)]
    pub centered: Option<bool>,
    /// Lamb: clip the global gradient norm to this first (default 1.0).
    #[serde(default)]
    pub max_grad_norm: Option<f64>,
    /// Lamb: clip the trust ratio at 1.
    #[serde(default)]
    pub trust_clip: Option<bool>,
    /// Lamb: trust ratio also without weight decay.
    #[serde(default)]
    pub always_adapt: Option<bool>,
    /// Lamb: bias-corrected moments (default true).
    #[serde(default)]
    pub bias_correction: Option<bool>,
    /// Lamb: `1 − β1` factor on the gradient in the first moment (default true).
    #[serde(default)]
    pub grad_averaging: Option<bool>,
}

/// `criterion_params`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CriterionParams {
    /// KdLogitsLoss: weight of the distillation term (default 0.5).
    #[serde(default)]
    pub distillation_loss_coeff: Option<f64>,
    /// KdLogitsLoss: the task loss, `CrossEntropyLoss` or `{CrossEntropyLoss: {label_smoothing: 0.1}}`.
    #[serde(default)]
    pub task_loss_fn: Option<serde_yaml::Value>,
    /// KdLogitsLoss: temperature (kd extension; absent = SuperGradients' T = 1, no T²).
    #[serde(default)]
    pub temperature: Option<f64>,
    /// CrossEntropyLoss: label smoothing.
    #[serde(default)]
    pub label_smoothing: Option<f64>,
    /// DistillationLoss (kd extension): the weighted terms, each `{name, weight, student_tap,
    /// teacher_tap, <method fields>}`.
    #[serde(default)]
    pub terms: Option<Vec<serde_yaml::Mapping>>,
}

/// SuperGradients' `dataset_params`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetParams {
    /// The training set.
    #[serde(default)]
    pub train_dataset_params: DatasetSpec,
    /// The validation set.
    #[serde(default)]
    pub val_dataset_params: DatasetSpec,
    /// The training loader.
    #[serde(default)]
    pub train_dataloader_params: LoaderSpec,
    /// The validation loader.
    #[serde(default)]
    pub val_dataloader_params: LoaderSpec,
}

/// One dataset.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetSpec {
    /// Folder of the data (default: searched, see the dataset's docs); for `imagenet_*`, the
    /// split folder of class folders, as SuperGradients' `root: /data/Imagenet/train`.
    #[serde(default)]
    pub root: Option<PathBuf>,
    /// kd extension: use a seeded random subset of this many samples.
    #[serde(default)]
    pub max_samples: Option<usize>,
    /// CIFAR-100's labels: `fine` (100 classes, the default) or `coarse` (20 superclasses).
    #[serde(default)]
    pub label_type: Option<LabelTypeSpec>,
    /// Transforms, in order, e.g. `[{RandomCrop: {size: 28, padding: 4}}, ...]`.
    #[serde(default, with = "serde_yaml::with::singleton_map_recursive")]
    pub transforms: Vec<TransformSpec>,
}

/// CIFAR-100's label granularity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LabelTypeSpec {
    /// The 100 fine classes.
    Fine,
    /// The 20 coarse superclasses.
    Coarse,
}

/// One transform; SuperGradients' names are accepted as aliases.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum TransformSpec {
    /// Random crop after zero padding.
    RandomCrop {
        /// Output size (square).
        size: usize,
        /// Zero padding on each side.
        #[serde(default)]
        padding: usize,
    },
    /// Random crop of random area and aspect ratio resized to `size` (torchvision
    /// `RandomResizedCrop`, SuperGradients `RandomResizedCropAndInterpolation`).
    #[serde(alias = "RandomResizedCropAndInterpolation")]
    RandomResizedCrop {
        /// Output size: one number (square) or `[height, width]`.
        size: SizeSpec,
        /// Range of the crop's fraction of the area (default `[0.08, 1.0]`).
        #[serde(default = "default_rrc_scale")]
        scale: [f64; 2],
        /// Range of the crop's aspect ratio (default `[0.75, 1.3333]`).
        #[serde(default = "default_rrc_ratio")]
        ratio: [f64; 2],
        /// `bilinear` (default), `bicubic` or `random`.
        #[serde(default)]
        interpolation: InterpolationSpec,
    },
    /// Antialiased resize: one number resizes the shorter side, `[height, width]` both.
    Resize {
        /// Target size.
        size: SizeSpec,
        /// `bilinear` (default), `bicubic` or `random`.
        #[serde(default)]
        interpolation: InterpolationSpec,
    },
    /// Centre crop, zero-padding smaller images.
    CenterCrop {
        /// Output size: one number (square) or `[height, width]`.
        size: SizeSpec,
    },
    /// Horizontal flip with probability `p`.
    RandomHorizontalFlip {
        /// Flip probability (default 0.5).
        #[serde(default = "half")]
        p: f64,
    },
    /// Random brightness, contrast, saturation and hue (torchvision `ColorJitter`).
    ColorJitter {
        /// Brightness jitter (default 0, off).
        #[serde(default)]
        brightness: f32,
        /// Contrast jitter (default 0, off).
        #[serde(default)]
        contrast: f32,
        /// Saturation jitter (default 0, off).
        #[serde(default)]
        saturation: f32,
        /// Hue jitter in `[0, 0.5]` (default 0, off).
        #[serde(default)]
        hue: f32,
    },
    /// timm RandAugment from a config string such as `rand-m7-mstd0.5` (SuperGradients
    /// `RandAugmentTransform`).
    #[serde(alias = "RandAugmentTransform", alias = "RandomAugmentation")]
    RandAugment {
        /// timm's config string.
        config_str: String,
        /// Per-channel mean in `[0, 1]`, the fill of geometric operations (default 0.5).
        #[serde(default)]
        img_mean: Option<Vec<f32>>,
        /// Accepted for SuperGradients compatibility; the operations use the image's own size.
        #[serde(default)]
        crop_size: Option<SizeSpec>,
    },
    /// Random erasing (torchvision `RandomErasing`), usually after `Normalize`.
    #[serde(alias = "RandomErase")]
    RandomErasing {
        /// Probability (default 0.5).
        #[serde(default = "half")]
        p: f64,
        /// Range of the erased fraction of the area (default `[0.02, 0.33]`).
        #[serde(default = "default_erase_scale")]
        scale: [f64; 2],
        /// Range of the aspect ratio (default `[0.3, 3.3]`).
        #[serde(default = "default_erase_ratio")]
        ratio: [f64; 2],
        /// A number, one number per channel, or `random` (default 0).
        #[serde(default)]
        value: EraseValueSpec,
    },
    /// Accepted for SuperGradients compatibility: every pipeline starts by converting to
    /// `[0, 1]`.
    ToTensor,
    /// Per-channel normalisation of `[0, 1]` pixels.
    Normalize {
        /// Per-channel mean.
        mean: Vec<f32>,
        /// Per-channel standard deviation.
        std: Vec<f32>,
    },
}

fn half() -> f64 {
    0.5
}
fn default_rrc_scale() -> [f64; 2] {
    [0.08, 1.0]
}
fn default_rrc_ratio() -> [f64; 2] {
    [3.0 / 4.0, 4.0 / 3.0]
}
fn default_erase_scale() -> [f64; 2] {
    [0.02, 0.33]
}
fn default_erase_ratio() -> [f64; 2] {
    [0.3, 3.3]
}

/// A resize filter choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InterpolationSpec {
    /// Bilinear.
    #[default]
    Bilinear,
    /// Bicubic.
    Bicubic,
    /// Bilinear or bicubic per sample.
    Random,
    /// SuperGradients' `default`: bilinear.
    Default,
}

/// A size: one number or `[height, width]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeSpec {
    /// One number.
    One(usize),
    /// `[height, width]`.
    Two([usize; 2]),
}

impl<'de> Deserialize<'de> for SizeSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let value = serde_yaml::Value::deserialize(d)?;
        let size = |v: &serde_yaml::Value| v.as_u64().map(|n| n as usize);
        match &value {
            serde_yaml::Value::Number(_) => size(&value).map(SizeSpec::One),
            serde_yaml::Value::Sequence(items) => match items.as_slice() {
                [n] => size(n).map(SizeSpec::One),
                [h, w] => size(h).zip(size(w)).map(|(h, w)| SizeSpec::Two([h, w])),
                _ => None,
            },
            _ => None,
        }
        .ok_or_else(|| D::Error::custom("expected a size: a number or [height, width]"))
    }
}

/// The fill of `RandomErasing`.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum EraseValueSpec {
    /// Zero.
    #[default]
    Zero,
    /// One value per channel, or one for all.
    Values(Vec<f32>),
    /// Standard normal noise per pixel.
    Random,
}

impl<'de> Deserialize<'de> for EraseValueSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let value = serde_yaml::Value::deserialize(d)?;
        let number = |v: &serde_yaml::Value| v.as_f64().map(|x| x as f32);
        match &value {
            serde_yaml::Value::String(s) if s == "random" => Some(EraseValueSpec::Random),
            serde_yaml::Value::Number(_) => number(&value).map(|x| EraseValueSpec::Values(vec![x])),
            serde_yaml::Value::Sequence(items) => items
                .iter()
                .map(number)
                .collect::<Option<Vec<f32>>>()
                .map(EraseValueSpec::Values),
            _ => None,
        }
        .ok_or_else(|| D::Error::custom("expected a number, a list of numbers or `random`"))
    }
}

/// One loader.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoaderSpec {
    /// Batch size (default 64).
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    /// Worker threads for decoding and augmentation (default 2).
    #[serde(default = "default_workers")]
    pub num_workers: usize,
    /// Shuffle each epoch (default: true for training, false for validation).
    #[serde(default)]
    pub shuffle: Option<bool>,
    /// Drop the last incomplete batch (default false).
    #[serde(default)]
    pub drop_last: bool,
    /// Which samples an epoch visits, e.g. `{RepeatAugSampler: {num_repeats: 3}}` (default:
    /// every sample once).
    #[serde(default, with = "serde_yaml::with::singleton_map_recursive")]
    pub sampler: Option<SamplerSpec>,
    /// Batch mixing, `{CollateMixup: {mixup_alpha: 0.2, cutmix_alpha: 1.0, ...}}`.
    #[serde(default, with = "serde_yaml::with::singleton_map_recursive")]
    pub collate_fn: Option<CollateSpec>,
}

impl Default for LoaderSpec {
    fn default() -> Self {
        Self {
            batch_size: default_batch(),
            num_workers: default_workers(),
            shuffle: None,
            drop_last: false,
            sampler: None,
            collate_fn: None,
        }
    }
}

/// A sampler.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum SamplerSpec {
    /// SuperGradients' and timm's repeated-augmentation sampler.
    RepeatAugSampler {
        /// Visits per sample (default 3).
        #[serde(default = "three")]
        num_repeats: usize,
        /// Replicas sharing the data (default 1).
        #[serde(default = "one")]
        num_replicas: usize,
        /// This replica (default 0).
        #[serde(default)]
        rank: usize,
        /// Rounding of the epoch length (default 256; 0 disables it).
        #[serde(default = "two_fifty_six")]
        selected_round: usize,
    },
    /// torch's `DistributedSampler`: this replica's share of every sample.
    DistributedSampler {
        /// Replicas sharing the data.
        num_replicas: usize,
        /// This replica.
        rank: usize,
    },
}

fn three() -> usize {
    3
}
fn two_fifty_six() -> usize {
    256
}

/// A batch collation.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum CollateSpec {
    /// SuperGradients' `CollateMixup` (timm `Mixup`): Mixup/CutMix with soft targets.
    CollateMixup {
        /// Mixup's Beta parameter (default 1.0; 0 disables Mixup).
        #[serde(default = "one_f")]
        mixup_alpha: f64,
        /// CutMix's Beta parameter (default 0.0, off).
        #[serde(default)]
        cutmix_alpha: f64,
        /// Probability of mixing (default 1.0).
        #[serde(default = "one_f")]
        prob: f64,
        /// Probability of CutMix when both are on (default 0.5).
        #[serde(default = "half")]
        switch_prob: f64,
        /// `batch` (default), `pair` or `elem`.
        #[serde(default)]
        mode: MixModeSpec,
        /// Label smoothing of the targets (default 0.1).
        #[serde(default = "tenth")]
        label_smoothing: f64,
        /// Must equal the dataset's class count when given.
        #[serde(default)]
        num_classes: Option<usize>,
        /// Must be true when given: the CutMix weight always follows the pasted area.
        #[serde(default)]
        correct_lam: Option<bool>,
    },
}

fn one_f() -> f64 {
    1.0
}
fn tenth() -> f64 {
    0.1
}

/// Granularity of the mixing draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MixModeSpec {
    /// One draw per batch.
    #[default]
    Batch,
    /// One draw per pair.
    Pair,
    /// One draw per sample.
    Elem,
}

fn default_batch() -> usize {
    64
}
fn default_workers() -> usize {
    2
}
