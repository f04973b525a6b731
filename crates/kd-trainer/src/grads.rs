//! Pure helpers over a module's gradients: global-norm clipping, accumulation and scaling.
//!
//! Burn's own `GradientClipping::Norm` clips each parameter tensor by its own norm; these
//! helpers implement PyTorch's `clip_grad_norm_` (one L2 norm over all gradients) and the
//! summing of gradients over batches that `loss.backward()` does in PyTorch (SuperGradients'
//! `batch_accumulate`). `module` names the parameters: a gradient whose parameter is not in it
//! is left out of the norm and dropped by [`accumulate`].

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;

use crate::TrainError;

/// Sums the squares of the gradients of `module`'s parameters.
struct SquaredNorm<'a> {
    grads: &'a GradientsParams,
    total: Option<Tensor<1>>,
}

impl ModuleVisitor for SquaredNorm<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.get::<D>(param.id) {
            let sq = g.square().sum();
            self.total = Some(match self.total.take() {
                Some(t) => {
                    let device = t.device();
                    t.add(sq.to_device(&device))
                }
                None => sq,
            });
        }
    }
}

/// Multiplies the gradients of `module`'s parameters by a factor.
struct Scale<'a> {
    grads: &'a mut GradientsParams,
    factor: f64,
}

impl ModuleVisitor for Scale<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.remove::<D>(param.id) {
            self.grads.register(param.id, g.mul_scalar(self.factor));
        }
    }
}

/// Adds the gradients of `b` to those of `a`, parameter by parameter.
struct Sum<'a> {
    out: &'a mut GradientsParams,
    a: GradientsParams,
    b: GradientsParams,
}

impl ModuleVisitor for Sum<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let sum = match (self.a.remove::<D>(param.id), self.b.remove::<D>(param.id)) {
            (Some(a), Some(b)) => a.add(b),
            (Some(g), None) | (None, Some(g)) => g,
            (None, None) => return,
        };
        self.out.register(param.id, sum);
    }
}

/// The global L2 norm `√(Σ‖g‖²)` of the gradients of `module`'s parameters (0 without
/// gradients). Reading it waits for the device.
pub fn global_norm<M: Module>(grads: &GradientsParams, module: &M) -> f64 {
    let mut visitor = SquaredNorm { grads, total: None };
    module.visit(&mut visitor);
    visitor.total.map_or(0.0, |t| {
        let sq: f64 = t.into_scalar::<f32>() as f64;
        sq.sqrt()
    })
}

/// Multiplies every gradient of `module`'s parameters by `factor`.
pub fn scale<M: Module>(mut grads: GradientsParams, module: &M, factor: f64) -> GradientsParams {
    module.visit(&mut Scale {
        grads: &mut grads,
        factor,
    });
    grads
}

/// The sum of two sets of gradients of `module`'s parameters (a parameter present in one set
/// only keeps its gradient), as PyTorch accumulates `.grad` over several `backward()` calls.
///
/// SuperGradients' `batch_accumulate: k` sums the gradients of `k` batches without dividing
/// the loss, so the step sees `k` times a single batch's gradient; [`scale`] by `1/k` gives the
/// mean instead.
pub fn accumulate<M: Module>(
    a: GradientsParams,
    b: GradientsParams,
    module: &M,
) -> GradientsParams {
    let mut out = GradientsParams::new();
    module.visit(&mut Sum {
        out: &mut out,
        a,
        b,
    });
    out
}

