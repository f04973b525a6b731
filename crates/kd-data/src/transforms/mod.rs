//! Deterministic image transforms with torchvision and timm semantics, applied on the CPU per
//! sample.
//!
//! A [`Transforms`] pipeline first converts a `u8` `C×H×W` image to `f32` in `[0, 1]`
//! (torchvision's `ToTensor`, `x / 255`), then runs its transforms in order, e.g. SuperGradients'
//! ImageNet training pipeline `[RandomResizedCrop, RandomHorizontalFlip, RandAugment,
//! Normalize]` or the CIFAR one `[RandomCrop, RandomHorizontalFlip, Normalize]`. Random
//! parameters come from the RNG the caller passes, which the loader seeds per `(seed, epoch,
//! dataset index)` with [`crate::sample_rng`]; each transform draws its parameters and then
//! calls an operation of [`crate::functional`] with them.

mod color_jitter;
mod crop;
mod erasing;
mod flip;
mod normalize;
mod rand_augment;
mod resize;

pub use color_jitter::{ColorJitter, JitterParams};
pub use crop::{CenterCrop, RandomCrop};
pub use erasing::{EraseValue, RandomErasing};
pub use flip::RandomHorizontalFlip;
pub use normalize::Normalize;
pub use rand_augment::{
    AugmentOp, RAND_INCREASING_TRANSFORMS, RAND_TRANSFORMS, RandAugment, RandAugmentOp,
};
pub use resize::{RandomResizedCrop, Resize, ResizeTo};

use rand::rngs::StdRng;

use crate::error::DataError;
use crate::functional::Scratch;

/// How a resizing transform picks its filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Interpolation {
    /// Bilinear (torchvision's default).
    #[default]
    Bilinear,
    /// Bicubic.
    Bicubic,
    /// Bilinear or bicubic with equal odds per sample (timm's `interpolation="random"`).
    Random,
}

/// One step of a [`Transforms`] pipeline.
#[derive(Debug, Clone, PartialEq)]
pub enum Transform {
    /// See [`RandomCrop`].
    RandomCrop(RandomCrop),
    /// See [`CenterCrop`].
    CenterCrop(CenterCrop),
    /// See [`RandomResizedCrop`].
    RandomResizedCrop(RandomResizedCrop),
    /// See [`Resize`].
    Resize(Resize),
    /// See [`RandomHorizontalFlip`].
    RandomHorizontalFlip(RandomHorizontalFlip),
    /// See [`ColorJitter`].
    ColorJitter(ColorJitter),
    /// See [`RandAugment`].
    RandAugment(RandAugment),
    /// See [`RandomErasing`].
    RandomErasing(RandomErasing),
    /// See [`Normalize`].
    Normalize(Normalize),
}

impl Transform {
    /// The transform's name, as recipes write it.
    pub fn name(&self) -> &'static str {
        match self {
            Transform::RandomCrop(_) => "RandomCrop",
            Transform::CenterCrop(_) => "CenterCrop",
            Transform::RandomResizedCrop(_) => "RandomResizedCrop",
            Transform::Resize(_) => "Resize",
            Transform::RandomHorizontalFlip(_) => "RandomHorizontalFlip",
            Transform::ColorJitter(_) => "ColorJitter",
            Transform::RandAugment(_) => "RandAugment",
            Transform::RandomErasing(_) => "RandomErasing",
            Transform::Normalize(_) => "Normalize",
        }
    }

    /// Whether the output may depend on the random draws (the seed, epoch and sample), not
    /// only on the image. Settings that never draw (a flip with `p` 0 or 1, no jitter, no
    /// erasing) count as deterministic.
    pub fn is_random(&self) -> bool {
        match self {
            Transform::RandomCrop(_)
            | Transform::RandomResizedCrop(_)
            | Transform::RandAugment(_) => true,
            Transform::Resize(t) => t.interpolation == Interpolation::Random,
            Transform::RandomHorizontalFlip(t) => t.p > 0.0 && t.p < 1.0,
            Transform::ColorJitter(t) => {
                t.brightness != 0.0 || t.contrast != 0.0 || t.saturation != 0.0 || t.hue != 0.0
            }
            Transform::RandomErasing(t) => t.p > 0.0,
            Transform::CenterCrop(_) | Transform::Normalize(_) => false,
        }
    }
}

macro_rules! from_transform {
    ($($t:ident),*) => {$(
        impl From<$t> for Transform {
            fn from(t: $t) -> Self {
                Transform::$t(t)
            }
        }
    )*};
}

from_transform!(
    RandomCrop,
    CenterCrop,
    RandomResizedCrop,
    Resize,
    RandomHorizontalFlip,
    ColorJitter,
    RandAugment,
    RandomErasing,
    Normalize
);

