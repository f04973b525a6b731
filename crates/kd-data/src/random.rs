//! The few distributions the augmentations draw from, on top of `rand`'s uniform sampling.

use rand::Rng;

/// A uniform draw from `[lo, hi)` (`lo` when the range is empty).
pub(crate) fn uniform<R: Rng + ?Sized>(rng: &mut R, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * rng.random::<f64>()
}

/// A standard normal draw (Box–Muller).
pub(crate) fn normal<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    // 1 - u lies in (0, 1], so the logarithm is finite.
    let u1 = 1.0 - rng.random::<f64>();
    let u2 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A Gamma(`shape`, 1) draw (Marsaglia and Tsang, 2000), for `shape > 0`.
pub(crate) fn gamma<R: Rng + ?Sized>(rng: &mut R, shape: f64) -> f64 {
    if shape < 1.0 {
        // Gamma(a) = Gamma(a + 1) · U^(1/a).
        let u = 1.0 - rng.random::<f64>();
        return gamma(rng, shape + 1.0) * u.powf(1.0 / shape);
    }
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let x = normal(rng);
        let v = (1.0 + c * x).powi(3);
        if v <= 0.0 {
            continue;
        }
        let u = 1.0 - rng.random::<f64>();
        if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
            return d * v;
        }
    }
}

/// A Beta(`a`, `b`) draw, for positive `a` and `b`.
pub(crate) fn beta<R: Rng + ?Sized>(rng: &mut R, a: f64, b: f64) -> f64 {
    let x = gamma(rng, a);
    let y = gamma(rng, b);
    if x + y == 0.0 { 0.5 } else { x / (x + y) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn moments(draws: &[f64]) -> (f64, f64) {
        let n = draws.len() as f64;
        let mean = draws.iter().sum::<f64>() / n;
        let var = draws.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        (mean, var)
    }

    #[test]
    fn normal_and_beta_have_their_moments() {
        let mut rng = StdRng::seed_from_u64(3);
        let z: Vec<f64> = (0..20_000).map(|_| normal(&mut rng)).collect();
        let (m, v) = moments(&z);
        assert!(m.abs() < 0.03 && (v - 1.0).abs() < 0.05, "{m} {v}");
        // Beta(a, a) has mean 1/2 and variance 1 / (4 (2a + 1)).
        for a in [0.2, 1.0, 3.0] {
            let x: Vec<f64> = (0..20_000).map(|_| beta(&mut rng, a, a)).collect();
            let (m, v) = moments(&x);
            let expected = 1.0 / (4.0 * (2.0 * a + 1.0));
            assert!((m - 0.5).abs() < 0.01, "a={a}: mean {m}");
            assert!(
                (v - expected).abs() < 0.1 * expected,
                "a={a}: var {v} vs {expected}"
            );
            assert!(x.iter().all(|&b| (0.0..=1.0).contains(&b)));
        }
    }
}