/// PyTorch's `torch.nn.utils.clip_grad_norm_`: one L2 norm over all the gradients of
/// `module`'s parameters; when it exceeds `max_norm` every gradient is multiplied by
/// `max_norm / (norm + 1e-6)`. Returns the gradients and the norm before clipping (a
/// non-finite norm leaves the gradients as they are, for the caller to report).
///
/// SuperGradients' `clip_grad_norm` clips this way over the whole trained network, after the
/// gradients of `batch_accumulate` batches are summed and before the optimizer step.
pub fn clip_grad_norm<M: Module>(
    grads: GradientsParams,
    module: &M,
    max_norm: f64,
) -> Result<(GradientsParams, f64), TrainError> {
    if !(max_norm.is_finite() && max_norm > 0.0) {
        return Err(TrainError::param(
            "clip_grad_norm",
            format!("{max_norm} is not a valid norm: use a finite value > 0, or leave it unset"),
        ));
    }
    let norm = global_norm(&grads, module);
    let coef = max_norm / (norm + 1e-6);
    let grads = if coef < 1.0 {
        scale(grads, module, coef)
    } else {
        grads
    };
    Ok((grads, norm))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::tests::{Tiny, tiny_grads, tiny_problem};

    fn read<const D: usize>(grads: &GradientsParams, param: &Param<Tensor<D>>) -> Vec<f32> {
        grads
            .get::<D>(param.id)
            .expect("a gradient")
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()
    }

    /// The gradients of `tiny` as PyTorch names and lays them out (`fc.weight` is `[out, in]`).
    fn torch_grads(grads: &GradientsParams, tiny: &Tiny) -> Vec<(&'static str, Vec<f32>)> {
        let w = grads.get::<2>(tiny.fc.weight.id).expect("a gradient");
        let w = w.transpose().into_data().try_to_vec::<f32>().unwrap();
        vec![
            ("fc.weight", w),
            ("fc.bias", read(grads, tiny.fc.bias.as_ref().unwrap())),
            ("bn.weight", read(grads, &tiny.bn.gamma)),
            ("bn.bias", read(grads, &tiny.bn.beta)),
        ]
    }

    fn flat(v: &serde_json::Value) -> Vec<f64> {
        match v {
            serde_json::Value::Array(items) => items.iter().flat_map(flat).collect(),
            other => vec![other.as_f64().unwrap()],
        }
    }

    fn max_rel_err(got: &[f32], want: &[f64]) -> f64 {
        assert_eq!(got.len(), want.len());
        got.iter()
            .zip(want)
            .map(|(g, w)| (*g as f64 - w).abs() / w.abs().max(1e-3))
            .fold(0.0, f64::max)
    }

    // Golden values: tests/fixtures/grads.json, written by tools/reference/optimizers.py
    // (PyTorch 2.9.0, float32), for the gradient of `mean((fc(bn(x)) - y)^2)`:
    //
    // ```python
    // total = nn.utils.clip_grad_norm_(m.parameters(), max_norm)   # max_norm 0.05 and 1e3
    // loss_of(m, batch).backward(); loss_of(m, batch2).backward()  # accumulated .grad
    // ```
    #[test]
    fn clip_and_accumulate_match_pytorch() {
        let fixture: serde_json::Value =
            serde_json::from_str(include_str!("../tests/fixtures/grads.json")).unwrap();
        let (tiny, batch, batch2) = tiny_problem(&fixture);
        let mut worst = 0.0f64;
        for case in fixture["clip"].as_array().unwrap() {
            let max_norm = case["max_norm"].as_f64().unwrap();
            let (grads, norm) = clip_grad_norm(tiny_grads(&tiny, &batch), &tiny, max_norm).unwrap();
            let want = case["total_norm"].as_f64().unwrap();
            let err = (norm - want).abs() / want;
            worst = worst.max(err);
            assert!(err < 1e-5, "total norm {norm} vs {want}");
            for (name, got) in torch_grads(&grads, &tiny) {
                let err = max_rel_err(&got, &flat(&case["grads"][name]));
                worst = worst.max(err);
                assert!(err < 1e-5, "max_norm {max_norm}, {name}: {err}");
            }
        }
        let summed = accumulate(tiny_grads(&tiny, &batch), tiny_grads(&tiny, &batch2), &tiny);
        for (name, got) in torch_grads(&summed, &tiny) {
            let err = max_rel_err(&got, &flat(&fixture["accumulated"][name]));
            worst = worst.max(err);
            assert!(err < 1e-5, "accumulated {name}: {err}");
        }
        eprintln!("grads: max relative error {worst:e}");
    }

    #[test]
    fn scale_multiplies_and_norm_follows() {
        let fixture: serde_json::Value =
            serde_json::from_str(include_str!("../tests/fixtures/grads.json")).unwrap();
        let (tiny, batch, _) = tiny_problem(&fixture);
        let grads = tiny_grads(&tiny, &batch);
        let norm = global_norm(&grads, &tiny);
        let halved = scale(grads, &tiny, 0.5);
        assert!((global_norm(&halved, &tiny) - norm / 2.0).abs() < 1e-6 * norm);
        // A gradient of a parameter outside the module is neither counted nor scaled.
        let other = Tiny::new(&Device::flex().autodiff());
        assert_eq!(global_norm(&halved, &other), 0.0);
        assert_eq!(global_norm(&GradientsParams::new(), &tiny), 0.0);
    }

    #[test]
    fn rejects_a_bad_max_norm() {
        let tiny = Tiny::new(&Device::flex().autodiff());
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let err = clip_grad_norm(GradientsParams::new(), &tiny, bad).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains("clip_grad_norm"), "{msg}");
        }
    }
}
