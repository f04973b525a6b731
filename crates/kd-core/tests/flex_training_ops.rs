//! flex's kernels from kd's burn-flex patch (`third_party/burn-flex/KD-PATCH.md`): the
//! convolution forward pass (tiles spanning several images), the convolution weight and input
//! gradients, BatchNorm in training (forward and backward) and inference mode, and max
//! pooling, on odd shapes, strides, paddings (symmetric and asymmetric), dilations and groups,
//! against direct f64 computations of the same formulas. They run through Burn's public API on
//! `Device::flex().autodiff()`, the path a training step takes.

use burn::prelude::*;
use burn::tensor::module::{
    batch_norm, batch_norm_train, conv2d, conv2d_weight_backward, max_pool2d,
    max_pool2d_with_indices,
};
use burn::tensor::ops::{ConvOptions, MaxPoolOptions};

/// Deterministic values in [-1, 1) (a fixed LCG, so no test shares Burn's random stream).
fn data(len: usize, seed: u64) -> Vec<f32> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn tensor<const D: usize>(values: &[f32], shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(values.to_vec(), shape), device)
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data().iter::<f64>().collect()
}

fn assert_close(got: &[f64], want: &[f64], what: &str) {
    assert_close_within(got, want, 1e-5, what);
}

/// Every `|got - want|` at most `tolerance · max(1, max |want|)`.
fn assert_close_within(got: &[f64], want: &[f64], tolerance: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tolerance * scale,
            "{what}: element {i}: got {g}, want {w} (scale {scale})"
        );
    }
}

struct ConvCase {
    batch: usize,
    channels_in: usize,
    channels_out: usize,
    size: [usize; 2],
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [(usize, usize); 2],
    dilation: [usize; 2],
    groups: usize,
}

impl ConvCase {
    fn options(&self) -> ConvOptions<2> {
        let mut options = ConvOptions::new(self.stride, [0, 0], self.dilation, self.groups);
        options.padding = self.padding;
        options
    }

    /// The shapes of the input, the weight and the output.
    fn shapes(&self) -> [[usize; 4]; 3] {
        let [ho, wo] = self.output_size();
        let [kh, kw] = self.kernel;
        [
            [self.batch, self.channels_in, self.size[0], self.size[1]],
            [self.channels_out, self.channels_in / self.groups, kh, kw],
            [self.batch, self.channels_out, ho, wo],
        ]
    }

    fn output_size(&self) -> [usize; 2] {
        [0, 1].map(|d| {
            let padded = self.size[d] + self.padding[d].0 + self.padding[d].1;
            (padded - self.dilation[d] * (self.kernel[d] - 1) - 1) / self.stride[d] + 1
        })
    }

    /// Calls `term(y, w, x)` with the flat indices of every product `W[w] · x[x]` that adds to
    /// output `y`: `y[n, co, oh, ow] = Σ_{ci, ki, kj} W[co, ci, ki, kj] · x[n, g·Ci_g + ci,
    /// oh·s + ki·d − p, ow·s + kj·d − p]` (zero padding).
    fn for_each_term(&self, mut term: impl FnMut(usize, usize, usize)) {
        let [h, w] = self.size;
        let [ho, wo] = self.output_size();
        let ci_g = self.channels_in / self.groups;
        let co_g = self.channels_out / self.groups;
        let [kh, kw] = self.kernel;
        let input = |size: usize, d: usize, o: usize, k: usize| {
            let i =
                (o * self.stride[d] + k * self.dilation[d]) as isize - self.padding[d].0 as isize;
            (0..size as isize).contains(&i).then_some(i as usize)
        };
        for n in 0..self.batch {
            for co in 0..self.channels_out {
                let channel_base = n * self.channels_in + co / co_g * ci_g;
                for (oh, ow) in (0..ho).flat_map(|oh| (0..wo).map(move |ow| (oh, ow))) {
                    let y = ((n * self.channels_out + co) * ho + oh) * wo + ow;
                    for (ci, ki, kj) in (0..ci_g).flat_map(|ci| {
                        (0..kh).flat_map(move |ki| (0..kw).map(move |kj| (ci, ki, kj)))
                    }) {
                        if let (Some(ih), Some(iw)) = (input(h, 0, oh, ki), input(w, 1, ow, kj)) {
                            let x = ((channel_base + ci) * h + ih) * w + iw;
                            term(y, ((co * ci_g + ci) * kh + ki) * kw + kj, x);
                        }
                    }
                }
            }
        }
    }

