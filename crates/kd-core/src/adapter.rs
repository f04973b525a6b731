use burn::module::{Module, Param};
use burn::prelude::*;

use crate::KdError;

/// Configuration of a [`NormalizationAdapter`], with SuperGradients' argument names.
#[derive(Debug, Clone, PartialEq)]
pub struct NormalizationAdapterConfig {
    /// Per-channel mean the input was normalised with.
    pub mean_original: Vec<f64>,
    /// Per-channel standard deviation the input was normalised with.
    pub std_original: Vec<f64>,
    /// Per-channel mean the receiving network expects.
    pub mean_required: Vec<f64>,
    /// Per-channel standard deviation the receiving network expects.
    pub std_required: Vec<f64>,
}

impl NormalizationAdapterConfig {
    /// A configuration from the four per-channel lists.
    pub fn new(
        mean_original: Vec<f64>,
        std_original: Vec<f64>,
        mean_required: Vec<f64>,
        std_required: Vec<f64>,
    ) -> Self {
        Self {
            mean_original,
            std_original,
            mean_required,
            std_required,
        }
    }

    /// Checks the lists and builds the adapter on `device`.
    pub fn init(&self, device: &Device) -> Result<NormalizationAdapter, KdError> {
        let c = self.mean_original.len();
        for (field, v) in [
            ("std_original", &self.std_original),
            ("mean_required", &self.mean_required),
            ("std_required", &self.std_required),
        ] {
            if v.len() != c {
                return Err(KdError::AdapterLength {
                    field,
                    reference: "mean_original",
                    expected: c,
                    found: v.len(),
                });
            }
        }
        for (field, v) in [
            ("std_original", &self.std_original),
            ("std_required", &self.std_required),
        ] {
            if let Some((channel, &value)) = v
                .iter()
                .enumerate()
                .find(|(_, s)| !s.is_finite() || **s <= 0.0)
            {
                return Err(KdError::AdapterStd {
                    field,
                    channel,
                    value,
                });
            }
        }
        // SuperGradients: additive = (mean_o - mean_r) / std_o, multiplier = std_o / std_r.
        let additive: Vec<f32> = (0..c)
            .map(|i| {
                ((self.mean_original[i] - self.mean_required[i]) / self.std_original[i]) as f32
            })
            .collect();
        let multiplier: Vec<f32> = (0..c)
            .map(|i| (self.std_original[i] / self.std_required[i]) as f32)
            .collect();
        let make = |v: Vec<f32>| {
            Param::from_data(TensorData::new(v, [c, 1, 1]), device).set_require_grad(false)
        };
        Ok(NormalizationAdapter {
            additive: make(additive),
            multiplier: make(multiplier),
        })
    }
}

/// SuperGradients' `NormalizationAdapter`: `forward(x) = (x + additive) * multiplier`.
///
/// It undoes the normalisation a batch was given and applies the one another network expects:
/// `(x + (mean_o - mean_r) / std_o) * (std_o / std_r) = (x * std_o + mean_o - mean_r) / std_r`.
/// Its state carries SuperGradients' names, `additive` and `multiplier`, each of shape `[C, 1, 1]`.
///
/// # Shapes
/// - input and output: `[batch, C, height, width]`
#[derive(Module, Debug)]
pub struct NormalizationAdapter {
    /// `(mean_original - mean_required) / std_original`, shape `[C, 1, 1]`.
    pub additive: Param<Tensor<3>>,
    /// `std_original / std_required`, shape `[C, 1, 1]`.
    pub multiplier: Param<Tensor<3>>,
}

impl NormalizationAdapter {
    /// Re-normalises `x`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let add = self.additive.val().unsqueeze::<4>();
        let mul = self.multiplier.val().unsqueeze::<4>();
        let device = x.device();
        // Keep the adapter's tensors on the batch's device kind (plain for the teacher).
        let (add, mul) = if device.is_autodiff() {
            (add, mul)
        } else {
            (add.without_autodiff(), mul.without_autodiff())
        };
        (x + add) * mul
    }
}

/// An input adapter applied to a batch before a network sees it.
#[derive(Module, Debug)]
pub enum InputAdapter {
    /// SuperGradients' `NormalizationAdapter`.
    Normalization(NormalizationAdapter),
}

impl InputAdapter {
    /// Applies the adapter.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            InputAdapter::Normalization(a) => a.forward(x),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Golden values from SuperGradients' formula, computed in PyTorch:
    /// ```python
    /// mo, so, mr, sr = [.485,.456,.406], [.229,.224,.225], [.5]*3, [.5]*3
    /// x = torch.tensor([[-1.0, 0.0, 2.0]]).reshape(1,3,1,1)
    /// add = (torch.tensor(mo)-torch.tensor(mr))/torch.tensor(so)
    /// mul = torch.tensor(so)/torch.tensor(sr)
    /// (x + add.reshape(3,1,1)) * mul.reshape(3,1,1)  # -> [-0.488, -0.176, 0.712]
    /// ```
    #[test]
    fn matches_supergradients_formula() {
        let device = Device::flex();
        let a = NormalizationAdapterConfig::new(
            vec![0.485, 0.456, 0.406],
            vec![0.229, 0.224, 0.225],
            vec![0.5; 3],
            vec![0.5; 3],
        )
        .init(&device)
        .unwrap();
        let x = Tensor::<1>::from_floats([-1.0, 0.0, 2.0], &device).reshape([1, 3, 1, 1]);
        let y: Vec<f32> = a.forward(x).into_data().try_into_vec_as::<f32>().unwrap();
        // Equivalent closed form: (x * so + mo - mr) / sr.
        let (x, so, mo) = (
            [-1.0, 0.0, 2.0],
            [0.229, 0.224, 0.225],
            [0.485, 0.456, 0.406],
        );
        for (i, g) in y.iter().enumerate() {
            let e = (x[i] * so[i] + mo[i] - 0.5) / 0.5;
            assert!((*g as f64 - e).abs() < 1e-6, "{g} vs {e}");
        }
    }

    #[test]
    fn rejects_bad_statistics() {
        let device = Device::flex();
        let err =
            NormalizationAdapterConfig::new(vec![0.5; 3], vec![0.5; 2], vec![0.5; 3], vec![0.5; 3])
                .init(&device)
                .unwrap_err();
        assert!(err.to_string().contains("std_original"), "{err}");
        let err = NormalizationAdapterConfig::new(vec![0.5], vec![0.0], vec![0.5], vec![0.5])
            .init(&device)
            .unwrap_err();
        assert!(err.to_string().contains("positive"), "{err}");
    }
}
