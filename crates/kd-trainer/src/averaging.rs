//! `average_best_models`: the student averaged over its best epochs (SuperGradients'
//! `ModelWeightAveraging`).
//!
//! After each validated epoch whose `metric_to_watch` ranks among the best
//! [`AVERAGED_SNAPSHOTS`], the student's record is kept as `averaging/epoch_<N>.bpk`; the
//! element-wise mean of the kept records (parameters and BatchNorm statistics alike) is
//! written as `average_model.bpk`, a student checkpoint like `ckpt_best.bpk`. The list of kept
//! snapshots lives in `averaging/snapshots.json`, so a resumed run continues it.

use std::path::{Path, PathBuf};

use burn::module::{ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::prelude::*;
use burn::tensor::container::TensorContainer;
use kd_core::ImageClassifier;

use crate::TrainError;
use crate::checkpoint::{load_student, student_bytes, write_atomic};

/// How many snapshots are averaged (SuperGradients' default).
pub const AVERAGED_SNAPSHOTS: usize = 10;
/// The averaged student's file name in the run folder.
pub const AVERAGE_NAME: &str = "average_model.bpk";

/// One kept snapshot: its epoch and metric.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Snapshot {
    epoch: usize,
    metric: f64,
}

/// The running top-k average of a run (see the module docs).
#[derive(Debug, Clone)]
pub struct ModelAveraging {
    dir: PathBuf,
    greater_is_better: bool,
    kept: Vec<Snapshot>,
}

/// Sums float tensors by parameter id.
struct Sum {
    totals: TensorContainer<ParamId>,
}

impl ModuleVisitor for Sum {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let value = param.val();
        let total = match self.totals.remove::<Tensor<D>>(&param.id) {
            Some(t) => t + value,
            None => value,
        };
        self.totals.register(param.id, total);
    }
}

/// Replaces each float tensor by its sum divided by `n`.
struct Mean {
    totals: TensorContainer<ParamId>,
    n: f64,
}

impl ModuleMapper for Mean {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        match self.totals.remove::<Tensor<D>>(&param.id) {
            Some(total) => {
                let n = self.n;
                param.map(|_| total.div_scalar(n))
            }
            None => param,
        }
    }
}

impl ModelAveraging {
    /// The averaging of the run in `run_dir`, continuing a resumed run's snapshots.
    pub fn open(run_dir: &Path, greater_is_better: bool) -> Result<Self, TrainError> {
        let dir = run_dir.join("averaging");
        let list = dir.join("snapshots.json");
        let kept = if list.is_file() {
            let text = std::fs::read_to_string(&list).map_err(|source| TrainError::Io {
                action: "cannot read",
                path: list.clone(),
                source,
            })?;
            serde_json::from_str(&text).map_err(|e| TrainError::Checkpoint {
                path: list.clone(),
                message: format!("unreadable snapshot list ({e}): delete the averaging folder to start the average afresh"),
            })?
        } else {
            Vec::new()
        };
        Ok(Self {
            dir,
            greater_is_better,
            kept,
        })
    }

    /// A fresh average for a run that starts from scratch (drops old snapshots).
    pub fn fresh(run_dir: &Path, greater_is_better: bool) -> Self {
        let dir = run_dir.join("averaging");
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_file(run_dir.join(AVERAGE_NAME));
        Self {
            dir,
            greater_is_better,
            kept: Vec::new(),
        }
    }

    fn snapshot_path(&self, epoch: usize) -> PathBuf {
        self.dir.join(format!("epoch_{epoch}.bpk"))
    }

    fn better(&self, a: f64, b: f64) -> bool {
        if self.greater_is_better { a > b } else { a < b }
    }

    /// Offers epoch `epoch`'s `student` with its `metric`. When it ranks among the best,
    /// keeps it and rewrites `average_model.bpk` next to the averaging folder; returns whether
    /// the average changed.
    pub fn offer<S: ImageClassifier>(
        &mut self,
        epoch: usize,
        metric: f64,
        student: &S,
    ) -> Result<bool, TrainError> {
        if !metric.is_finite() {
            return Ok(false);
        }
        self.kept.retain(|s| s.epoch != epoch);
        if self.kept.len() >= AVERAGED_SNAPSHOTS {
            let worst = self
                .kept
                .iter()
                .enumerate()
                .min_by(|a, b| {
                    let (x, y) = (a.1.metric, b.1.metric);
                    if self.better(x, y) {
                        std::cmp::Ordering::Greater
                    } else {
                        std::cmp::Ordering::Less
                    }
                })
                .map(|(i, s)| (i, s.clone()));
            match worst {
                Some((i, w)) if self.better(metric, w.metric) => {
                    let _ = std::fs::remove_file(self.snapshot_path(w.epoch));
                    self.kept.remove(i);
                }
                _ => return Ok(false),
            }
        }
        std::fs::create_dir_all(&self.dir).map_err(|source| TrainError::Io {
            action: "cannot create",
            path: self.dir.clone(),
            source,
        })?;
        let path = self.snapshot_path(epoch);
        write_atomic(&path, &student_bytes(student, &path)?)?;
        self.kept.push(Snapshot { epoch, metric });
        let list = serde_json::to_string(&self.kept).unwrap_or_default();
        write_atomic(&self.dir.join("snapshots.json"), list.as_bytes())?;
        let average = self.average(student)?;
        let out = self
            .dir
            .parent()
            .map_or_else(|| PathBuf::from(AVERAGE_NAME), |p| p.join(AVERAGE_NAME));
        write_atomic(&out, &student_bytes(&average, &out)?)?;
        Ok(true)
    }

    /// The element-wise mean of the kept snapshots, in `like`'s structure (eval mode).
    pub fn average<S: ImageClassifier>(&self, like: &S) -> Result<S, TrainError> {
        let base = like.valid();
        let mut sum = Sum {
            totals: TensorContainer::new(),
        };
        for snap in &self.kept {
            let path = self.snapshot_path(snap.epoch);
            let loaded = load_student(base.clone(), &path)?;
            // Loading keeps the ids of `base`, so the sums line up by parameter.
            loaded.visit(&mut sum);
        }
        let mut mean = Mean {
            totals: sum.totals,
            n: self.kept.len().max(1) as f64,
        };
        Ok(base.map(&mut mean))
    }

    /// How many snapshots are kept.
    pub fn len(&self) -> usize {
        self.kept.len()
    }

    /// Whether no snapshot is kept yet.
    pub fn is_empty(&self) -> bool {
        self.kept.is_empty()
    }
}
