//! Batch mixing: Mixup (Zhang et al., 2018) and CutMix (Yun et al., 2019) with timm's
//! `Mixup` semantics, as SuperGradients' `CollateMixup` applies them.

use rand::Rng;
use rand::rngs::StdRng;

use crate::error::DataError;
use crate::functional::CropBox;
use crate::random::beta;

/// How [`Mixup`] draws its parameters within a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MixMode {
    /// One draw for the whole batch, which is mixed with its reverse.
    #[default]
    Batch,
    /// One draw per pair `(i, B - 1 - i)`; both partners are mixed with each other.
    Pair,
    /// One draw per sample, mixed with sample `B - 1 - i` (which keeps its own draw).
    Elem,
}

/// Mixup/CutMix of a batch with soft, label-smoothed targets (timm `Mixup`).
///
/// With probability `prob` a batch (pair, element) is mixed: by CutMix with probability
/// `switch_prob` when both alphas are positive (always CutMix when only `cutmix_alpha` is),
/// otherwise by Mixup. Mixup draws `λ ~ Beta(mixup_alpha, mixup_alpha)` and forms `λ·x_i + (1 −
/// λ)·x_j`; CutMix draws `λ ~ Beta(cutmix_alpha, cutmix_alpha)`, pastes a box of `x_j` covering
/// about `1 − λ` of the image into `x_i`, and recomputes `λ` from the box actually pasted.
/// Targets are `λ·y_i + (1 − λ)·y_j` of the smoothed one-hot labels (`1 − ε + ε/K` on the class,
/// `ε/K` elsewhere), so every row sums to 1. SuperGradients' defaults: `mixup_alpha` 1.0,
/// `cutmix_alpha` 0.0, `prob` 1.0, `switch_prob` 0.5, `mode` batch, `label_smoothing` 0.1.
#[derive(Debug, Clone, PartialEq)]
pub struct Mixup {
    /// Mixup's Beta parameter; 0 disables Mixup.
    pub mixup_alpha: f64,
    /// CutMix's Beta parameter; 0 disables CutMix.
    pub cutmix_alpha: f64,
    /// Probability of mixing a batch (pair, element).
    pub prob: f64,
    /// Probability of CutMix rather than Mixup when both are enabled.
    pub switch_prob: f64,
    /// Granularity of the draws.
    pub mode: MixMode,
    /// Label smoothing `ε` of the targets.
    pub label_smoothing: f64,
}

impl Default for Mixup {
    fn default() -> Self {
        Self {
            mixup_alpha: 1.0,
            cutmix_alpha: 0.0,
            prob: 1.0,
            switch_prob: 0.5,
            mode: MixMode::Batch,
            label_smoothing: 0.1,
        }
    }
}

/// One mixing decision: the weight of the sample itself and whether it is a CutMix.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MixDraw {
    /// `λ`, the weight of the sample itself (1 = unmixed).
    pub lam: f64,
    /// CutMix (true) or Mixup (false).
    pub cutmix: bool,
}

