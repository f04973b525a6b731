//! Deterministic image transforms with torchvision semantics, applied on the CPU per sample.
//!
//! A [`Transforms`] pipeline first converts a `u8` `C×H×W` image to `f32` in `[0, 1]`
//! (torchvision's `ToTensor`, `x / 255`), then runs its transforms in order. The usual order is
//! crop, flip, normalize, as in `transforms.Compose([RandomCrop, RandomHorizontalFlip, ToTensor,
//! Normalize])`. Random parameters come from the RNG the caller passes, which the loader seeds
//! per `(seed, epoch, dataset index)` with [`crate::sample_rng`].

use rand::Rng;
use rand::rngs::StdRng;

use crate::error::DataError;

/// Random crop of a `size`×`size` window after zero-padding every side by `padding` pixels
/// (torchvision `RandomCrop(size, padding)` with `fill=0`, `padding_mode="constant"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RandomCrop {
    /// Output height and width.
    pub size: usize,
    /// Zero padding added on each side before cropping.
    pub padding: usize,
}

/// Horizontal flip with probability `p` (torchvision `RandomHorizontalFlip(p)`).
#[derive(Debug, Clone, PartialEq)]
pub struct RandomHorizontalFlip {
    /// Flip probability in `[0, 1]`.
    pub p: f64,
}

/// Per-channel `(x - mean) / std` (torchvision `Normalize(mean, std)`).
#[derive(Debug, Clone, PartialEq)]
pub struct Normalize {
    /// One mean per channel.
    pub mean: Vec<f32>,
    /// One positive standard deviation per channel.
    pub std: Vec<f32>,
}

/// One step of a [`Transforms`] pipeline.
#[derive(Debug, Clone, PartialEq)]
pub enum Transform {
    /// See [`RandomCrop`].
    RandomCrop(RandomCrop),
    /// See [`RandomHorizontalFlip`].
    RandomHorizontalFlip(RandomHorizontalFlip),
    /// See [`Normalize`].
    Normalize(Normalize),
}

impl From<RandomCrop> for Transform {
    fn from(t: RandomCrop) -> Self {
        Transform::RandomCrop(t)
    }
}

impl From<RandomHorizontalFlip> for Transform {
    fn from(t: RandomHorizontalFlip) -> Self {
        Transform::RandomHorizontalFlip(t)
    }
}

impl From<Normalize> for Transform {
    fn from(t: Normalize) -> Self {
        Transform::Normalize(t)
    }
}

fn invalid(transform: &'static str, reason: String) -> DataError {
    DataError::InvalidTransform { transform, reason }
}

impl RandomCrop {
    fn validate(&self) -> Result<(), DataError> {
        if self.size == 0 {
            return Err(invalid(
                "RandomCrop",
                "size is 0: give a positive crop size".into(),
            ));
        }
        Ok(())
    }

    fn output_shape(&self, [c, h, w]: [usize; 3]) -> Result<[usize; 3], DataError> {
        let (ph, pw) = (h + 2 * self.padding, w + 2 * self.padding);
        if self.size > ph || self.size > pw {
            return Err(invalid(
                "RandomCrop",
                format!(
                    "size {} exceeds the padded image of {ph}x{pw} (image {h}x{w}, padding {}): lower `size` or raise `padding`",
                    self.size, self.padding
                ),
            ));
        }
        Ok([c, self.size, self.size])
    }

    /// Crops `src` (`shape`) into `dst` (`[C, size, size]`), drawing the window from `rng`.
    fn apply(&self, src: &[f32], [c, h, w]: [usize; 3], rng: &mut StdRng, dst: &mut [f32]) {
        let (s, p) = (self.size, self.padding);
        let top = rng.random_range(0..=h + 2 * p - s);
        let left = rng.random_range(0..=w + 2 * p - s);
        // Output column x reads source column left + x - p; the valid ones form [x0, x1).
        let x0 = p.saturating_sub(left).min(s);
        let x1 = (w + p).saturating_sub(left).clamp(x0, s);
        for ch in 0..c {
            let plane = &src[ch * h * w..(ch + 1) * h * w];
            for y in 0..s {
                let row = &mut dst[(ch * s + y) * s..(ch * s + y + 1) * s];
                let sy = top + y;
                if sy < p || sy >= h + p {
                    row.fill(0.0);
                    continue;
                }
                let src_row = &plane[(sy - p) * w..(sy - p + 1) * w];
                row[..x0].fill(0.0);
                row[x0..x1].copy_from_slice(&src_row[left + x0 - p..left + x1 - p]);
                row[x1..].fill(0.0);
            }
        }
    }
}