    fn forward(&self, x: &[f32], weight: &[f32]) -> Vec<f64> {
        let [ho, wo] = self.output_size();
        let mut out = vec![0f64; self.batch * self.channels_out * ho * wo];
        self.for_each_term(|y, w, i| out[y] += f64::from(weight[w]) * f64::from(x[i]));
        out
    }

    /// dW[co, ci, ki, kj] = Σ over the terms that use it of dY[y] · x[x].
    fn weight_grad(&self, x: &[f32], dy: &[f32]) -> Vec<f64> {
        let [kh, kw] = self.kernel;
        let mut dw = vec![0f64; self.channels_out * self.channels_in / self.groups * kh * kw];
        self.for_each_term(|y, w, i| dw[w] += f64::from(dy[y]) * f64::from(x[i]));
        dw
    }

    /// dX[x] = Σ over the terms that use it of dY[y] · W[w].
    fn input_grad(&self, weight: &[f32], dy: &[f32]) -> Vec<f64> {
        let mut dx = vec![0f64; self.batch * self.channels_in * self.size[0] * self.size[1]];
        self.for_each_term(|y, w, i| dx[i] += f64::from(dy[y]) * f64::from(weight[w]));
        dx
    }
}

/// `[batch, in, out], size, kernel, stride, padding (begin, end), dilation, groups`.
type ConvRow = (
    [usize; 3],
    [usize; 2],
    [usize; 2],
    [usize; 2],
    [(usize, usize); 2],
    [usize; 2],
    usize,
);