impl Mixup {
    /// Checks that the alphas are ≥ 0 with one positive, the probabilities and smoothing in
    /// `[0, 1]`.
    pub fn validate(&self) -> Result<(), DataError> {
        let bad = |field, reason: String| Err(DataError::InvalidMixup { field, reason });
        for (field, v) in [
            ("mixup_alpha", self.mixup_alpha),
            ("cutmix_alpha", self.cutmix_alpha),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return bad(
                    field,
                    format!("{v} is not ≥ 0: use e.g. 0.2 (0 disables it)"),
                );
            }
        }
        if self.mixup_alpha == 0.0 && self.cutmix_alpha == 0.0 {
            return bad(
                "mixup_alpha",
                "both mixup_alpha and cutmix_alpha are 0, so nothing is mixed: set one of them or drop the mixing".into(),
            );
        }
        for (field, v) in [
            ("prob", self.prob),
            ("switch_prob", self.switch_prob),
            ("label_smoothing", self.label_smoothing),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return bad(field, format!("{v} is outside [0, 1]"));
            }
        }
        Ok(())
    }

    /// Draws one mixing decision (timm `_params_per_batch`).
    pub fn draw(&self, rng: &mut StdRng) -> MixDraw {
        if rng.random::<f64>() >= self.prob {
            return MixDraw {
                lam: 1.0,
                cutmix: false,
            };
        }
        let cutmix = if self.mixup_alpha > 0.0 && self.cutmix_alpha > 0.0 {
            rng.random::<f64>() < self.switch_prob
        } else {
            self.cutmix_alpha > 0.0
        };
        let alpha = if cutmix {
            self.cutmix_alpha
        } else {
            self.mixup_alpha
        };
        MixDraw {
            lam: beta(rng, alpha, alpha),
            cutmix,
        }
    }

    /// Mixes `images` (`B` images of `shape`, back to back) in place and returns the soft
    /// targets, `B × num_classes` values row by row.
    ///
    /// Fails when the buffer does not hold whole images or a label is not below
    /// `num_classes`.
    pub fn apply(
        &self,
        images: &mut [f32],
        shape: [usize; 3],
        labels: &[i64],
        num_classes: usize,
        rng: &mut StdRng,
    ) -> Result<Vec<f32>, DataError> {
        let b = labels.len();
        let per = shape.iter().product::<usize>();
        if images.len() != b * per {
            return Err(DataError::BufferSize {
                shape,
                expected: b * per,
                found: images.len(),
            });
        }
        if let Some((index, &label)) = labels
            .iter()
            .enumerate()
            .find(|(_, l)| !(0..num_classes as i64).contains(*l))
        {
            return Err(DataError::LabelOutOfRange {
                path: "<batch>".into(),
                index,
                label: label.max(0) as usize,
                num_classes,
            });
        }
        let original = images.to_vec();
        let partner = |i: usize| b - 1 - i;
        let mut lams = vec![1.0f64; b];
        match self.mode {
            MixMode::Batch => {
                let d = self.draw(rng);
                if d.lam < 1.0 {
                    let lam = if d.cutmix {
                        let (bx, lam) = cutmix_box(shape, d.lam, rng);
                        for i in 0..b {
                            paste(images, &original, shape, i, partner(i), bx);
                        }
                        lam
                    } else {
                        for i in 0..b {
                            blend(images, &original, per, i, partner(i), d.lam);
                        }
                        d.lam
                    };
                    lams.fill(lam);
                }
            }
            MixMode::Pair => {
                for i in 0..b / 2 {
                    let d = self.draw(rng);
                    if d.lam >= 1.0 {
                        continue;
                    }
                    let j = partner(i);
                    let lam = if d.cutmix {
                        let (bx, lam) = cutmix_box(shape, d.lam, rng);
                        paste(images, &original, shape, i, j, bx);
                        paste(images, &original, shape, j, i, bx);
                        lam
                    } else {
                        blend(images, &original, per, i, j, d.lam);
                        blend(images, &original, per, j, i, d.lam);
                        d.lam
                    };
                    lams[i] = lam;
                    lams[j] = lam;
                }
            }
            MixMode::Elem => {
                for (i, lam_i) in lams.iter_mut().enumerate() {
                    let d = self.draw(rng);
                    if d.lam >= 1.0 {
                        continue;
                    }
                    *lam_i = if d.cutmix {
                        let (bx, lam) = cutmix_box(shape, d.lam, rng);
                        paste(images, &original, shape, i, partner(i), bx);
                        lam
                    } else {
                        blend(images, &original, per, i, partner(i), d.lam);
                        d.lam
                    };
                }
            }
        }
        Ok(mix_targets(
            labels,
            num_classes,
            &lams,
            self.label_smoothing,
        ))
    }
}

