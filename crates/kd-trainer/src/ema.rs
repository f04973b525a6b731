//! An exponential moving average of a network's weights (SuperGradients' `ema`).

use std::collections::HashSet;
use std::path::Path;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::prelude::*;
use burn::store::ModuleRecord;
use burn::tensor::Bytes;
use burn::tensor::container::TensorContainer;

use crate::TrainError;

/// How the decay grows over training (SuperGradients' `ema_params.decay_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmaDecayType {
    /// `constant`: `d`.
    Constant,
    /// `threshold`: `min(d, (1 + n)/(10 + n))`.
    Threshold,
    /// `exp`: `d·(1 − exp(−β·n/N))`.
    Exp,
}

impl EmaDecayType {
    /// The accepted names, as written in recipes.
    pub const NAMES: [&'static str; 3] = ["constant", "threshold", "exp"];

    /// Parses a recipe name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "constant" => Some(Self::Constant),
            "threshold" => Some(Self::Threshold),
            "exp" => Some(Self::Exp),
            _ => None,
        }
    }
}

/// SuperGradients' `ema_params` (defaults `{decay: 0.9999, decay_type: exp, beta: 15}`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EmaParams {
    /// `decay`: the largest decay `d`, in `[0, 1]`.
    pub decay: f64,
    /// `decay_type`.
    pub decay_type: EmaDecayType,
    /// `beta`: how fast the `exp` decay saturates (15 reaches `0.9999·d` after ~60% of
    /// training).
    pub beta: f64,
}

impl Default for EmaParams {
    fn default() -> Self {
        Self {
            decay: 0.9999,
            decay_type: EmaDecayType::Exp,
            beta: 15.0,
        }
    }
}

impl EmaParams {
    /// The decay of the update at `step` of `total_steps` (SuperGradients'
    /// `ema_decay_schedules.py`): `constant` `d`, `threshold` `min(d, (1 + n)/(10 + n))`,
    /// `exp` `d·(1 − exp(−β·n/N))`, with `n = step` and `N = total_steps`.
    pub fn decay_at(&self, step: usize, total_steps: usize) -> f64 {
        let n = step as f64;
        match self.decay_type {
            EmaDecayType::Constant => self.decay,
            EmaDecayType::Threshold => self.decay.min((1.0 + n) / (10.0 + n)),
            EmaDecayType::Exp => {
                let x = n / total_steps.max(1) as f64;
                self.decay * (1.0 - (-x * self.beta).exp())
            }
        }
    }

    /// Checks the values.
    pub fn validate(&self) -> Result<(), TrainError> {
        if !(0.0..=1.0).contains(&self.decay) {
            return Err(TrainError::param(
                "ema_params.decay",
                format!(
                    "{} is outside [0, 1]: use a value such as 0.9999",
                    self.decay
                ),
            ));
        }
        if self.decay_type == EmaDecayType::Exp && !(self.beta.is_finite() && self.beta > 0.0) {
            return Err(TrainError::param(
                "ema_params.beta",
                format!(
                    "{} is invalid: use a finite value > 0, such as 15",
                    self.beta
                ),
            ));
        }
        Ok(())
    }
}

/// Copies the float tensors of a module by parameter id.
struct Snapshot(TensorContainer<ParamId>);

impl ModuleVisitor for Snapshot {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.0.register(param.id, param.val());
    }
}

/// `ema·d + live·(1 − d)` for the averaged tensors, `live` for the others.
struct Blend<'a> {
    live: TensorContainer<ParamId>,
    averaged: &'a Option<HashSet<ParamId>>,
    decay: f64,
}

impl ModuleMapper for Blend<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some(live) = self.live.remove::<Tensor<D>>(&param.id) else {
            return param;
        };
        let averaged = self
            .averaged
            .as_ref()
            .is_none_or(|ids| ids.contains(&param.id));
        let d = self.decay;
        if averaged {
            param.map(|ema| ema.mul_scalar(d).add(live.mul_scalar(1.0 - d)))
        } else {
            param.map(|_| live)
        }
    }
}

/// Collects parameter ids.
struct Ids(HashSet<ParamId>);