/// One row per case (a table, so rustfmt keeps its rows).
#[rustfmt::skip]
const CONV_CASES: [ConvRow; 22] = [
    // ResNet's 3×3, padding 1, at odd sizes and batch.
    ([3, 5, 7], [9, 11], [3, 3], [1, 1], [(1, 1), (1, 1)], [1, 1], 1),
    // Strided, unpadded, rectangular kernel.
    ([2, 4, 6], [10, 7], [3, 2], [2, 3], [(0, 0), (0, 0)], [1, 1], 1),
    // 1×1 downsample with stride 2.
    ([5, 6, 3], [8, 8], [1, 1], [2, 2], [(0, 0), (0, 0)], [1, 1], 1),
    // Dilation and groups.
    ([2, 6, 9], [12, 10], [3, 3], [1, 2], [(2, 2), (1, 1)], [2, 1], 3),
    // Asymmetric padding ("same" with an even kernel).
    ([2, 3, 4], [7, 6], [2, 4], [1, 1], [(0, 1), (1, 2)], [1, 1], 1),
    // A 7×7 stem with stride 2 and padding 3 on a larger input.
    ([4, 3, 8], [23, 19], [7, 7], [2, 2], [(3, 3), (3, 3)], [1, 1], 1),
    // A deep layer's 4×4 map over many images: forward tiles of 512 pixels span 32 images and
    // the last tile is partial.
    ([37, 8, 5], [4, 4], [3, 3], [1, 1], [(1, 1), (1, 1)], [1, 1], 1),
    // 529 output pixels per image (more than 4 input channels, so flex's general path): maps
    // of at least half a tile are split per image (here two tiles of 264 and 265 pixels),
    // whose products are written straight into the output's rows.
    ([3, 5, 4], [23, 23], [3, 3], [1, 1], [(1, 1), (1, 1)], [1, 1], 1),
    // Exactly half a tile (256 pixels, one tile per image), grouped: each group's product
    // lands in its own channels' rows.
    ([3, 6, 4], [16, 16], [3, 3], [1, 1], [(1, 1), (1, 1)], [1, 1], 2),
    // 255 pixels per image (tiles over images again, crossing boundaries at odd offsets), and
    // 1,221 pixels (three tiles per image), strided.
    ([3, 5, 4], [17, 17], [3, 3], [1, 1], [(1, 1), (0, 0)], [1, 1], 1),
    ([2, 5, 3], [65, 73], [3, 3], [2, 2], [(1, 1), (1, 1)], [1, 1], 1),
    // Groups, with images spanning tiles.
    ([40, 4, 6], [5, 3], [3, 1], [1, 1], [(1, 1), (0, 0)], [1, 1], 2),
    // flex's 1×1 path (one GEMM per image): a small map over many images, grouped, and a
    // larger map.
    ([45, 12, 10], [4, 3], [1, 1], [1, 1], [(0, 0), (0, 0)], [1, 1], 1),
    ([7, 8, 12], [5, 5], [1, 1], [1, 1], [(0, 0), (0, 0)], [1, 1], 4),
    ([2, 6, 5], [16, 17], [1, 1], [1, 1], [(0, 0), (0, 0)], [1, 1], 1),
    // flex's shifted-GEMM path ("same" padding, stride 1, maps at least 12 wide): a 5×5
    // kernel on a rectangular map; a 1×3 kernel (no vertical padding) at exactly 12 wide;
    // and 12 images of 14×14 with few output channels, so positions span two tiles of 2,048
    // (the second partial) and tiles cross images.
    ([3, 6, 7], [13, 15], [5, 5], [1, 1], [(2, 2), (2, 2)], [1, 1], 1),
    ([2, 5, 6], [9, 12], [1, 3], [1, 1], [(0, 0), (1, 1)], [1, 1], 1),
    ([12, 5, 4], [14, 14], [3, 3], [1, 1], [(1, 1), (1, 1)], [1, 1], 1),
    // flex's Winograd path (3×3, stride 1, at least 16 channels in and out) for the forward
    // pass and both gradients: partial 4×4 tiles at the bottom and right; no padding; and 20
    // images of 13×13 (320 tiles), so the tiles fill two blocks whose weight-gradient sums are
    // added together.
    ([3, 16, 20], [9, 11], [3, 3], [1, 1], [(1, 1), (1, 1)], [1, 1], 1),
    ([2, 17, 16], [6, 7], [3, 3], [1, 1], [(0, 0), (0, 0)], [1, 1], 1),
    ([20, 16, 16], [13, 13], [3, 3], [1, 1], [(1, 1), (1, 1)], [1, 1], 1),
    // ResNet's widest 3×3 layer (512 channels in and out, a 4×4 map): Winograd's rounding
    // grows with the channels summed, and must stay within the same tolerance here.
    ([2, 512, 512], [4, 4], [3, 3], [1, 1], [(1, 1), (1, 1)], [1, 1], 1),
];

fn conv_cases() -> impl Iterator<Item = ConvCase> {
    CONV_CASES.into_iter().map(
        |([batch, channels_in, channels_out], size, kernel, stride, padding, dilation, groups)| {
            ConvCase {
                batch,
                channels_in,
                channels_out,
                size,
                kernel,
                stride,
                padding,
                dilation,
                groups,
            }
        },
    )
}