/// `images[i] = lam · original[i] + (1 − lam) · original[j]`.
fn blend(images: &mut [f32], original: &[f32], per: usize, i: usize, j: usize, lam: f64) {
    let lam = lam as f32;
    let (a, b) = (&original[i * per..][..per], &original[j * per..][..per]);
    for ((o, &x), &y) in images[i * per..][..per].iter_mut().zip(a).zip(b) {
        *o = x * lam + y * (1.0 - lam);
    }
}

/// Copies `bx` of `original[j]` into `images[i]`.
fn paste(
    images: &mut [f32],
    original: &[f32],
    [c, h, w]: [usize; 3],
    i: usize,
    j: usize,
    bx: CropBox,
) {
    let per = c * h * w;
    let (top, left) = (bx.top as usize, bx.left as usize);
    for ch in 0..c {
        for y in top..top + bx.height {
            let at = ch * h * w + y * w + left;
            images[i * per + at..][..bx.width]
                .copy_from_slice(&original[j * per + at..][..bx.width]);
        }
    }
}

/// The CutMix box for weight `lam` in an image of `shape`, and the weight it actually leaves
/// (timm `cutmix_bbox_and_lam` with `correct_lam=True`): sides `⌊H·√(1−λ)⌋ × ⌊W·√(1−λ)⌋`
/// centred at a uniform pixel and clipped to the image; the returned weight is `1 − box area /
/// image area`.
pub fn cutmix_box(shape: [usize; 3], lam: f64, rng: &mut StdRng) -> (CropBox, f64) {
    let [_, h, w] = shape;
    let ratio = (1.0 - lam).max(0.0).sqrt();
    let (cut_h, cut_w) = ((h as f64 * ratio) as usize, (w as f64 * ratio) as usize);
    let cy = rng.random_range(0..h) as isize;
    let cx = rng.random_range(0..w) as isize;
    let clip = |v: isize, hi: usize| v.clamp(0, hi as isize) as usize;
    let (y0, y1) = (
        clip(cy - (cut_h / 2) as isize, h),
        clip(cy + (cut_h / 2) as isize, h),
    );
    let (x0, x1) = (
        clip(cx - (cut_w / 2) as isize, w),
        clip(cx + (cut_w / 2) as isize, w),
    );
    let bx = CropBox {
        top: y0 as isize,
        left: x0 as isize,
        height: y1 - y0,
        width: x1 - x0,
    };
    let lam = 1.0 - ((y1 - y0) * (x1 - x0)) as f64 / (h * w) as f64;
    (bx, lam)
}