pub(crate) fn invalid(transform: &'static str, reason: String) -> DataError {
    DataError::InvalidTransform { transform, reason }
}

/// The two stage buffers of a pipeline run and the operations' scratch memory.
#[derive(Debug, Clone, Default)]
pub(crate) struct Buffers {
    pub(crate) cur: Vec<f32>,
    pub(crate) next: Vec<f32>,
    pub(crate) scratch: Scratch,
    pub(crate) extra: Vec<f32>,
}

impl Buffers {
    /// Makes `next` (just written) the current stage.
    pub(crate) fn swap(&mut self) {
        std::mem::swap(&mut self.cur, &mut self.next);
    }
}

/// Reusable working memory of [`Transforms::apply_into`]; keep one per worker thread so the
/// transforms allocate nothing once the buffers have grown to the largest image.
#[derive(Debug, Clone, Default)]
pub struct Workspace {
    buffers: Buffers,
}

impl Workspace {
    /// The output of the last [`Transforms::run`].
    pub fn output(&self) -> &[f32] {
        &self.buffers.cur
    }
}

/// A validated pipeline of transforms from a `u8` image to an `f32` image, both `C×H×W`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Transforms {
    steps: Vec<Transform>,
}

impl Transforms {
    /// Validates the shape-independent parameters of every step (sizes, probabilities, ranges,
    /// normalisation statistics).
    ///
    /// Checks that depend on the image shape run in [`Transforms::output_shape`], which the
    /// loader calls when it is built.
    pub fn new(steps: Vec<Transform>) -> Result<Self, DataError> {
        for step in &steps {
            match step {
                Transform::RandomCrop(t) => t.validate()?,
                Transform::CenterCrop(t) => t.validate()?,
                Transform::RandomResizedCrop(t) => t.validate()?,
                Transform::Resize(t) => t.validate()?,
                Transform::RandomHorizontalFlip(t) => t.validate()?,
                Transform::ColorJitter(t) => t.validate()?,
                Transform::RandAugment(t) => t.validate()?,
                Transform::RandomErasing(t) => t.validate()?,
                Transform::Normalize(t) => t.validate()?,
            }
        }
        Ok(Self { steps })
    }

    /// The pipeline that only converts to `[0, 1]`.
    pub fn to_tensor_only() -> Self {
        Self::default()
    }

    /// The first step whose output depends on random draws ([`Transform::is_random`]), if any.
    pub fn first_random(&self) -> Option<&Transform> {
        self.steps.iter().find(|t| t.is_random())
    }

    /// The steps, in order.
    pub fn steps(&self) -> &[Transform] {
        &self.steps
    }

    fn check_channels(step: &Transform, channels: usize) -> Result<(), DataError> {
        match step {
            Transform::Normalize(t) => t.check_channels(channels),
            Transform::ColorJitter(t) => t.check_channels(channels),
            Transform::RandAugment(t) => t.check_channels(channels),
            Transform::RandomErasing(t) => t.check_channels(channels),
            _ => Ok(()),
        }
    }

    /// The output shape for inputs of `shape` (`[C, H, W]`); fails when a crop does not fit or
    /// a step does not suit the channel count.
    pub fn output_shape(&self, shape: [usize; 3]) -> Result<[usize; 3], DataError> {
        self.steps.iter().try_fold(shape, |[c, h, w], step| {
            Self::check_channels(step, c)?;
            match step {
                Transform::RandomCrop(t) => t.output_shape([c, h, w]),
                Transform::CenterCrop(t) => Ok([c, t.height, t.width]),
                Transform::RandomResizedCrop(t) => Ok([c, t.size[0], t.size[1]]),
                Transform::Resize(t) => {
                    let [oh, ow] = t.target(h, w);
                    Ok([c, oh, ow])
                }
                _ => Ok([c, h, w]),
            }
        })
    }

    /// The output shape every input with `channels` channels gets, whatever its size, or `None`
    /// when the output size depends on the input's (no crop or two-sided resize, or a
    /// shorter-side resize after the last of them). Fails when a step does not suit the
    /// channel count.
    pub fn fixed_output_shape(&self, channels: usize) -> Result<Option<[usize; 3]>, DataError> {
        let mut size: Option<[usize; 2]> = None;
        for step in &self.steps {
            Self::check_channels(step, channels)?;
            size = match step {
                Transform::RandomCrop(t) => Some([t.size, t.size]),
                Transform::CenterCrop(t) => Some([t.height, t.width]),
                Transform::RandomResizedCrop(t) => Some(t.size),
                Transform::Resize(t) => match t.size {
                    ResizeTo::Exact(hw) => Some(hw),
                    ResizeTo::Shorter(_) => None,
                },
                _ => size,
            };
        }
        Ok(size.map(|[h, w]| [channels, h, w]))
    }