#[test]
fn conv_forward_and_gradients_match_the_direct_sums() {
    let device = Device::flex();
    let train_device = device.clone().autodiff();
    for (i, case) in conv_cases().enumerate() {
        let what = format!("conv case {i}");
        // Winograd's transforms (coefficients up to 8) round a few times more than a direct
        // sum, which shows once hundreds of channels are summed: 1.3e-5 of the largest output
        // at 512 channels. Full-size ResNets still match PyTorch's logits to about 1e-6
        // (`cargo xtask parity`).
        let tolerance = if case.channels_in.max(case.channels_out) >= 256 {
            3e-5
        } else {
            1e-5
        };
        let assert_close =
            |got: &[f64], want: &[f64], what: &str| assert_close_within(got, want, tolerance, what);
        let [x_shape, w_shape, y_shape] = case.shapes();
        let x = data(x_shape.iter().product(), 1 + i as u64);
        let weight = data(w_shape.iter().product(), 100 + i as u64);
        let dy = data(y_shape.iter().product(), 200 + i as u64);
        let want = case.weight_grad(&x, &dy);

        // The forward pass on the plain device.
        let y = conv2d(
            tensor(&x, x_shape, &device),
            tensor(&weight, w_shape, &device),
            None,
            case.options(),
        );
        let forward = case.forward(&x, &weight);
        assert_close(&values(y), &forward, &format!("{what}: forward"));

        // With a bias, added to every pixel of its channel.
        let bias = data(case.channels_out, 300 + i as u64);
        let y = conv2d(
            tensor(&x, x_shape, &device),
            tensor(&weight, w_shape, &device),
            Some(tensor(&bias, [case.channels_out], &device)),
            case.options(),
        );
        let plane = y_shape[2] * y_shape[3];
        let with_bias: Vec<f64> = forward
            .iter()
            .enumerate()
            .map(|(j, v)| v + bias[j / plane % case.channels_out] as f64)
            .collect();
        assert_close(
            &values(y),
            &with_bias,
            &format!("{what}: forward with bias"),
        );

        // The op itself.
        let direct = conv2d_weight_backward(
            tensor(&x, x_shape, &device),
            tensor(&weight, w_shape, &device),
            tensor(&dy, y_shape, &device),
            case.options(),
        );
        assert_eq!(direct.dims(), w_shape, "{what}: shape");
        assert_close(&values(direct), &want, &format!("{what}: direct"));

        // Through autodiff: loss = Σ conv(x, W) · dY, so ∂loss/∂W is the same sum, and
        // ∂loss/∂x is flex's transposed convolution (col2im) of dY.
        let weight_param = tensor(&weight, w_shape, &train_device).require_grad();
        let x_param = tensor(&x, x_shape, &train_device).require_grad();
        let out = conv2d(x_param.clone(), weight_param.clone(), None, case.options());
        assert_eq!(out.dims(), y_shape, "{what}: output shape");
        let grads = (out * tensor(&dy, y_shape, &train_device)).sum().backward();
        let grad = weight_param
            .grad(&grads)
            .expect("the weight receives a gradient");
        assert_close(&values(grad), &want, &format!("{what}: autodiff"));
        let x_grad = x_param.grad(&grads).expect("x receives a gradient");
        assert_close(
            &values(x_grad),
            &case.input_grad(&weight, &dy),
            &format!("{what}: input gradient"),
        );
    }
}

/// Training-mode BatchNorm in f64: output, mean, biased variance, and for loss = Σ out · r the
/// gradients of x, γ and β.
struct BatchNormReference {
    output: Vec<f64>,
    mean: Vec<f64>,
    variance: Vec<f64>,
    x_grad: Vec<f64>,
    gamma_grad: Vec<f64>,
    beta_grad: Vec<f64>,
}

fn batch_norm_reference(
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    r: &[f32],
    [batch, channels, plane]: [usize; 3],
    eps: f64,
) -> BatchNormReference {
    let count = (batch * plane) as f64;
    let at = |n: usize, c: usize, p: usize| (n * channels + c) * plane + p;
    let mut reference = BatchNormReference {
        output: vec![0.0; x.len()],
        mean: vec![0.0; channels],
        variance: vec![0.0; channels],
        x_grad: vec![0.0; x.len()],
        gamma_grad: vec![0.0; channels],
        beta_grad: vec![0.0; channels],
    };
    for c in 0..channels {
        let indices: Vec<usize> = (0..batch)
            .flat_map(|n| (0..plane).map(move |p| at(n, c, p)))
            .collect();
        let mean = indices.iter().map(|&i| f64::from(x[i])).sum::<f64>() / count;
        let variance = indices
            .iter()
            .map(|&i| (f64::from(x[i]) - mean).powi(2))
            .sum::<f64>()
            / count;
        let inv_std = 1.0 / (variance + eps).sqrt();
        let g = f64::from(gamma[c]);
        let xhat = |i: usize| (f64::from(x[i]) - mean) * inv_std;
        let sum_r: f64 = indices.iter().map(|&i| f64::from(r[i])).sum();
        let sum_r_xhat: f64 = indices.iter().map(|&i| f64::from(r[i]) * xhat(i)).sum();
        for &i in &indices {
            reference.output[i] = xhat(i) * g + f64::from(beta[c]);
            reference.x_grad[i] =
                g * inv_std * (f64::from(r[i]) - sum_r / count - xhat(i) * sum_r_xhat / count);
        }
        reference.mean[c] = mean;
        reference.variance[c] = variance;
        reference.gamma_grad[c] = sum_r_xhat;
        reference.beta_grad[c] = sum_r;
    }
    reference
}