impl RandomHorizontalFlip {
    fn validate(&self) -> Result<(), DataError> {
        if !(0.0..=1.0).contains(&self.p) {
            return Err(invalid(
                "RandomHorizontalFlip",
                format!("p is {}: give a probability in [0, 1]", self.p),
            ));
        }
        Ok(())
    }

    /// Flips every row of `data` (`shape`) in place with probability `p`.
    fn apply(&self, data: &mut [f32], [_, _, w]: [usize; 3], rng: &mut StdRng) {
        if rng.random::<f64>() < self.p {
            data.chunks_exact_mut(w).for_each(<[f32]>::reverse);
        }
    }
}

impl Normalize {
    fn validate(&self) -> Result<(), DataError> {
        if self.mean.is_empty() || self.mean.len() != self.std.len() {
            return Err(invalid(
                "Normalize",
                format!(
                    "mean has {} values and std has {}: give one mean and one std per channel",
                    self.mean.len(),
                    self.std.len()
                ),
            ));
        }
        if let Some((c, m)) = self.mean.iter().enumerate().find(|(_, m)| !m.is_finite()) {
            return Err(invalid(
                "Normalize",
                format!("mean of channel {c} is {m}: give finite means"),
            ));
        }
        if let Some((c, s)) = self
            .std
            .iter()
            .enumerate()
            .find(|(_, s)| !(s.is_finite() && **s > 0.0))
        {
            return Err(invalid(
                "Normalize",
                format!("std of channel {c} is {s}: standard deviations must be positive"),
            ));
        }
        Ok(())
    }

    fn check_channels(&self, channels: usize) -> Result<(), DataError> {
        if self.mean.len() != channels {
            return Err(invalid(
                "Normalize",
                format!(
                    "{} mean/std values for images with {channels} channels: give one value per channel",
                    self.mean.len()
                ),
            ));
        }
        Ok(())
    }

    /// Normalizes `data` (`shape`) in place.
    fn apply(&self, data: &mut [f32], [_, h, w]: [usize; 3]) {
        for ((plane, &m), &s) in data.chunks_exact_mut(h * w).zip(&self.mean).zip(&self.std) {
            plane.iter_mut().for_each(|v| *v = (*v - m) / s);
        }
    }
}

/// A validated pipeline of transforms from a `u8` image to an `f32` image, both `C×H×W`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Transforms {
    steps: Vec<Transform>,
}

impl Transforms {
    /// Validates the shape-independent parameters: crop size > 0, flip `p` in `[0, 1]`,
    /// normalize `mean` and `std` of equal non-zero length with finite values and `std > 0`.
    ///
    /// Checks that depend on the image shape run in [`Transforms::output_shape`], which the
    /// loader calls when it is built.
    pub fn new(steps: Vec<Transform>) -> Result<Self, DataError> {
        for step in &steps {
            match step {
                Transform::RandomCrop(t) => t.validate()?,
                Transform::RandomHorizontalFlip(t) => t.validate()?,
                Transform::Normalize(t) => t.validate()?,
            }
        }
        Ok(Self { steps })
    }

    /// The pipeline that only converts to `[0, 1]`.
    pub fn to_tensor_only() -> Self {
        Self::default()
    }

    /// The transforms, in order.
    pub fn steps(&self) -> &[Transform] {
        &self.steps
    }

