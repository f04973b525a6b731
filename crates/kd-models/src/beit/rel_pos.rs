//! BEiT's relative-position bias: a learned table of per-head biases indexed by the offset
//! between two patches, plus three entries for the class token.
//!
//! For a window of `h x w` patches there are `(2h - 1)(2w - 1)` patch offsets and three
//! class-token entries (class to patch, patch to class, class to class), so the table is
//! `[(2h - 1)(2w - 1) + 3, heads]`. The index that picks a table row for every pair of the
//! `1 + h w` tokens is computed, as timm's `gen_relative_position_index`; it is not a
//! parameter.

use std::sync::Arc;

use burn::module::Param;
use burn::prelude::*;

use super::init::constant_param;

/// Rows of the bias table for a window of `window[0] x window[1]` patches.
pub fn num_relative_distance(window: [usize; 2]) -> usize {
    (2 * window[0] - 1) * (2 * window[1] - 1) + 3
}

/// timm's relative-position index for a window of `window[0] x window[1]` patches:
/// `[(1 + h w) x (1 + h w)]` table rows, row-major, token 0 being the class token.
///
/// Patch `p = i w + j` sits at row `i`, column `j`; the pair `(p, q)` reads row
/// `(i_p - i_q + h - 1)(2 w - 1) + (j_p - j_q + w - 1)`. With `R` the table length, the class
/// token attending to a patch reads `R - 3`, a patch attending to the class token `R - 2`,
/// and the class token attending to itself `R - 1`.
pub fn relative_position_index(window: [usize; 2]) -> Vec<i64> {
    let [h, w] = window;
    let area = h * w;
    let tokens = area + 1;
    let distance = num_relative_distance(window) as i64;
    let mut index = vec![0i64; tokens * tokens];
    for p in 0..area {
        for q in 0..area {
            let di = (p / w) as i64 - (q / w) as i64 + h as i64 - 1;
            let dj = (p % w) as i64 - (q % w) as i64 + w as i64 - 1;
            index[(p + 1) * tokens + q + 1] = di * (2 * w as i64 - 1) + dj;
        }
    }
    for t in 1..tokens {
        index[t] = distance - 3;
        index[t * tokens] = distance - 2;
    }
    index[0] = distance - 1;
    index
}

/// The computed relative-position index of one window, shared between clones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelativePositionIndex {
    window: [usize; 2],
    index: Arc<[i64]>,
}

impl RelativePositionIndex {
    /// The index of a window of `window[0] x window[1]` patches.
    pub fn new(window: [usize; 2]) -> Self {
        Self {
            window,
            index: relative_position_index(window).into(),
        }
    }

    /// The window, in patches.
    pub fn window(&self) -> [usize; 2] {
        self.window
    }

    /// Tokens of the sequence: the patches plus the class token.
    pub fn tokens(&self) -> usize {
        self.window[0] * self.window[1] + 1
    }

    /// The index values, row-major over `[tokens, tokens]`.
    pub fn values(&self) -> &[i64] {
        &self.index
    }

    /// Looks the bias of every token pair up in `table` (`[num_relative_distance, heads]`):
    /// `[heads, tokens, tokens]`.
    pub fn bias(&self, table: Tensor<2>) -> Tensor<3> {
        let tokens = self.tokens();
        let [_, heads] = table.dims();
        let device = table.device();
        let index = Tensor::<1, Int>::from_data(
            TensorData::new(self.index.to_vec(), [tokens * tokens]),
            &device,
        );
        table
            .select(0, index)
            .reshape([tokens, tokens, heads])
            .permute([2, 0, 1])
    }
}

/// A relative-position bias table shared by every block (timm's `rel_pos_bias`, used with
/// `use_shared_rel_pos_bias`).
#[derive(Module, Debug)]
pub struct RelativePositionBias {
    /// Biases, `[num_relative_distance, heads]`, initialised to zero.
    pub relative_position_bias_table: Param<Tensor<2>>,
    /// The computed index of the window.
    #[module(skip)]
    pub relative_position_index: RelativePositionIndex,
}

impl RelativePositionBias {
    /// A zero-initialised table for `window` and `num_heads`.
    pub fn new(window: [usize; 2], num_heads: usize, device: &Device) -> Self {
        Self {
            relative_position_bias_table: constant_param(
                [num_relative_distance(window), num_heads],
                0.0,
                device,
            ),
            relative_position_index: RelativePositionIndex::new(window),
        }
    }

    /// The bias of every token pair, `[heads, tokens, tokens]`.
    pub fn forward(&self) -> Tensor<3> {
        self.relative_position_index
            .bias(self.relative_position_bias_table.val())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// timm's index for a 2x3 window, printed by
    /// `timm.models.beit.gen_relative_position_index((2, 3)).tolist()` (timm 1.0.31, torch 2.9.0).
    const TIMM_INDEX_2X3: [[i64; 7]; 7] = [
        [17, 15, 15, 15, 15, 15, 15],
        [16, 7, 6, 5, 2, 1, 0],
        [16, 8, 7, 6, 3, 2, 1],
        [16, 9, 8, 7, 4, 3, 2],
        [16, 12, 11, 10, 7, 6, 5],
        [16, 13, 12, 11, 8, 7, 6],
        [16, 14, 13, 12, 9, 8, 7],
    ];

    #[test]
    fn matches_timm_index() {
        let expected: Vec<i64> = TIMM_INDEX_2X3.iter().flatten().copied().collect();
        assert_eq!(relative_position_index([2, 3]), expected);
        assert_eq!(num_relative_distance([2, 3]), 3 * 5 + 3);
        assert_eq!(num_relative_distance([14, 14]), 732);
    }

    #[test]
    fn bias_reads_table_rows_per_head() {
        let device = Device::flex();
        let window = [2, 3];
        let rows = num_relative_distance(window);
        // table[r, h] = 10 r + h
        let table: Vec<f32> = (0..rows)
            .flat_map(|r| (0..2).map(move |h| (10 * r + h) as f32))
            .collect();
        let table = Tensor::<2>::from_data(TensorData::new(table, [rows, 2]), &device);
        let bias = RelativePositionIndex::new(window).bias(table);
        assert_eq!(bias.dims(), [2, 7, 7]);
        let values: Vec<f32> = bias.into_data().try_into_vec::<f32>().unwrap();
        for h in 0..2 {
            for i in 0..7 {
                for j in 0..7 {
                    let want = (10 * TIMM_INDEX_2X3[i][j] + h as i64) as f32;
                    assert_eq!(values[h * 49 + i * 7 + j], want, "head {h} ({i}, {j})");
                }
            }
        }
    }
}