    /// Runs the pipeline on `image` (`shape`), leaving the result in [`Workspace::output`], and
    /// returns its shape.
    pub fn run(
        &self,
        image: &[u8],
        shape: [usize; 3],
        rng: &mut StdRng,
        ws: &mut Workspace,
    ) -> Result<[usize; 3], DataError> {
        let in_len = shape.iter().product::<usize>();
        if image.len() != in_len {
            return Err(DataError::ImageSize {
                shape,
                expected: in_len,
                found: image.len(),
            });
        }
        if shape.contains(&0) {
            return Err(DataError::EmptyShape { shape });
        }
        let buf = &mut ws.buffers;
        let mut cur = shape;
        let mut steps = self.steps.iter();
        match self.steps.first() {
            // A leading random crop reads the 8-bit image itself: only the pixels it covers
            // are converted, which saves a full pass over large (ImageNet) images.
            Some(first @ Transform::RandomResizedCrop(t)) => {
                Self::check_channels(first, cur[0])?;
                cur = t.apply_u8(image, buf, cur, rng)?;
                steps.next();
            }
            _ => {
                buf.cur.clear();
                buf.cur.extend(image.iter().map(|&p| f32::from(p) / 255.0));
            }
        }
        for step in steps {
            Self::check_channels(step, cur[0])?;
            cur = match step {
                Transform::RandomCrop(t) => t.apply(buf, cur, rng)?,
                Transform::CenterCrop(t) => t.apply(buf, cur)?,
                Transform::RandomResizedCrop(t) => t.apply(buf, cur, rng)?,
                Transform::Resize(t) => t.apply(buf, cur, rng)?,
                Transform::RandomHorizontalFlip(t) => {
                    t.apply(&mut buf.cur, cur, rng)?;
                    cur
                }
                Transform::ColorJitter(t) => {
                    t.draw(rng).apply(&mut buf.cur, cur)?;
                    cur
                }
                Transform::RandAugment(t) => {
                    t.apply(&mut buf.cur, cur, rng, &mut buf.next, &mut buf.extra)?;
                    cur
                }
                Transform::RandomErasing(t) => {
                    t.apply(&mut buf.cur, cur, rng, &mut buf.extra)?;
                    cur
                }
                Transform::Normalize(t) => {
                    t.apply(&mut buf.cur, cur);
                    cur
                }
            };
        }
        Ok(cur)
    }

    /// Transforms `image` (`shape`) into a new buffer, of [`Transforms::output_shape`].
    pub fn apply(
        &self,
        image: &[u8],
        shape: [usize; 3],
        rng: &mut StdRng,
    ) -> Result<Vec<f32>, DataError> {
        let mut ws = Workspace::default();
        self.run(image, shape, rng, &mut ws)?;
        Ok(ws.buffers.cur)
    }

    /// Transforms `image` (`shape`) into `out`, which must hold exactly as many values as the
    /// output, and returns the output shape.
    pub fn apply_into(
        &self,
        image: &[u8],
        shape: [usize; 3],
        rng: &mut StdRng,
        ws: &mut Workspace,
        out: &mut [f32],
    ) -> Result<[usize; 3], DataError> {
        let out_shape = self.run(image, shape, rng, ws)?;
        let result = ws.output();
        if out.len() != result.len() {
            return Err(DataError::BufferSize {
                shape: out_shape,
                expected: result.len(),
                found: out.len(),
            });
        }
        out.copy_from_slice(result);
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
    fn a_leading_resized_crop_reads_the_bytes_exactly_as_the_floats() {
        let shape = [3, 37, 53];
        let img: Vec<u8> = (0..shape.iter().product::<usize>())
            .map(|i| (i * 7919 % 251) as u8)
            .collect();
        for interpolation in [Interpolation::Bilinear, Interpolation::Random] {
            let rrc = RandomResizedCrop {
                interpolation,
                ..RandomResizedCrop::new(24)
            };
            let fast = pipeline(vec![rrc.clone().into()]);
            for sample in 0..8 {
                let got = fast
                    .apply(&img, shape, &mut sample_rng(3, 1, sample))
                    .unwrap();
                // The general path: convert the whole image, then crop the floats.
                let mut buffers = Buffers {
                    cur: to_unit(&img),
                    ..Buffers::default()
                };
                rrc.apply(&mut buffers, shape, &mut sample_rng(3, 1, sample))
                    .unwrap();
                assert_eq!(got, buffers.cur, "sample {sample}");
            }
        }
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
        let mut scratch = Workspace::default();
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