#[test]
fn batch_norm_training_matches_the_direct_formulas() {
    let train_device = Device::flex().autodiff();
    let eps = 1e-5;
    // NCHW with odd sizes, a plane longer than the kernels' 16 partial sums, a rank-3
    // [N, C, L] input, a 1×1 plane, and more than 32 Ki elements, so the element passes run
    // several tasks of whole planes, each starting mid-way through the channels.
    let shapes: [&[usize]; 5] = [
        &[3, 5, 7, 9],
        &[2, 3, 20, 21],
        &[4, 6, 11],
        &[8, 3, 1, 1],
        &[40, 7, 13, 13],
    ];
    for (i, shape) in shapes.into_iter().enumerate() {
        let what = format!("batch norm {shape:?}");
        let (batch, channels) = (shape[0], shape[1]);
        let len: usize = shape.iter().product();
        let plane = len / (batch * channels);
        // An offset keeps the mean away from zero, as real activations have.
        let x: Vec<f32> = data(len, 10 + i as u64)
            .iter()
            .map(|v| 3.0 * v + 0.7)
            .collect();
        let gamma = data(channels, 20 + i as u64);
        let beta = data(channels, 30 + i as u64);
        let r = data(len, 40 + i as u64);
        let want = batch_norm_reference(&x, &gamma, &beta, &r, [batch, channels, plane], eps);

        let run = |x_t: Tensor<4>, r_t: Tensor<4>| {
            let gamma_t = tensor(&gamma, [channels], &train_device).require_grad();
            let beta_t = tensor(&beta, [channels], &train_device).require_grad();
            let x_t = x_t.require_grad();
            let out = batch_norm_train(x_t.clone(), gamma_t.clone(), beta_t.clone(), eps);
            let output = values(out.output.clone());
            let (mean, variance) = (values(out.mean), values(out.variance));
            let grads = (out.output * r_t).sum().backward();
            let grad = |t: &Tensor<1>| values(t.grad(&grads).expect("a gradient"));
            let x_grad = values(x_t.grad(&grads).expect("x receives a gradient"));
            (
                output,
                mean,
                variance,
                x_grad,
                grad(&gamma_t),
                grad(&beta_t),
            )
        };
        let dims4 = match shape.len() {
            4 => [shape[0], shape[1], shape[2], shape[3]],
            _ => [shape[0], shape[1], shape[2], 1],
        };
        let (output, mean, variance, x_grad, gamma_grad, beta_grad) = run(
            tensor(&x, dims4, &train_device),
            tensor(&r, dims4, &train_device),
        );
        assert_close(&output, &want.output, &format!("{what}: output"));
        assert_close(&mean, &want.mean, &format!("{what}: mean"));
        assert_close(&variance, &want.variance, &format!("{what}: variance"));
        assert_close(&x_grad, &want.x_grad, &format!("{what}: x gradient"));
        assert_close(
            &gamma_grad,
            &want.gamma_grad,
            &format!("{what}: gamma gradient"),
        );
        assert_close(
            &beta_grad,
            &want.beta_grad,
            &format!("{what}: beta gradient"),
        );
    }
}

/// Inference-mode BatchNorm in f64, `(x − mean) / √(var + ε) · γ + β`, where element `j` of
/// `x` belongs to channel `j / plane % channels`.
fn batch_norm_inference_reference(
    x: &[f32],
    [gamma, beta, mean, variance]: [&[f32]; 4],
    plane: usize,
    eps: f64,
) -> Vec<f64> {
    let channels = gamma.len();
    x.iter()
        .enumerate()
        .map(|(j, &v)| {
            let c = j / plane % channels;
            (f64::from(v) - f64::from(mean[c])) / (f64::from(variance[c]) + eps).sqrt()
                * f64::from(gamma[c])
                + f64::from(beta[c])
        })
        .collect()
}

