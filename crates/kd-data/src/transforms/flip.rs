//! `RandomHorizontalFlip`.

use rand::Rng;
use rand::rngs::StdRng;

use super::invalid;
use crate::error::DataError;
use crate::functional;

/// Horizontal flip with probability `p` (torchvision `RandomHorizontalFlip(p)`).
#[derive(Debug, Clone, PartialEq)]
pub struct RandomHorizontalFlip {
    /// Flip probability in `[0, 1]`.
    pub p: f64,
}

impl RandomHorizontalFlip {
    pub(crate) fn validate(&self) -> Result<(), DataError> {
        if !(0.0..=1.0).contains(&self.p) {
            return Err(invalid(
                "RandomHorizontalFlip",
                format!("p is {}: give a probability in [0, 1]", self.p),
            ));
        }
        Ok(())
    }

    /// Whether this sample is flipped.
    pub fn draw(&self, rng: &mut StdRng) -> bool {
        rng.random::<f64>() < self.p
    }

    pub(crate) fn apply(
        &self,
        data: &mut [f32],
        shape: [usize; 3],
        rng: &mut StdRng,
    ) -> Result<(), DataError> {
        if self.draw(rng) {
            functional::hflip(data, shape)?;
        }
        Ok(())
    }
}