impl ModuleVisitor for Ids {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.0.insert(param.id);
    }
}

fn ids<M: Module>(module: &M) -> HashSet<ParamId> {
    let mut visitor = Ids(HashSet::new());
    module.visit(&mut visitor);
    visitor.0
}

/// An exponential moving average of a module's float tensors, parameters and BatchNorm running
/// statistics alike (SuperGradients' `ModelEMA`): after each optimizer step,
/// `ema = ema·d + live·(1 − d)` with `d` from [`EmaParams::decay_at`].
///
/// The average is a `valid()` copy (plain tensors, eval mode, its own BatchNorm state), ready
/// for validation. For distillation, [`ModelEma::with_part`] averages the student alone inside
/// the KD module: the teacher and any other tensors are the live ones, never touched (SG's
/// positional update also rewrites the teacher by about one ulp per step; kd does not).
#[derive(Debug, Clone)]
pub struct ModelEma<M> {
    ema: M,
    averaged: Option<HashSet<ParamId>>,
    params: EmaParams,
}

impl<M: Module> ModelEma<M> {
    /// Averages every float tensor of `module`, starting from its current values.
    pub fn new(module: &M, params: EmaParams) -> Result<Self, TrainError> {
        params.validate()?;
        Ok(Self {
            ema: module.valid(),
            averaged: None,
            params,
        })
    }

    /// Averages the tensors of `part`, a sub-module of `module` (the student inside a KD
    /// module); the other tensors of `module` follow it unchanged. Create it after a resumed
    /// model is loaded, since parameters are matched by id.
    pub fn with_part<P: Module>(
        module: &M,
        part: &P,
        params: EmaParams,
    ) -> Result<Self, TrainError> {
        params.validate()?;
        let averaged = ids(part);
        if !averaged.is_subset(&ids(module)) {
            return Err(TrainError::param(
                "ema",
                "the averaged part is not inside the module: pass a sub-module of it, such as its student",
            ));
        }
        Ok(Self {
            ema: module.valid(),
            averaged: Some(averaged),
            params,
        })
    }

    /// Folds `module`'s current tensors into the average after an optimizer step and returns
    /// the decay used. As in SuperGradients, `step` is the 1-based number of training batches
    /// seen so far (`epoch·iters_per_epoch + batch + 1`) and `total_steps` is
    /// `iters_per_epoch·max_epochs`; the `exp` decay depends on both.
    pub fn update(&mut self, module: &M, step: usize, total_steps: usize) -> f64 {
        let decay = self.params.decay_at(step, total_steps);
        // `valid()` first folds pending BatchNorm statistics in, so the average sees this
        // step's running mean and variance.
        let mut live = Snapshot(TensorContainer::new());
        module.valid().visit(&mut live);
        let mut blend = Blend {
            live: live.0,
            averaged: &self.averaged,
            decay,
        };
        self.ema = self.ema.clone().map(&mut blend);
        decay
    }

    /// The averaged module, for validation and `ckpt_best`.
    pub fn module(&self) -> &M {
        &self.ema
    }

    /// The hyper-parameters.
    pub fn params(&self) -> &EmaParams {
        &self.params
    }

    /// The averaged module's record, for `ckpt_latest`.
    pub fn to_record(&self) -> ModuleRecord {
        self.ema.clone().into_record()
    }

    /// Restores a record [`ModelEma::to_record`] wrote, strictly.
    pub fn load_record(self, record: ModuleRecord) -> Result<Self, TrainError> {
        let message = |e: String| TrainError::Param {
            key: "ema".into(),
            message: e,
        };
        let ema = self.ema.try_load_record(record).map_err(|e| {
            message(format!(
                "the EMA record does not fit this model ({e}): resume with the same architecture"
            ))
        })?;
        if let Some(averaged) = &self.averaged
            && !averaged.is_subset(&ids(&ema))
        {
            return Err(message(
                "the EMA record holds other parameters than the model: create the EMA after loading the resumed model".into(),
            ));
        }
        Ok(Self { ema, ..self })
    }

