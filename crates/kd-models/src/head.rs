use burn::nn::{Initializer, Linear, LinearConfig};
use burn::prelude::*;

/// A freshly initialised classifier with the input width of `old` and `num_classes` outputs.
///
/// The weight gets PyTorch's default Linear initialisation; the bias too, or zeros when
/// `zero_bias` is set (as the CIFAR wide ResNets initialise it).
pub(crate) fn fresh_head(
    old: &Linear,
    num_classes: usize,
    zero_bias: bool,
    device: &Device,
) -> Linear {
    let [in_features, _] = old.weight.dims();
    let mut head = LinearConfig::new(in_features, num_classes).init(device);
    if zero_bias {
        head.bias = Some(Initializer::Zeros.init([num_classes], device));
    }
    head
}