/// Soft targets `lam_i · y_i + (1 − lam_i) · y_{B−1−i}` of smoothed one-hot labels (timm
/// `mixup_target`), `B × num_classes` values.
pub fn mix_targets(labels: &[i64], num_classes: usize, lams: &[f64], smoothing: f64) -> Vec<f32> {
    let b = labels.len();
    let off = smoothing / num_classes as f64;
    let on = 1.0 - smoothing + off;
    let mut out = vec![0.0f32; b * num_classes];
    for (i, row) in out.chunks_exact_mut(num_classes).enumerate() {
        let lam = lams[i];
        let mut probs = vec![off; num_classes];
        probs[labels[i] as usize] += (on - off) * lam;
        probs[labels[b - 1 - i] as usize] += (on - off) * (1.0 - lam);
        for (o, p) in row.iter_mut().zip(probs) {
            *o = p as f32;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn batch(b: usize, shape: [usize; 3]) -> Vec<f32> {
        let per = shape.iter().product::<usize>();
        (0..b * per).map(|i| (i / per) as f32 + 1.0).collect()
    }

    #[test]
    fn targets_sum_to_one_and_match_the_weight() {
        let t = mix_targets(&[0, 2, 1], 4, &[0.7, 1.0, 0.2], 0.1);
        for row in t.chunks(4) {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6, "{row:?}");
        }
        // Row 0 mixes class 0 (weight 0.7) with class 1 (the last label).
        let (on, off) = (0.9 + 0.025, 0.025);
        assert!((t[0] - (off + (on - off) * 0.7) as f32).abs() < 1e-6);
        assert!((t[1] - (off + (on - off) * 0.3) as f32).abs() < 1e-6);
    }

    #[test]
    fn batch_mixup_blends_with_the_reversed_batch() {
        let shape = [1, 2, 2];
        let m = Mixup {
            mixup_alpha: 0.4,
            label_smoothing: 0.0,
            ..Mixup::default()
        };
        let mut images = batch(3, shape);
        let targets = m
            .apply(
                &mut images,
                shape,
                &[0, 1, 2],
                3,
                &mut StdRng::seed_from_u64(4),
            )
            .unwrap();
        // Sample 0 (ones) mixes with sample 2 (threes): value = lam + 3 (1 - lam).
        let lam = f64::from(targets[0]);
        assert!((f64::from(images[0]) - (lam + 3.0 * (1.0 - lam))).abs() < 1e-5);
        assert!((f64::from(targets[2]) - (1.0 - lam)).abs() < 1e-6);
        // The middle sample mixes with itself.
        assert!(images[4..8].iter().all(|&v| (v - 2.0).abs() < 1e-6));
    }

    #[test]
    fn cutmix_weight_equals_the_unpasted_area() {
        let shape = [2, 8, 10];
        let m = Mixup {
            mixup_alpha: 0.0,
            cutmix_alpha: 1.0,
            label_smoothing: 0.0,
            mode: MixMode::Elem,
            ..Mixup::default()
        };
        for seed in 0..20 {
            let mut images = batch(4, shape);
            let targets = m
                .apply(
                    &mut images,
                    shape,
                    &[0, 1, 2, 3],
                    4,
                    &mut StdRng::seed_from_u64(seed),
                )
                .unwrap();
            for i in 0..4 {
                let img = &images[i * 160..][..160];
                let pasted = img.iter().filter(|&&v| v == (4 - i) as f32).count() as f64;
                let own = (4 - i - 1 == i) as usize as f64;
                let lam = f64::from(targets[i * 4 + i]);
                if own == 0.0 {
                    assert!(
                        (1.0 - pasted / 160.0 - lam).abs() < 1e-6,
                        "seed {seed} sample {i}"
                    );
                }
                let row: f32 = targets[i * 4..][..4].iter().sum();
                assert!((row - 1.0).abs() < 1e-6);
            }
        }
    }

    #[test]
    fn pair_mode_mixes_partners_symmetrically() {
        let shape = [1, 1, 1];
        let m = Mixup {
            label_smoothing: 0.0,
            mode: MixMode::Pair,
            ..Mixup::default()
        };
        let mut images = vec![0.0, 10.0, 5.0, 1.0];
        let t = m
            .apply(
                &mut images,
                shape,
                &[0, 1, 2, 3],
                4,
                &mut StdRng::seed_from_u64(1),
            )
            .unwrap();
        let lam0 = f64::from(t[0]);
        assert!((f64::from(images[0]) - (1.0 - lam0)).abs() < 1e-5);
        assert!((f64::from(images[3]) - lam0).abs() < 1e-5);
        assert!((f64::from(t[3 * 4 + 3]) - lam0).abs() < 1e-6);
    }

    #[test]
    fn bad_settings_and_labels_are_rejected() {
        let off = Mixup {
            mixup_alpha: 0.0,
            cutmix_alpha: 0.0,
            ..Mixup::default()
        };
        assert!(matches!(
            off.validate(),
            Err(DataError::InvalidMixup { .. })
        ));
        let p = Mixup {
            prob: 1.5,
            ..Mixup::default()
        };
        assert!(p.validate().is_err());
        let mut images = vec![0.0; 2];
        assert!(
            Mixup::default()
                .apply(
                    &mut images,
                    [1, 1, 1],
                    &[0, 5],
                    3,
                    &mut StdRng::seed_from_u64(0)
                )
                .is_err()
        );
    }
}