    /// The averaged module's record as burnpack bytes (a `ckpt_latest` blob); `path` names
    /// the checkpoint in errors.
    pub fn to_bytes(&self, path: &Path) -> Result<Vec<u8>, TrainError> {
        crate::checkpoint::module_bytes(&self.ema, path)
    }

    /// Restores bytes [`ModelEma::to_bytes`] wrote; `path` names the checkpoint in errors.
    pub fn load_bytes(self, bytes: &[u8], path: &Path) -> Result<Self, TrainError> {
        let record =
            ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes.to_vec())).map_err(|e| {
                TrainError::Checkpoint {
                    path: path.to_path_buf(),
                    message: format!("unreadable EMA record: {e}"),
                }
            })?;
        self.load_record(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::tests::{Tiny, tiny_grads, tiny_problem};
    use burn::nn::{Linear, LinearConfig};

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f64> {
        t.into_data()
            .try_to_vec::<f32>()
            .unwrap()
            .into_iter()
            .map(f64::from)
            .collect()
    }

    fn fixture() -> serde_json::Value {
        serde_json::from_str(include_str!("../tests/fixtures/optimizers.json")).unwrap()
    }

    fn close(got: &[f64], want: &[f64]) {
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() <= 1e-6 * w.abs().max(1.0), "{g} vs {w}");
        }
    }

    /// `a·d + b·(1 − d)`, element-wise.
    fn blend(a: &[f64], b: &[f64], d: f64) -> Vec<f64> {
        a.iter()
            .zip(b)
            .map(|(a, b)| a * d + b * (1.0 - d))
            .collect()
    }

    #[test]
    fn decay_schedules_follow_supergradients() {
        let p = |decay_type| EmaParams {
            decay: 0.999,
            decay_type,
            beta: 15.0,
        };
        assert_eq!(p(EmaDecayType::Constant).decay_at(7, 100), 0.999);
        // threshold: min(d, (1 + n)/(10 + n))
        assert_eq!(p(EmaDecayType::Threshold).decay_at(0, 100), 0.1);
        assert_eq!(p(EmaDecayType::Threshold).decay_at(5, 100), 6.0 / 15.0);
        assert_eq!(p(EmaDecayType::Threshold).decay_at(100_000, 1), 0.999);
        // exp: d·(1 − exp(−β·n/N))
        let exp = p(EmaDecayType::Exp);
        assert_eq!(exp.decay_at(0, 100), 0.0);
        let want = 0.999 * (1.0 - (-15.0f64 * 40.0 / 100.0).exp());
        assert!((exp.decay_at(40, 100) - want).abs() < 1e-15);
        assert!(exp.decay_at(100, 100) < 0.999 && exp.decay_at(100, 100) > 0.9989);
        assert_eq!(EmaParams::default().decay_type, EmaDecayType::Exp);
        for name in EmaDecayType::NAMES {
            assert!(EmaDecayType::parse(name).is_some());
        }
    }

    #[test]
    fn rejects_bad_params() {
        let bad = EmaParams {
            decay: 1.5,
            ..EmaParams::default()
        };
        let err = bad.validate().unwrap_err().to_string();
        assert!(err.contains("ema_params.decay"), "{err}");
        let bad = EmaParams {
            beta: 0.0,
            ..EmaParams::default()
        };
        let err = bad.validate().unwrap_err().to_string();
        assert!(err.contains("ema_params.beta"), "{err}");
    }

    #[test]
    fn averages_weights_and_current_batchnorm_statistics() {
        let (mut tiny, batch, _) = tiny_problem(&fixture());
        let params = EmaParams {
            decay: 0.9,
            decay_type: EmaDecayType::Constant,
            beta: 15.0,
        };
        let mut ema = ModelEma::new(&tiny, params).unwrap();
        let start_w = values(ema.module().fc.weight.val());
        let start_mean = values(ema.module().bn.running_mean.value());
        // A training step: the forward updates the running statistics, the step the weights.
        let mut optim = crate::OptimizerConfig::defaults(crate::OptimizerKind::Sgd).build();
        let grads = tiny_grads(&tiny, &batch);
        tiny = optim.step(0.1, tiny, grads);
        let d = ema.update(&tiny, 1, 10);
        assert_eq!(d, 0.9);
        let live = tiny.valid();
        let live_mean = values(live.bn.running_mean.value());
        assert_ne!(live_mean, start_mean, "the forward moved the running mean");
        close(
            &values(ema.module().fc.weight.val()),
            &blend(&start_w, &values(live.fc.weight.val()), 0.9),
        );
        close(
            &values(ema.module().bn.running_mean.value()),
            &blend(&start_mean, &live_mean, 0.9),
        );
        // The average keeps its own BatchNorm state: another training forward leaves it.
        let averaged_mean = values(ema.module().bn.running_mean.value());
        let _ = tiny_grads(&tiny, &batch);
        let _ = tiny.valid();
        assert_eq!(values(ema.module().bn.running_mean.value()), averaged_mean);
        assert!(!ema.module().fc.weight.val().device().is_autodiff());
    }

    #[derive(Module, Debug)]
    struct Pair {
        student: Tiny,
        connector: Linear,
    }

    #[test]
    fn with_part_averages_the_part_and_mirrors_the_rest() {
        let (tiny, _, _) = tiny_problem(&fixture());
        let device = Device::flex().autodiff();
        let pair = Pair {
            student: tiny,
            connector: LinearConfig::new(3, 3).init(&device),
        };
        let params = EmaParams {
            decay: 0.5,
            decay_type: EmaDecayType::Constant,
            beta: 15.0,
        };
        let mut ema = ModelEma::with_part(&pair, &pair.student, params).unwrap();
        let start = values(ema.module().student.fc.weight.val());
        let moved = Pair {
            student: Tiny {
                fc: Linear {
                    weight: pair.student.fc.weight.clone().map(|w| w.add_scalar(1.0)),
                    ..pair.student.fc.clone()
                },
                ..pair.student.clone()
            },
            connector: Linear {
                weight: pair.connector.weight.clone().map(|w| w.mul_scalar(2.0)),
                ..pair.connector.clone()
            },
        };
        ema.update(&moved, 3, 10);
        let want: Vec<f64> = start.iter().map(|w| w + 0.5).collect();
        close(&values(ema.module().student.fc.weight.val()), &want);
        assert_eq!(
            values(ema.module().connector.weight.val()),
            values(moved.connector.weight.val())
        );
        let other = LinearConfig::new(3, 3).init(&device);
        let err = ModelEma::with_part(&pair, &other, params).unwrap_err();
        assert!(err.to_string().contains("sub-module"), "{err}");
    }

    #[test]
    fn record_round_trip() {
        let (tiny, batch, _) = tiny_problem(&fixture());
        let mut ema = ModelEma::with_part(&tiny, &tiny, EmaParams::default()).unwrap();
        let mut optim = crate::OptimizerConfig::defaults(crate::OptimizerKind::Adam).build();
        let grads = tiny_grads(&tiny, &batch);
        let tiny = optim.step(0.1, tiny, grads);
        ema.update(&tiny, 5, 10);
        let record = ema.to_record();
        let fresh = ModelEma::with_part(&tiny, &tiny, EmaParams::default()).unwrap();
        let restored = fresh.load_record(record).unwrap();
        let path = Path::new("ckpt_latest.kd");
        let bytes = ema.to_bytes(path).unwrap();
        let from_bytes = ModelEma::new(&tiny, EmaParams::default())
            .unwrap()
            .load_bytes(&bytes, path)
            .unwrap();
        assert_eq!(
            values(from_bytes.module().fc.weight.val()),
            values(ema.module().fc.weight.val())
        );
        assert_eq!(
            values(restored.module().fc.weight.val()),
            values(ema.module().fc.weight.val())
        );
        assert_eq!(
            values(restored.module().bn.running_var.value()),
            values(ema.module().bn.running_var.value())
        );
        // A record of another network does not load.
        let device = Device::flex();
        let other = ModelEma::new(&LinearConfig::new(2, 2).init(&device), EmaParams::default())
            .unwrap()
            .to_record();
        let err = ema.load_record(other).unwrap_err().to_string();
        assert!(err.contains("does not fit"), "{err}");
    }
}
