//! The PyTorch golden fixtures shared by the loss tests (test builds only).
//!
//! `tests/fixtures/kd_logits.json` is written by `tools/reference/losses.py`, the fixtures of
//! the other losses (`tests/fixtures/<method>.json`) by `tools/reference/loss_bank.py`, which
//! `losses.py` runs; the generating code is quoted next to the tests that read them. The other
//! losses share one reader, [`LossFixture`].

use std::collections::BTreeMap;

use burn::prelude::*;
use kd_core::Targets;
use serde::Deserialize;
use serde::de::DeserializeOwned;

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

/// A float32 tensor as written by `loss_bank.py`: its shape and its row-major values.
#[derive(Debug, Deserialize)]
pub(crate) struct Array {
    pub shape: Vec<usize>,
    pub data: Vec<f64>,
}

impl Array {
    /// The tensor on `device`; `D` must be the stored rank.
    pub fn tensor<const D: usize>(&self, device: &Device) -> Tensor<D> {
        assert_eq!(
            self.shape.len(),
            D,
            "fixture array of shape {:?}",
            self.shape
        );
        let flat: Vec<f32> = self.data.iter().map(|&v| v as f32).collect();
        Tensor::from_data(TensorData::new(flat, self.shape.clone()), device)
    }
}

/// A student input and the teacher input it is compared with.
#[derive(Debug, Deserialize)]
pub(crate) struct Pair {
    pub student: Array,
    pub teacher: Array,
}

/// Hard class indices and soft targets, for the losses that read targets.
#[derive(Debug, Deserialize)]
pub(crate) struct FixtureTargets {
    pub hard: Vec<i64>,
    pub soft: Array,
}

/// One case of a [`LossFixture`]: inputs and targets by name, the hyper-parameters `P`, the
/// loss and the gradient of the loss with respect to the student input.
#[derive(Debug, Deserialize)]
pub(crate) struct LossCase<P> {
    pub inputs: String,
    pub targets: Option<String>,
    pub params: P,
    pub loss: f64,
    pub grad: Array,
}

/// The fixture of one loss, `tests/fixtures/<method>.json`, with hyper-parameters of type `P`.
#[derive(Debug, Deserialize)]
pub(crate) struct LossFixture<P> {
    pub inputs: BTreeMap<String, Pair>,
    pub targets: Option<FixtureTargets>,
    pub cases: Vec<LossCase<P>>,
}

impl<P: DeserializeOwned + std::fmt::Debug> LossFixture<P> {
    /// Parses the text of `tests/fixtures/<file>` (pass it through `include_str!`).
    pub fn parse(json: &str, file: &str) -> Self {
        serde_json::from_str(json).unwrap_or_else(|err| {
            panic!(
                "tests/fixtures/{file} does not parse ({err}); regenerate it with \
                 tools/reference/losses.py"
            )
        })
    }

    /// The targets named by a case (`hard` or `soft`), on `device`.
    pub fn targets(&self, case: &LossCase<P>, device: &Device) -> Option<Targets> {
        let name = case.targets.as_deref()?;
        let targets = self.targets.as_ref().expect("the fixture stores targets");
        Some(match name {
            "hard" => Targets::Hard(Tensor::<1, Int>::from_data(
                TensorData::new(targets.hard.clone(), [targets.hard.len()]),
                device,
            )),
            "soft" => Targets::Soft(targets.soft.tensor(device)),
            other => panic!("unknown fixture targets `{other}`"),
        })
    }

    /// Runs every case whose inputs have rank `D` through `loss` and compares the loss and the
    /// student's gradient with PyTorch's. The student input is tracked on the autodiff device;
    /// the teacher input and the targets stay on the plain device. Each case runs once more
    /// with a tracked teacher, which must receive no gradient and leave the student's
    /// unchanged. Returns the number of cases run.
    pub fn check<const D: usize>(
        &self,
        what: &str,
        loss: impl Fn(&P, Tensor<D>, Tensor<D>, Option<&Targets>) -> Tensor<1>,
    ) -> usize {
        let device = Device::flex();
        let train_device = device.clone().autodiff();
        let mut run = 0;
        for case in &self.cases {
            let label = format!("{what}, {} inputs, {:?}", case.inputs, case.params);
            let pair = &self.inputs[&case.inputs];
            if pair.student.shape.len() != D {
                continue;
            }
            run += 1;
            let student = pair.student.tensor::<D>(&train_device).require_grad();
            let teacher = pair.teacher.tensor::<D>(&device);
            let targets = self.targets(case, &device);
            let out = loss(&case.params, student.clone(), teacher, targets.as_ref());
            assert_eq!(out.dims(), [1], "{label}: loss shape");
            assert_close(values(out.clone())[0], case.loss, &format!("{label}: loss"));
            let grads = out.backward();
            let grad = student
                .grad(&grads)
                .expect("the student input receives a gradient");
            assert_eq!(
                grad.dims().to_vec(),
                case.grad.shape,
                "{label}: gradient shape"
            );
            assert_all_close(
                &values(grad),
                &case.grad.data,
                &format!("{label}: gradient"),
            );

            // A tracked teacher is detached inside the loss.
            let student = pair.student.tensor::<D>(&train_device).require_grad();
            let teacher = pair.teacher.tensor::<D>(&train_device).require_grad();
            let out = loss(
                &case.params,
                student.clone(),
                teacher.clone(),
                targets.as_ref(),
            );
            let grads = out.backward();
            assert!(
                teacher.grad(&grads).is_none(),
                "{label}: the teacher got a gradient"
            );
            let grad = student
                .grad(&grads)
                .expect("the student input receives a gradient");
            assert_all_close(
                &values(grad),
                &case.grad.data,
                &format!("{label}: gradient with a tracked teacher"),
            );
        }
        run
    }
}
