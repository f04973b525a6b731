//! Epoch metrics: loss components and top-k accuracy on the student's logits.

use burn::prelude::*;
use kd_core::Targets;

/// The names of the accuracy metrics, as SuperGradients logs them.
pub const METRIC_NAMES: [&str; 2] = ["Accuracy", "Top5"];

/// Running sums over one epoch.
#[derive(Debug, Clone)]
pub struct MetricAccumulator {
    loss_names: Vec<String>,
    loss_sums: Vec<f64>,
    correct_top1: usize,
    correct_top5: usize,
    samples: usize,
}

impl MetricAccumulator {
    /// An empty accumulator for the given loss component names (already prefixed).
    pub fn new(loss_names: Vec<String>) -> Self {
        let n = loss_names.len();
        Self {
            loss_names,
            loss_sums: vec![0.0; n],
            correct_top1: 0,
            correct_top5: 0,
            samples: 0,
        }
    }

    /// Adds one batch: its loss components and the logits/targets for accuracy.
    pub fn update(&mut self, components: &[f32], logits: Tensor<2>, targets: &Targets) {
        let [batch, classes] = logits.dims();
        let scores: Vec<f32> = logits
            .into_data()
            .try_into_vec_as::<f32>()
            .unwrap_or_default();
        let labels: Vec<i64> = targets
            .class_indices()
            .into_data()
            .try_into_vec_as::<i64>()
            .unwrap_or_default();
        // Unreadable outputs count as wrong answers rather than aborting the epoch.
        let readable = scores.len() == batch * classes && labels.len() == batch;
        for (b, &label) in labels.iter().enumerate().filter(|_| readable) {
            let row = &scores[b * classes..(b + 1) * classes];
            let Some(&t) = usize::try_from(label).ok().and_then(|l| row.get(l)) else {
                continue;
            };
            let label = label as usize;
            // Rank as torch.topk/argmax order it: higher scores first, ties by lower index.
            let rank = row
                .iter()
                .enumerate()
                .filter(|&(j, &v)| v > t || (v == t && j < label))
                .count();
            self.correct_top1 += usize::from(rank < 1);
            self.correct_top5 += usize::from(rank < 5);
        }
        for (sum, &c) in self.loss_sums.iter_mut().zip(components) {
            *sum += c as f64 * batch as f64;
        }
        self.samples += batch;
    }

    /// The number of samples seen.
    pub fn samples(&self) -> usize {
        self.samples
    }

    /// Sample-weighted means of the loss components, then `Accuracy` and `Top5`.
    pub fn compute(&self) -> Vec<(String, f64)> {
        let n = self.samples.max(1) as f64;
        let mut out: Vec<(String, f64)> = self
            .loss_names
            .iter()
            .zip(&self.loss_sums)
            .map(|(k, s)| (k.clone(), s / n))
            .collect();
        out.push((METRIC_NAMES[0].to_string(), self.correct_top1 as f64 / n));
        out.push((METRIC_NAMES[1].to_string(), self.correct_top5 as f64 / n));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top1_and_top5_with_ties_broken_by_index() {
        let device = Device::flex();
        // Row 0: class 2 is best. Row 1: all equal, argmax would say class 0.
        let mut scores = vec![0.0f32; 2 * 7];
        scores[2] = 1.0;
        let logits = Tensor::<2>::from_data(TensorData::new(scores, [2, 7]), &device);
        let targets = Targets::Hard(Tensor::<1, Int>::from_ints([2, 6], &device));
        let mut m = MetricAccumulator::new(vec!["Loss".into()]);
        m.update(&[0.5], logits, &targets);
        let out = m.compute();
        assert_eq!(out[0], ("Loss".to_string(), 0.5));
        assert_eq!(out[1], ("Accuracy".to_string(), 0.5));
        // Row 1's label 6 ranks 6th among ties: outside the top 5.
        assert_eq!(out[2], ("Top5".to_string(), 0.5));
    }
}