#[test]
fn batch_norm_inference_matches_the_formula() {
    // Inference mode with given statistics, on the plain device (a teacher's forward pass):
    // (x − mean) / √(var + ε) · γ + β, for NCHW (owned and shared; 4×4 planes over more than
    // 32 Ki elements run as several tasks that start mid-way through the channels), a
    // permuted view and a rank-2 input.
    let device = Device::flex();
    let eps = 1e-5;
    for (i, shape) in [[3, 5, 7, 9], [2, 4, 1, 1], [4, 6, 3, 2], [300, 7, 4, 4]]
        .into_iter()
        .enumerate()
    {
        let what = format!("inference batch norm {shape:?}");
        let channels = shape[1];
        let len: usize = shape.iter().product();
        let plane = len / (shape[0] * channels);
        let x: Vec<f32> = data(len, 70 + i as u64)
            .iter()
            .map(|v| 3.0 * v + 0.7)
            .collect();
        let [gamma, beta, mean] = [71, 72, 73].map(|seed| data(channels, seed + i as u64));
        let variance: Vec<f32> = data(channels, 74 + i as u64)
            .iter()
            .map(|v| v.abs() + 0.1)
            .collect();
        let want =
            batch_norm_inference_reference(&x, [&gamma, &beta, &mean, &variance], plane, eps);
        let stats = |v: &[f32]| tensor(v, [channels], &device);
        let run = |input: Tensor<4>| {
            values(batch_norm(
                input,
                stats(&gamma),
                stats(&beta),
                stats(&mean),
                stats(&variance),
                eps,
            ))
        };
        // A tensor nothing else holds is normalised in its own buffer.
        assert_close(&run(tensor(&x, shape, &device)), &want, &what);
        // A shared one is normalised into a new buffer and left as it was.
        let shared = tensor(&x, shape, &device);
        assert_close(&run(shared.clone()), &want, &format!("{what}: shared"));
        let unchanged: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
        assert_eq!(
            values(shared),
            unchanged,
            "{what}: the shared input changed"
        );
        // The same values behind a permuted view: [N, H, C, W] swapped back to [N, C, H, W].
        let [n, c, h, w] = shape;
        let permuted = tensor(&x, shape, &device).swap_dims(1, 2);
        let permuted = tensor(
            &values(permuted)
                .iter()
                .map(|&v| v as f32)
                .collect::<Vec<_>>(),
            [n, h, c, w],
            &device,
        )
        .swap_dims(1, 2);
        assert_close(&run(permuted), &want, &format!("{what}: permuted view"));
    }
    // Rank 2 ([N, C], as after a flatten): each element is its own plane.
    let x = data(12, 80);
    let [gamma, beta, mean] = [81, 82, 83].map(|seed| data(4, seed));
    let variance = vec![0.5f32; 4];
    let got = values(batch_norm(
        tensor(&x, [3, 4], &device),
        tensor(&gamma, [4], &device),
        tensor(&beta, [4], &device),
        tensor(&mean, [4], &device),
        tensor(&variance, [4], &device),
        eps,
    ));
    let want = batch_norm_inference_reference(&x, [&gamma, &beta, &mean, &variance], 1, eps);
    assert_close(&got, &want, "inference batch norm [3, 4]");
}

#[test]
fn batch_norm_reads_non_contiguous_inputs() {
    // A permuted view (as after a swap_dims) must give the values of its contiguous copy.
    let train_device = Device::flex().autodiff();
    let x = data(2 * 3 * 4 * 5, 7);
    let base = tensor(&x, [2, 4, 3, 5], &train_device);
    let view = base.clone().swap_dims(1, 2);
    let copy = tensor(
        &values(view.clone())
            .iter()
            .map(|&v| v as f32)
            .collect::<Vec<_>>(),
        [2, 3, 4, 5],
        &train_device,
    );
    let gamma = tensor(&data(3, 8), [3], &train_device);
    let beta = tensor(&data(3, 9), [3], &train_device);
    let a = batch_norm_train(view, gamma.clone(), beta.clone(), 1e-5);
    let b = batch_norm_train(copy, gamma, beta, 1e-5);
    assert_close(&values(a.output), &values(b.output), "permuted input");
}

