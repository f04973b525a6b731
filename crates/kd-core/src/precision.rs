//! Low-precision frozen networks: a teacher whose weights and activations are bf16 or f16.

use std::fmt;

use burn::module::{Module, ModuleMapper, Param};
use burn::prelude::*;
use burn::tensor::{DType, FloatDType};

use crate::KdError;

/// The float precision a frozen network runs in.
///
/// Only the teacher takes a lower precision: Burn 0.22 has no autocast, so a student in bf16
/// would also keep bf16 weights and optimizer state (no f32 master copy), which kd does not do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// Single precision (the default).
    #[default]
    F32,
    /// bfloat16: f32's range with 8 bits of mantissa.
    Bf16,
    /// IEEE half precision.
    F16,
}

impl Precision {
    /// The names accepted in recipes.
    pub const NAMES: &'static [&'static str] = &["f32", "bf16", "f16"];

    /// Parses `f32`, `bf16` or `f16` (also `float32`, `bfloat16`, `float16`).
    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "f32" | "float32" | "fp32" => Some(Self::F32),
            "bf16" | "bfloat16" => Some(Self::Bf16),
            "f16" | "float16" | "fp16" | "half" => Some(Self::F16),
            _ => None,
        }
    }

    /// The Burn dtype.
    pub fn dtype(self) -> FloatDType {
        match self {
            Self::F32 => FloatDType::F32,
            Self::Bf16 => FloatDType::BF16,
            Self::F16 => FloatDType::F16,
        }
    }

    /// Fails with a clear message when `device`'s backend cannot compute in this precision.
    pub fn check(self, device: &Device) -> Result<(), KdError> {
        let dtype: DType = self.dtype().into();
        if device.supports_dtype(dtype) {
            Ok(())
        } else {
            Err(KdError::UnsupportedPrecision {
                precision: self,
                device: format!("{device:?}"),
            })
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::F32 => "f32",
            Self::Bf16 => "bf16",
            Self::F16 => "f16",
        })
    }
}

/// Casts every float parameter and buffer of `module` (BatchNorm statistics included) to
/// `dtype`. Parameter ids are kept, so a record saved afterwards still loads by name.
pub fn cast_module<M: Module>(module: M, dtype: FloatDType) -> M {
    struct Cast(FloatDType);
    impl ModuleMapper for Cast {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let dtype = self.0;
            param.map(|t| t.cast(dtype))
        }
    }
    module.map(&mut Cast(dtype))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig};

    #[derive(Module, Debug)]
    struct Net {
        linear: Linear,
        norm: BatchNorm,
    }

    #[test]
    fn names_parse_and_print() {
        for name in Precision::NAMES {
            assert_eq!(Precision::parse(name).unwrap().to_string(), *name);
        }
        assert_eq!(Precision::parse("BFloat16"), Some(Precision::Bf16));
        assert_eq!(Precision::parse("f8"), None);
    }

    #[test]
    fn cast_reaches_parameters_and_buffers() {
        let device = Device::flex();
        let net = Net {
            linear: LinearConfig::new(3, 2).init(&device),
            norm: BatchNormConfig::new(2).init(&device),
        };
        let before = net.linear.weight.val().into_data().convert::<f32>();
        let net = cast_module(net, FloatDType::BF16);
        assert_eq!(net.linear.weight.val().dtype(), DType::BF16);
        assert_eq!(net.linear.bias.as_ref().unwrap().val().dtype(), DType::BF16);
        assert_eq!(net.norm.running_mean.value().dtype(), DType::BF16);
        assert_eq!(net.norm.gamma.val().dtype(), DType::BF16);
        // bf16 keeps about three significant digits.
        let after = net.linear.weight.val().into_data().convert::<f32>();
        after.assert_approx_eq::<f32>(&before, burn::tensor::Tolerance::absolute(1e-2));
        assert!(Precision::Bf16.check(&device).is_ok());
    }
}
