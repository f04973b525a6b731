//! The PyTorch golden fixture shared by the loss tests (test builds only).
//!
//! `tests/fixtures/kd_logits.json` is written by `tools/reference/losses.py`; its generating
//! code is quoted next to the tests that read it.

use burn::prelude::*;
use kd_core::Targets;
use serde::Deserialize;

/// The whole fixture.
#[derive(Debug, Deserialize)]
pub(crate) struct Fixture {
    pub inputs: Inputs,
    pub hard_targets: Vec<i64>,
    pub soft_targets: Vec<Vec<f64>>,
    pub kd_cases: Vec<KdCase>,
    pub ce_cases: Vec<CeCase>,
}

/// The two sets of logits: moderate (`base`) and saturated (`saturated`).
#[derive(Debug, Deserialize)]
pub(crate) struct Inputs {
    pub base: Logits,
    pub saturated: Logits,
}

/// Student and teacher logits, `[batch, classes]`.
#[derive(Debug, Deserialize)]
pub(crate) struct Logits {
    pub student: Vec<Vec<f64>>,
    pub teacher: Vec<Vec<f64>>,
}

/// One `KDLogitsLoss` case.
#[derive(Debug, Deserialize)]
pub(crate) struct KdCase {
    pub inputs: String,
    pub distillation_loss_coeff: f64,
    pub targets: String,
    pub temperature: Option<f64>,
    pub label_smoothing: f64,
    pub total: f64,
    pub task: f64,
    pub distillation: f64,
    pub grad: Option<Vec<Vec<f64>>>,
}

/// One cross-entropy case on the `base` student logits.
#[derive(Debug, Deserialize)]
pub(crate) struct CeCase {
    pub targets: String,
    pub label_smoothing: f64,
    pub loss: f64,
    pub grad: Vec<Vec<f64>>,
}

impl Fixture {
    /// Parses the committed fixture.
    pub fn load() -> Self {
        serde_json::from_str(include_str!("../tests/fixtures/kd_logits.json")).expect(
            "tests/fixtures/kd_logits.json parses; regenerate it with tools/reference/losses.py",
        )
    }

    /// The logits named by a case's `inputs` field.
    pub fn logits(&self, name: &str) -> &Logits {
        match name {
            "base" => &self.inputs.base,
            "saturated" => &self.inputs.saturated,
            other => panic!("unknown fixture inputs `{other}`"),
        }
    }

    /// The targets named `hard` or `soft`, on `device`.
    pub fn targets(&self, kind: &str, device: &Device) -> Targets {
        match kind {
            "hard" => Targets::Hard(Tensor::<1, Int>::from_data(
                TensorData::new(self.hard_targets.clone(), [self.hard_targets.len()]),
                device,
            )),
            "soft" => Targets::Soft(matrix(&self.soft_targets, device)),
            other => panic!("unknown fixture targets `{other}`"),
        }
    }
}

/// A `[rows, cols]` float tensor from nested values (stored as exact float32 values).
pub(crate) fn matrix(rows: &[Vec<f64>], device: &Device) -> Tensor<2> {
    let cols = rows.first().map_or(0, Vec::len);
    let flat: Vec<f32> = rows.iter().flatten().map(|&v| v as f32).collect();
    Tensor::from_data(TensorData::new(flat, [rows.len(), cols]), device)
}

/// The values of a float tensor.
pub(crate) fn values<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data()
        .try_into_vec::<f32>()
        .expect("a float32 tensor")
        .into_iter()
        .map(f64::from)
        .collect()
}

/// Asserts `got` is within 1e-5 relative (1e-6 absolute near zero) of `want`.
pub(crate) fn assert_close(got: f64, want: f64, what: &str) {
    let tol = (1e-5 * want.abs()).max(1e-6);
    assert!(
        (got - want).abs() <= tol,
        "{what}: got {got}, want {want} (diff {:e}, tolerance {tol:e})",
        (got - want).abs()
    );
}

/// Element-wise [`assert_close`].
pub(crate) fn assert_all_close(got: &[f64], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_close(*g, *w, &format!("{what}[{i}]"));
    }
}