#[test]
fn weight_gradient_is_the_same_on_any_number_of_threads() {
    // The images' partial sums (im2col) and the tile blocks' partial sums (Winograd, the case
    // of 20 images) are fixed by the shapes, not by the thread count, so a run reproduces bit for bit
    // on a machine with more or fewer cores.
    let device = Device::flex();
    for case in [conv_cases().next(), conv_cases().nth(20)] {
        let case = case.expect("a case");
        let [x_shape, w_shape, y_shape] = case.shapes();
        let (x, weight, dy) = (
            data(x_shape.iter().product(), 3),
            data(w_shape.iter().product(), 4),
            data(y_shape.iter().product(), 5),
        );
        let grad_on = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("a thread pool");
            pool.install(|| {
                values(conv2d_weight_backward(
                    tensor(&x, x_shape, &device),
                    tensor(&weight, w_shape, &device),
                    tensor(&dy, y_shape, &device),
                    case.options(),
                ))
            })
        };
        let one = grad_on(1);
        assert_eq!(one, grad_on(2));
        assert_eq!(one, grad_on(5));
    }
}

/// Max pooling in f64: outputs, the flat `ih·W + iw` index of each window's first maximum,
/// and for loss = Σ out · r the input gradient (each `r` routed to its window's maximum).
struct MaxPoolReference {
    output: Vec<f64>,
    indices: Vec<i64>,
    x_grad: Vec<f64>,
}

/// The output size of max pooling by PyTorch's rule: floor or ceil, then no window may start
/// in the end padding.
fn max_pool_output_size(size: [usize; 2], options: &MaxPoolOptions<2>) -> [usize; 2] {
    [0, 1].map(|d| {
        let (k, s, p, dil) = (
            options.kernel_size[d],
            options.stride[d],
            options.padding[d].0,
            options.dilation[d],
        );
        let span = size[d] + 2 * p - dil * (k - 1) - 1;
        let mut out = if options.ceil_mode {
            span.div_ceil(s) + 1
        } else {
            span / s + 1
        };
        if options.ceil_mode && (out - 1) * s >= size[d] + p {
            out -= 1;
        }
        out
    })
}

fn max_pool_reference(
    x: &[f32],
    r: &[f32],
    [batch, channels, height, width]: [usize; 4],
    options: &MaxPoolOptions<2>,
) -> MaxPoolReference {
    let [ho, wo] = max_pool_output_size([height, width], options);
    let mut reference = MaxPoolReference {
        output: Vec::new(),
        indices: Vec::new(),
        x_grad: vec![0.0; x.len()],
    };
    for plane in 0..batch * channels {
        let input = &x[plane * height * width..][..height * width];
        for oh in 0..ho {
            for ow in 0..wo {
                let mut best: Option<(f64, usize)> = None;
                for kh in 0..options.kernel_size[0] {
                    for kw in 0..options.kernel_size[1] {
                        let ih = (oh * options.stride[0] + kh * options.dilation[0]) as isize
                            - options.padding[0].0 as isize;
                        let iw = (ow * options.stride[1] + kw * options.dilation[1]) as isize
                            - options.padding[1].0 as isize;
                        if ih < 0 || iw < 0 || ih >= height as isize || iw >= width as isize {
                            continue;
                        }
                        let index = ih as usize * width + iw as usize;
                        let value = f64::from(input[index]);
                        if best.is_none_or(|(max, _)| value > max) {
                            best = Some((value, index));
                        }
                    }
                }
                let (value, index) = best.expect("every window holds an input");
                let out = (plane * ho + oh) * wo + ow;
                reference.output.push(value);
                reference.indices.push(index as i64);
                reference.x_grad[plane * height * width + index] += f64::from(r[out]);
            }
        }
    }
    reference
}