    /// The output shape for inputs of `shape` (`[C, H, W]`); fails when a crop does not fit or
    /// a normalize does not have one value per channel.
    pub fn output_shape(&self, shape: [usize; 3]) -> Result<[usize; 3], DataError> {
        self.steps.iter().try_fold(shape, |shape, step| match step {
            Transform::RandomCrop(t) => t.output_shape(shape),
            Transform::RandomHorizontalFlip(_) => Ok(shape),
            Transform::Normalize(t) => t.check_channels(shape[0]).map(|()| shape),
        })
    }

    /// Transforms `image` (`shape`) into a new buffer; see [`Transforms::apply_into`].
    pub fn apply(
        &self,
        image: &[u8],
        shape: [usize; 3],
        rng: &mut StdRng,
    ) -> Result<Vec<f32>, DataError> {
        let out_shape = self.output_shape(shape)?;
        let mut out = vec![0.0; out_shape.iter().product()];
        self.apply_into(image, shape, rng, &mut Vec::new(), &mut out)?;
        Ok(out)
    }

    /// Transforms `image` (`shape`) into `out`, which must hold exactly
    /// `output_shape(shape)` values, and returns that shape.
    ///
    /// `scratch` is a working buffer whose content is overwritten; reuse it across calls to avoid
    /// allocations.
    pub fn apply_into(
        &self,
        image: &[u8],
        shape: [usize; 3],
        rng: &mut StdRng,
        scratch: &mut Vec<f32>,
        out: &mut [f32],
    ) -> Result<[usize; 3], DataError> {
        let out_shape = self.output_shape(shape)?;
        let in_len = shape.iter().product::<usize>();
        if image.len() != in_len {
            return Err(DataError::ImageSize {
                shape,
                expected: in_len,
                found: image.len(),
            });
        }
        let out_len = out_shape.iter().product::<usize>();
        if out.len() != out_len {
            return Err(DataError::BufferSize {
                shape: out_shape,
                expected: out_len,
                found: out.len(),
            });
        }
        // Ping-pong between two halves of `scratch`, each large enough for every stage.
        let stage_len = self
            .steps
            .iter()
            .filter_map(|step| match step {
                Transform::RandomCrop(t) => Some(shape[0] * t.size * t.size),
                _ => None,
            })
            .fold(in_len, usize::max);
        scratch.resize(2 * stage_len, 0.0);
        let (mut cur, mut next) = scratch.split_at_mut(stage_len);
        for (v, &p) in cur.iter_mut().zip(image) {
            *v = f32::from(p) / 255.0;
        }
        let mut cur_shape = shape;
        for step in &self.steps {
            let len = cur_shape.iter().product::<usize>();
            match step {
                Transform::RandomCrop(t) => {
                    let new_shape = [cur_shape[0], t.size, t.size];
                    let new_len = new_shape.iter().product::<usize>();
                    t.apply(&cur[..len], cur_shape, rng, &mut next[..new_len]);
                    std::mem::swap(&mut cur, &mut next);
                    cur_shape = new_shape;
                }
                Transform::RandomHorizontalFlip(t) => t.apply(&mut cur[..len], cur_shape, rng),
                Transform::Normalize(t) => t.apply(&mut cur[..len], cur_shape),
            }
        }
        out.copy_from_slice(&cur[..out_len]);
        Ok(out_shape)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed::sample_rng;

    fn pipeline(steps: Vec<Transform>) -> Transforms {
        Transforms::new(steps).unwrap()
    }

    fn image(shape: [usize; 3]) -> Vec<u8> {
        (0..shape.iter().product::<usize>())
            .map(|i| (i * 7 % 256) as u8)
            .collect()
    }

    fn to_unit(image: &[u8]) -> Vec<f32> {
        image.iter().map(|&p| f32::from(p) / 255.0).collect()
    }

    #[test]
    fn to_tensor_divides_by_255() {
        let out = Transforms::to_tensor_only()
            .apply(&[0, 51, 255], [1, 1, 3], &mut sample_rng(0, 0, 0))
            .unwrap();
        assert_eq!(out, [0.0, 0.2, 1.0]);
    }

    #[test]
    fn crop_without_padding_at_full_size_is_identity() {
        let shape = [2, 5, 4];
        let img = image(shape);
        let t = pipeline(vec![
            RandomCrop {
                size: 4,
                padding: 0,
            }
            .into(),
        ]);
        // A 4x4 crop of a 5x4 image can only move vertically; at 5x5 it would not fit.
        assert_eq!(t.output_shape(shape).unwrap(), [2, 4, 4]);
        let square = [2, 4, 4];
        let img_sq = image(square);
        for index in 0..10 {
            let out = t
                .apply(&img_sq, square, &mut sample_rng(3, 0, index))
                .unwrap();
            assert_eq!(out, to_unit(&img_sq));
        }
        let out = t.apply(&img, shape, &mut sample_rng(3, 0, 0)).unwrap();
        let unit = to_unit(&img);
        let is_window = (0..=1).any(|top| {
            (0..2)
                .all(|c| out[c * 16..(c + 1) * 16] == unit[c * 20 + top * 4..c * 20 + top * 4 + 16])
        });
        assert!(is_window, "crop is not a window of the image");
    }

    #[test]
    fn padded_crop_is_a_window_of_the_zero_padded_image() {
        let shape = [1, 3, 3];
        let img: Vec<u8> = (1..=9).collect();
        let (size, padding) = (3, 2);
        let t = pipeline(vec![RandomCrop { size, padding }.into()]);
        let padded_len = 3 + 2 * padding;
        let mut padded = vec![0.0f32; padded_len * padded_len];
        for y in 0..3 {
            for x in 0..3 {
                padded[(y + padding) * padded_len + x + padding] =
                    f32::from(img[y * 3 + x]) / 255.0;
            }
        }
        let mut seen = std::collections::HashSet::new();
        for index in 0..200 {
            let out = t.apply(&img, shape, &mut sample_rng(1, 0, index)).unwrap();
            let offset = (0..=padded_len - size)
                .flat_map(|top| (0..=padded_len - size).map(move |left| (top, left)))
                .find(|&(top, left)| {
                    (0..size).all(|y| {
                        (0..size)
                            .all(|x| out[y * size + x] == padded[(top + y) * padded_len + left + x])
                    })
                })
                .expect("crop is a window of the padded image");
            seen.insert(offset);
        }
        // All 5x5 offsets are reachable, including those that are all padding.
        assert_eq!(seen.len(), 25);
    }

    #[test]
    fn flip_with_p_one_flips_and_p_zero_keeps() {
        let shape = [2, 2, 3];
        let img: Vec<u8> = (0..12).collect();
        let flipped = pipeline(vec![RandomHorizontalFlip { p: 1.0 }.into()])
            .apply(&img, shape, &mut sample_rng(0, 0, 0))
            .unwrap();
        let expected: Vec<u8> = vec![2, 1, 0, 5, 4, 3, 8, 7, 6, 11, 10, 9];
        assert_eq!(flipped, to_unit(&expected));
        let kept = pipeline(vec![RandomHorizontalFlip { p: 0.0 }.into()])
            .apply(&img, shape, &mut sample_rng(0, 0, 0))
            .unwrap();
        assert_eq!(kept, to_unit(&img));
    }

    #[test]
    fn flip_with_half_probability_flips_about_half() {
        let t = pipeline(vec![RandomHorizontalFlip { p: 0.5 }.into()]);
        let flips = (0..1000)
            .filter(|&i| {
                t.apply(&[0, 255], [1, 1, 2], &mut sample_rng(9, 0, i))
                    .unwrap()[0]
                    == 1.0
            })
            .count();
        assert!((400..600).contains(&flips), "{flips} flips out of 1000");
    }

    #[test]
    fn normalize_applies_per_channel_mean_and_std() {
        let t = pipeline(vec![
            Normalize {
                mean: vec![0.5, 0.2],
                std: vec![0.25, 2.0],
            }
            .into(),
        ]);
        let out = t
            .apply(&[0, 255, 51, 102], [2, 1, 2], &mut sample_rng(0, 0, 0))
            .unwrap();
        let expected = [-2.0, 2.0, 0.0, 0.1];
        for (o, e) in out.iter().zip(expected) {
            assert!((o - e).abs() < 1e-6, "{out:?} vs {expected:?}");
        }
    }

    #[test]
    fn same_seed_epoch_index_is_deterministic_and_epochs_differ() {
        let shape = [1, 8, 8];
        let img = image(shape);
        let t = pipeline(vec![
            RandomCrop {
                size: 8,
                padding: 2,
            }
            .into(),
            RandomHorizontalFlip { p: 0.5 }.into(),
            Normalize {
                mean: vec![0.3],
                std: vec![0.4],
            }
            .into(),
        ]);
        let run = |epoch| t.apply(&img, shape, &mut sample_rng(42, epoch, 5)).unwrap();
        assert_eq!(run(0), run(0));
        let distinct = (0..8).map(run).collect::<Vec<_>>();
        let differing = distinct.iter().filter(|o| **o != distinct[0]).count();
        assert!(
            differing >= 5,
            "only {differing} of 7 epochs differ from epoch 0"
        );
    }

    #[test]
    fn apply_into_reuses_scratch_and_matches_apply() {
        let shape = [3, 4, 5];
        let img = image(shape);
        let t = pipeline(vec![
            RandomCrop {
                size: 6,
                padding: 1,
            }
            .into(),
            RandomHorizontalFlip { p: 0.5 }.into(),
        ]);
        let mut scratch = Vec::new();
        let mut out = vec![0.0; 3 * 6 * 6];
        for index in 0..5 {
            let got = t
                .apply_into(
                    &img,
                    shape,
                    &mut sample_rng(0, 1, index),
                    &mut scratch,
                    &mut out,
                )
                .unwrap();
            assert_eq!(got, [3, 6, 6]);
            assert_eq!(
                out,
                t.apply(&img, shape, &mut sample_rng(0, 1, index)).unwrap()
            );
        }
        assert!(matches!(
            t.apply_into(
                &img[1..],
                shape,
                &mut sample_rng(0, 0, 0),
                &mut scratch,
                &mut out
            ),
            Err(DataError::ImageSize { .. })
        ));
        assert!(matches!(
            t.apply_into(
                &img,
                shape,
                &mut sample_rng(0, 0, 0),
                &mut scratch,
                &mut out[1..]
            ),
            Err(DataError::BufferSize { .. })
        ));
    }

    #[test]
    fn construction_rejects_bad_parameters() {
        let bad: Vec<Transform> = vec![
            RandomCrop {
                size: 0,
                padding: 4,
            }
            .into(),
            RandomHorizontalFlip { p: 1.5 }.into(),
            RandomHorizontalFlip { p: f64::NAN }.into(),
            Normalize {
                mean: vec![0.5],
                std: vec![0.0],
            }
            .into(),
            Normalize {
                mean: vec![0.5, 0.5],
                std: vec![0.5],
            }
            .into(),
            Normalize {
                mean: vec![],
                std: vec![],
            }
            .into(),
        ];
        for step in bad {
            assert!(
                matches!(
                    Transforms::new(vec![step.clone()]),
                    Err(DataError::InvalidTransform { .. })
                ),
                "{step:?} was accepted"
            );
        }
    }

    #[test]
    fn output_shape_checks_crop_fit_and_channels() {
        let crop = pipeline(vec![
            RandomCrop {
                size: 32,
                padding: 1,
            }
            .into(),
        ]);
        assert!(crop.output_shape([1, 28, 28]).is_err());
        assert!(crop.output_shape([1, 29, 30]).is_err());
        assert_eq!(crop.output_shape([1, 30, 30]).unwrap(), [1, 32, 32]);
        let norm = pipeline(vec![
            Normalize {
                mean: vec![0.5; 3],
                std: vec![0.5; 3],
            }
            .into(),
        ]);
        assert!(norm.output_shape([1, 28, 28]).is_err());
        assert_eq!(norm.output_shape([3, 2, 2]).unwrap(), [3, 2, 2]);
    }
}
