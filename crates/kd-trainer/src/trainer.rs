use std::path::{Path, PathBuf};

use burn::prelude::*;
use kd_core::{Criterion, ImageClassifier, KdArchParams, KdModel, KdModule, KdOutput};
use kd_data::DataLoader;
use kd_losses::DistillationLoss;

use crate::fit::fit;
use crate::{ComputedLoss, DistillModel, Supervised, TrainError, TrainOutcome, TrainingParams};

/// Trains a classifier on its own (SuperGradients' `Trainer`); kd uses it to train teachers.
///
/// Checkpoints go to the run folder: `ckpt_latest.kd` (resumable) and `ckpt_best.bpk` (the
/// network alone).
#[derive(Debug, Clone)]
pub struct Trainer {
    run_dir: PathBuf,
    device: Device,
}

impl Trainer {
    /// A trainer writing to `run_dir` and computing on `device` (a plain device; autodiff is
    /// added for training).
    pub fn new(run_dir: impl Into<PathBuf>, device: &Device) -> Self {
        Self {
            run_dir: run_dir.into(),
            device: device.clone().without_autodiff(),
        }
    }

    /// The run folder.
    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// Trains `model` with `criterion` on `train`, validating on `valid` after every epoch.
    pub fn train<M, L>(
        &self,
        model: M,
        params: &TrainingParams,
        criterion: &L,
        train: &DataLoader,
        valid: &DataLoader,
    ) -> Result<TrainOutcome<Supervised<M>>, TrainError>
    where
        M: ImageClassifier,
        L: Criterion<Tensor<2>>,
    {
        let model = Supervised { net: model.train() };
        fit(
            "supervised",
            &self.run_dir,
            &self.device,
            model,
            params,
            criterion,
            train,
            valid,
        )
    }
}

/// Trains a student from a frozen teacher (SuperGradients' `KDTrainer`).
///
/// `ckpt_latest.kd` holds the whole KD state (student, teacher, adapters, optimizer, position,
/// best metric); `ckpt_best.bpk` holds the student alone and loads into a bare student.
#[derive(Debug, Clone)]
pub struct KdTrainer {
    run_dir: PathBuf,
    device: Device,
}

impl KdTrainer {
    /// A KD trainer writing to `run_dir` and computing on `device`.
    pub fn new(run_dir: impl Into<PathBuf>, device: &Device) -> Self {
        Self {
            run_dir: run_dir.into(),
            device: device.clone().without_autodiff(),
        }
    }

    /// The run folder.
    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// Builds the default KD module from `student`, `teacher` and `arch_params`, then trains
    /// it: SuperGradients' `kd_trainer.train(student=..., teacher=..., kd_arch_params=...,
    /// run_teacher_on_eval=..., training_params=..., train_loader=..., valid_loader=...)`.
    ///
    /// When the validation images are the same every epoch and the teacher runs in eval mode,
    /// the teacher's validation logits are computed in the first validation and read after
    /// ([`KdModel::with_validation_cache`]); results are unchanged.
    #[allow(clippy::too_many_arguments)]
    pub fn train<S, T, L>(
        &self,
        student: S,
        teacher: T,
        arch_params: KdArchParams,
        run_teacher_on_eval: bool,
        params: &TrainingParams,
        criterion: &L,
        train: &DataLoader,
        valid: &DataLoader,
    ) -> Result<TrainOutcome<KdModel<S, T>>, TrainError>
    where
        S: ImageClassifier,
        T: ImageClassifier,
        L: Criterion<KdOutput<Tensor<2>>>,
    {
        let model = self.kd_model(
            student,
            teacher,
            arch_params,
            run_teacher_on_eval,
            params,
            (train, valid),
            &[],
        )?;
        fit(
            "kd",
            &self.run_dir,
            &self.device,
            model,
            params,
            criterion,
            train,
            valid,
        )
    }