/// NaN wins a window and the last NaN's index is reported, as in PyTorch; ties go to the
/// first maximum. Both the 2×2 path and the general one (a 3×3 window with padding).
#[test]
fn max_pool_propagates_nan() {
    let device = Device::flex();
    let nan = f32::NAN;
    let x = [1.0, nan, 3.0, 2.0, nan, 0.0, 5.0, 5.0];
    let (output, indices) = max_pool2d_with_indices(
        tensor(&x, [1, 1, 2, 4], &device),
        MaxPoolOptions::new([2, 2]).with_stride([2, 2]),
    );
    let output = values(output);
    assert!(output[0].is_nan(), "{output:?}");
    assert_eq!(output[1], 5.0);
    let indices: Vec<i64> = indices.into_data().iter::<i64>().collect();
    assert_eq!(indices, [4, 6]);

    let (output, indices) = max_pool2d_with_indices(
        tensor(&x, [1, 1, 2, 4], &device),
        MaxPoolOptions::new([3, 3])
            .with_stride([2, 2])
            .with_padding([1, 1]),
    );
    let output = values(output);
    assert!(output[0].is_nan() && output[1].is_nan(), "{output:?}");
    let indices: Vec<i64> = indices.into_data().iter::<i64>().collect();
    assert_eq!(indices, [4, 1]);
}

/// A max-pool case: input shape, kernel, stride, padding, dilation, ceil mode.
type PoolRow = (
    [usize; 4],
    [usize; 2],
    [usize; 2],
    [usize; 2],
    [usize; 2],
    bool,
);

#[test]
fn max_pool_matches_the_direct_windows() {
    let device = Device::flex();
    let train_device = device.clone().autodiff();
    // (input shape, kernel, stride, padding, dilation, ceil mode): the students' 2×2 pool (on
    // even and odd sizes, flex's 2×2 path; with ceil mode the last windows are partial, so the
    // general path), a ResNet stem's 3×3/2 with padding, overlapping dilated windows, and ceil
    // mode on odd sizes.
    let cases: [PoolRow; 6] = [
        ([3, 4, 14, 14], [2, 2], [2, 2], [0, 0], [1, 1], false),
        ([2, 3, 15, 13], [2, 2], [2, 2], [0, 0], [1, 1], false),
        ([2, 2, 7, 9], [2, 2], [2, 2], [0, 0], [1, 1], true),
        ([2, 3, 15, 13], [3, 3], [2, 2], [1, 1], [1, 1], false),
        ([2, 2, 11, 9], [3, 2], [1, 2], [1, 0], [2, 1], false),
        ([1, 3, 9, 7], [3, 3], [2, 2], [1, 1], [1, 1], true),
    ];
    for (i, (shape, kernel, stride, padding, dilation, ceil_mode)) in cases.into_iter().enumerate()
    {
        let what = format!("max pool case {i}");
        let options = MaxPoolOptions::new(kernel)
            .with_stride(stride)
            .with_padding(padding)
            .with_dilation(dilation)
            .with_ceil_mode(ceil_mode);
        // Values on a coarse grid, so windows hold ties and the first maximum must win.
        let x: Vec<f32> = data(shape.iter().product(), 50 + i as u64)
            .iter()
            .map(|v| (v * 4.0).round() / 4.0)
            .collect();
        let [ho, wo] = max_pool_output_size([shape[2], shape[3]], &options);
        let out_shape = [shape[0], shape[1], ho, wo];
        let r = data(out_shape.iter().product(), 60 + i as u64);
        let want = max_pool_reference(&x, &r, shape, &options);

        let (output, indices) =
            max_pool2d_with_indices(tensor(&x, shape, &device), options.clone());
        assert_eq!(output.dims(), out_shape, "{what}: output shape");
        assert_eq!(values(output), want.output, "{what}: output");
        let indices: Vec<i64> = indices.into_data().iter::<i64>().collect();
        assert_eq!(indices, want.indices, "{what}: indices");

        let x_t = tensor(&x, shape, &train_device).require_grad();
        let out = max_pool2d(x_t.clone(), options);
        let grads = (out * tensor(&r, out_shape, &train_device))
            .sum()
            .backward();
        let x_grad = values(x_t.grad(&grads).expect("x receives a gradient"));
        assert_close(&x_grad, &want.x_grad, &format!("{what}: x gradient"));
    }
}
