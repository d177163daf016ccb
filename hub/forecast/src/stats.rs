//! Small numeric helpers: the normal quantile for safety stock, the Poisson conditional mean used
//! to impute censored (stock-out) days, and seeded samplers for the generator.
//!
//! No I/O and no global random state: every sampler takes the caller's seeded generator.

use rand::Rng;

/// Quantile of the standard normal distribution (Acklam's rational approximation, relative
/// error below 1.2e-9). `p` is clamped to `[1e-9, 1 - 1e-9]`.
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let p = if p.is_nan() {
        0.5
    } else {
        p.clamp(1e-9, 1.0 - 1e-9)
    };
    let low = 0.024_25;
    if p < low {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - low {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        -normal_quantile(1.0 - p)
    }
}

/// Standard normal density.
fn normal_pdf(x: f64) -> f64 {
    (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

/// Upper tail of the standard normal, `P(Z > x)` (Abramowitz–Stegun 7.1.26 through erfc).
fn normal_upper_tail(x: f64) -> f64 {
    let z = x / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * z.abs());
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erfc = poly * (-z * z).exp();
    if z >= 0.0 {
        0.5 * erfc
    } else {
        1.0 - 0.5 * erfc
    }
}

/// Expected demand given that demand was at least `observed`, for Poisson demand with mean
/// `mean`: what a stock-out day's sales (a lower bound) say about its true demand.
///
/// Always `>= observed` and `>= 0`; equals `mean` when `observed` is 0.
pub fn poisson_mean_at_least(mean: f64, observed: f64) -> f64 {
    if !(mean.is_finite() && mean > 0.0) {
        return observed.max(0.0);
    }
    let observed = observed.max(0.0);
    let k = observed.ceil();
    if k <= 0.0 {
        return mean;
    }
    let result = if mean > 60.0 {
        // Normal approximation with continuity correction.
        let sd = mean.sqrt();
        let a = (k - 0.5 - mean) / sd;
        if a > 8.0 {
            k
        } else {
            let tail = normal_upper_tail(a).max(1e-300);
            mean + sd * normal_pdf(a) / tail
        }
    } else if k > mean + 12.0 * mean.sqrt() + 30.0 {
        k
    } else {
        // E[D; D >= k] = mean * P(D >= k - 1), so E[D | D >= k] = mean * P(D >= k-1) / P(D >= k).
        let kk = k as usize;
        let mut pmf = (-mean).exp();
        let mut cdf_before_km1 = 0.0; // P(D <= k - 2)
        for d in 0..kk.saturating_sub(1) {
            cdf_before_km1 += pmf;
            pmf *= mean / (d + 1) as f64;
        }
        // pmf is now P(D = k - 1).
        let ge_km1 = (1.0 - cdf_before_km1).max(0.0);
        let ge_k = (ge_km1 - pmf).max(0.0);
        if ge_k <= 1e-12 {
            k
        } else {
            mean * ge_km1 / ge_k
        }
    };
    if result.is_finite() {
        result.max(observed)
    } else {
        observed
    }
}

/// A standard normal draw (Box–Muller).
pub fn sample_normal<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    let u1: f64 = rng.random::<f64>().max(1e-300);
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// A Gamma(shape, 1) draw (Marsaglia–Tsang; boosted for shape < 1).
pub fn sample_gamma<R: Rng + ?Sized>(rng: &mut R, shape: f64) -> f64 {
    if shape < 1.0 {
        let u: f64 = rng.random::<f64>().max(1e-300);
        return sample_gamma(rng, shape + 1.0) * u.powf(1.0 / shape);
    }
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let x = sample_normal(rng);
        let v = (1.0 + c * x).powi(3);
        if v <= 0.0 {
            continue;
        }
        let u: f64 = rng.random::<f64>().max(1e-300);
        if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
            return d * v;
        }
    }
}

/// A Poisson draw: multiplication method for small means, rounded normal for large ones.
pub fn sample_poisson<R: Rng + ?Sized>(rng: &mut R, mean: f64) -> f64 {
    if mean.is_nan() || mean <= 0.0 {
        return 0.0;
    }
    if mean > 40.0 {
        return (mean + mean.sqrt() * sample_normal(rng)).round().max(0.0);
    }
    let limit = (-mean).exp();
    let mut k = 0.0;
    let mut p: f64 = rng.random::<f64>();
    while p > limit {
        k += 1.0;
        p *= rng.random::<f64>();
    }
    k
}

/// A negative-binomial draw as a Gamma–Poisson mixture: mean `mean`, variance
/// `mean + mean² / shape`.
pub fn sample_neg_binomial<R: Rng + ?Sized>(rng: &mut R, mean: f64, shape: f64) -> f64 {
    if mean.is_nan() || mean <= 0.0 {
        return 0.0;
    }
    let rate = mean * sample_gamma(rng, shape) / shape;
    sample_poisson(rng, rate)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn normal_quantiles_match_tables() {
        for (p, z) in [
            (0.5, 0.0),
            (0.95, 1.644_853_6),
            (0.975, 1.959_964),
            (0.01, -2.326_348),
        ] {
            assert!(
                (normal_quantile(p) - z).abs() < 1e-5,
                "{p}: {}",
                normal_quantile(p)
            );
        }
    }

    #[test]
    fn censored_poisson_mean_is_above_both_bounds() {
        // Sold 0 on a stock-out day: nothing learned, the mean stands.
        assert!((poisson_mean_at_least(4.0, 0.0) - 4.0).abs() < 1e-12);
        // Sold 2 of a mean of 4: the demand was at least 2, expectation above 4.
        let e = poisson_mean_at_least(4.0, 2.0);
        assert!(e > 4.0 && e < 5.0, "{e}");
        // Sold far above the mean: the demand was at least that.
        assert!(poisson_mean_at_least(2.0, 40.0) >= 40.0);
        assert!(poisson_mean_at_least(500.0, 450.0) > 500.0);
        assert!(poisson_mean_at_least(500.0, 700.0) >= 700.0);
    }

    #[test]
    fn samplers_have_the_right_means() {
        let mut rng = StdRng::seed_from_u64(7);
        let n = 20_000;
        let mean = |f: &mut dyn FnMut(&mut StdRng) -> f64, rng: &mut StdRng| {
            (0..n).map(|_| f(rng)).sum::<f64>() / n as f64
        };
        let m = mean(&mut |r| sample_poisson(r, 3.0), &mut rng);
        assert!((m - 3.0).abs() < 0.1, "{m}");
        let m = mean(&mut |r| sample_poisson(r, 80.0), &mut rng);
        assert!((m - 80.0).abs() < 0.5, "{m}");
        let m = mean(&mut |r| sample_neg_binomial(r, 5.0, 4.0), &mut rng);
        assert!((m - 5.0).abs() < 0.15, "{m}");
        let m = mean(&mut |r| sample_gamma(r, 0.5), &mut rng);
        assert!((m - 0.5).abs() < 0.03, "{m}");
    }
}