    /// Distils with a [`DistillationLoss`] (feature taps, trainable connectors, memory
    /// banks): the loss joins student and teacher in a [`DistillModel`], so its parts are
    /// trained and checkpointed with the student. `ckpt_best` holds the student alone.
    #[allow(clippy::too_many_arguments)]
    pub fn train_distill<S, T>(
        &self,
        student: S,
        teacher: T,
        arch_params: KdArchParams,
        run_teacher_on_eval: bool,
        params: &TrainingParams,
        loss: DistillationLoss,
        train: &DataLoader,
        valid: &DataLoader,
    ) -> Result<TrainOutcome<DistillModel<S, T>>, TrainError>
    where
        S: ImageClassifier,
        T: ImageClassifier,
    {
        let kd = self.kd_model(
            student,
            teacher,
            arch_params,
            run_teacher_on_eval,
            params,
            (train, valid),
            &loss.teacher_taps,
        )?;
        let criterion = ComputedLoss::new("DistillationLoss", &loss);
        let model = DistillModel {
            kd,
            loss: loss.train(),
        };
        fit(
            "distill",
            &self.run_dir,
            &self.device,
            model,
            params,
            &criterion,
            train,
            valid,
        )
    }

    /// The default KD module as `params` ask for it: the teacher in its precision, and the
    /// teacher and validation caches where they are exact. The caches hold logits, so a loss
    /// reading `teacher_taps` rules them out ([`TrainingParams::teacher_cache_for`] refuses).
    #[allow(clippy::too_many_arguments)]
    fn kd_model<S, T>(
        &self,
        student: S,
        teacher: T,
        arch_params: KdArchParams,
        run_teacher_on_eval: bool,
        params: &TrainingParams,
        (train, valid): (&DataLoader, &DataLoader),
        teacher_taps: &[String],
    ) -> Result<KdModel<S, T>, TrainError>
    where
        S: ImageClassifier,
        T: ImageClassifier,
    {
        let mut model = KdModel::new(student.train(), teacher, arch_params, run_teacher_on_eval)?
            .with_teacher_precision(params.teacher_precision_on(&self.device)?)?;
        if let Some(cache) = params.teacher_cache_for(train, run_teacher_on_eval, teacher_taps)? {
            model = model.with_teacher_cache(cache)?;
        }
        if teacher_taps.is_empty()
            && let Some(cache) = params.validation_cache_for(valid, run_teacher_on_eval)?
        {
            model = model.with_validation_cache(cache)?;
        }
        Ok(model)
    }

    /// Trains a ready KD module, default or custom (SuperGradients' `train(model=...)`).
    ///
    /// The module keeps the precision it was built with, so `mixed_precision` and
    /// `teacher_precision` are refused here: cast the teacher when building the module
    /// ([`KdModel::with_teacher_precision`], or [`kd_core::cast_module`] in a custom one).
    pub fn train_module<K, L>(
        &self,
        model: K,
        params: &TrainingParams,
        criterion: &L,
        train: &DataLoader,
        valid: &DataLoader,
    ) -> Result<TrainOutcome<K>, TrainError>
    where
        K: KdModule,
        L: Criterion<KdOutput<K::StudentOutput, K::TeacherOutput>>,
    {
        if params.teacher_cache {
            return Err(TrainError::param(
                "teacher_cache",
                "a ready KD module brings its own teacher: give a `KdModel` its cache with `KdModel::with_teacher_cache` and leave this unset",
            ));
        }
        if params.mixed_precision || params.teacher_precision.is_some() {
            let key = if params.teacher_precision.is_some() {
                "teacher_precision"
            } else {
                "mixed_precision"
            };
            return Err(TrainError::param(
                key,
                "a ready KD module keeps the precision it was built with: cast its teacher with `KdModel::with_teacher_precision` (or `kd_core::cast_module` in a custom module) and leave this unset",
            ));
        }
        fit(
            "kd",
            &self.run_dir,
            &self.device,
            model,
            params,
            criterion,
            train,
            valid,
        )
    }
}
