//! Toy 4: a 1-D latent seen through z², whose posterior is bimodal: no Gaussian q can match it.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis};
use rand::Rng;
use rand_distr::StandardNormal;

use super::{
    ContinuousLatent, LatentModel, Posterior, Prior, check_x_len_finite, ensure_finite_vector, ensure_len,
};
use crate::base::error::{Error, Result, ensure_positive};
use crate::base::prob::diag_gaussian_log_density;
use crate::base::quadrature::{Quadrature, integrate};

/// Relative tolerance of the quadrature for p(x): log p(x) is accurate to about this many nats.
pub const QUADRATURE_REL_TOL: f64 = 1e-10;

/// The smallest σ accepted: narrower posterior peaks would need breakpoints finer than the
/// quadrature resolves relative to its bracket.
pub const MIN_SIGMA: f64 = 1e-6;

/// The largest ‖a‖/σ accepted: the posterior is never wider than about (σ/‖a‖)^½ (the quartic
/// term of log p(x, z) near its peak), and at 1e18 that is 1e-9, the finest width the breakpoints
/// resolve against a bracket of a few units. Larger ratios also overflow ‖a‖²/σ² in f64.
pub const MAX_A_OVER_SIGMA: f64 = 1e18;

/// Outside the bracket the integrand is below e^(−TAIL_NATS) times its peak.
const TAIL_NATS: f64 = 60.0;

/// Where log p(x, z) peaks, for [`Quadratic::log_joint_over_peak`].
#[derive(Clone, Copy, Debug)]
enum PeakShape {
    /// Two modes at ±√s (s > 0); `aa` = ‖a‖²; `e0` = ‖a‖² r² − aᵀ(x − c) + σ²/2 with r = `root_s`,
    /// the residue of rounding s and √s (0 in exact arithmetic), formed exactly enough that
    /// ‖a‖² z² − aᵀ(x − c) + σ²/2 = e0 + ‖a‖² (z − r)(z + r) keeps its digits near the mode.
    TwoModes { s: f64, root_s: f64, aa: f64, e0: f64 },
    /// One mode at 0; `curv0` = 1 − 2aᵀ(x − c)/σ² ≥ 0; `aa` = ‖a‖².
    AtZero { curv0: f64, aa: f64 },
}

/// z ~ N(0, 1), x | z ~ N(a z² + c, σ² I_D): the sign of z is invisible in x.
///
/// ```text
/// p(z)   = N(z; 0, 1)
/// p(x|z) = N(x; a z² + c, σ² I_D)
/// log p(x) = log ∫ p(z) p(x|z) dz                          (adaptive Gauss–Kronrod, rel. tol 1e-10)
/// p(z|x) ∝ p(z) p(x|z) is symmetric in z; its modes are at z = ±√s with
///   s = (aᵀ(x − c) − σ²/2) / ‖a‖²   when s > 0 (bimodal), else at z = 0.
///
///   a, c  D-vectors     σ  noise standard deviation
/// ```
/// A Gaussian q can cover one mode (or straddle both): the gap KL(q ‖ p(z|x)) stays positive,
/// approaching ln 2 for well-separated modes. Used for the approximation gap of Cremer, Li &
/// Duvenaud (2018).
///
/// ```
/// use vaelab::ndarray::array;
/// use vaelab::lessons::toy::{LatentModel, Quadratic};
/// // a = 0: x ignores z, so p(x) = N(x; c, σ²) = N(0; 0, 1) at x = c.
/// let m = Quadratic::new(array![0.0], array![1.0], 1.0).unwrap();
/// let lp = m.log_marginal(array![1.0].view()).unwrap();
/// assert!((lp + 0.5 * (2.0 * std::f64::consts::PI).ln()).abs() < 1e-10);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Quadratic {
    pub(crate) a: Array1<f64>,
    pub(crate) c: Array1<f64>,
    pub(crate) sigma: f64,
}

impl Quadratic {
    /// Validates and builds the model.
    ///
    /// # Errors
    /// Empty `a`, `c` of another length, non-finite entries, σ < [`MIN_SIGMA`], ‖a‖/σ above
    /// [`MAX_A_OVER_SIGMA`]: an error naming the field.
    pub fn new(a: Array1<f64>, c: Array1<f64>, sigma: f64) -> Result<Self> {
        if a.is_empty() {
            return Err(Error::empty("a", "data dimension"));
        }
        ensure_finite_vector("a", &a)?;
        ensure_len("c", &c, a.len(), "D = length of a")?;
        ensure_finite_vector("c", &c)?;
        ensure_positive("sigma", sigma)?;
        if sigma < MIN_SIGMA {
            return Err(Error::invalid(
                "sigma",
                format!("{sigma:e}"),
                format!("must be ≥ {MIN_SIGMA:e} for the quadrature of p(x)"),
            ));
        }
        // ‖a‖ without overflow: max |aⱼ| times the norm of a / max |aⱼ|.
        let a_max = a.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        let norm =
            if a_max > 0.0 { a_max * a.iter().map(|v| (v / a_max).powi(2)).sum::<f64>().sqrt() } else { 0.0 };
        if norm / sigma > MAX_A_OVER_SIGMA {
            return Err(Error::invalid(
                "a",
                format!("a vector with ‖a‖ = {norm:e}"),
                format!(
                    "‖a‖/σ = {:e} must be ≤ {MAX_A_OVER_SIGMA:e}: the posterior would be narrower than the quadrature of p(x) resolves",
                    norm / sigma
                ),
            ));
        }
        Ok(Quadratic { a, c, sigma })
    }

    /// a (D).
    pub fn a(&self) -> &Array1<f64> {
        &self.a
    }
    /// c (D).
    pub fn c(&self) -> &Array1<f64> {
        &self.c
    }
    /// σ.
    pub fn sigma(&self) -> f64 {
        self.sigma
    }

    /// The posterior modes (±√s, or 0) and their curvature widths τ = (−∂² log p(x,z)/∂z²)^(−½).
    ///
    /// ```text
    /// at ±√s (s > 0):  τ = σ / (2 ‖a‖ √s)
    /// at 0:            τ = (1 − 2 aᵀ(x − c)/σ²)^(−½)   (when that is positive)
    /// at 0, on the boundary aᵀ(x − c) = σ²/2 (zero curvature, a quartic peak):  τ = (σ/‖a‖)^½
    /// ```
    /// Never empty for a model from [`Quadratic::new`] and a finite `x` whose aᵀ(x − c) is finite.
    pub fn modes(&self, x: ArrayView1<f64>) -> Vec<(f64, f64)> {
        let s2 = self.sigma * self.sigma;
        let aa = self.a.dot(&self.a);
        let ax = self.a.dot(&(&x - &self.c));
        let mut modes = Vec::new();
        let curv0 = 1.0 - 2.0 * ax / s2; // −f''(0)
        if curv0 > 0.0 {
            modes.push((0.0, curv0.powf(-0.5)));
        }
        if aa > 0.0 {
            let s = (ax - 0.5 * s2) / aa;
            if s > 0.0 {
                let tau = self.sigma / (2.0 * aa.sqrt() * s.sqrt());
                modes.push((-s.sqrt(), tau));
                modes.push((s.sqrt(), tau));
            }
        }
        if modes.is_empty() && aa > 0.0 && ax.is_finite() {
            // Neither inequality held: aᵀ(x − c) = σ²/2 to rounding, where log p(x, z) is flat to
            // second order at 0 and falls as −‖a‖² z⁴ / (2σ²).
            modes.push((0.0, (self.sigma / aa.sqrt()).sqrt()));
        }
        modes
    }

    /// The bracket and breakpoints for ∫ p(z) p(x|z) dz, and the log of the integrand's peak.
    ///
    /// ```text
    /// m = max over the modes of log p(x, z)
    /// log p(x, z) ≤ −z²/2 − ½ ln 2π − ½ D ln(2πσ²)  for every z, so outside
    /// ±z_max,  z_max² = 2 (−½ ln 2π − ½ D ln(2πσ²) − m + 60),  the integrand is below e⁻⁶⁰ · e^m.
    /// Breakpoints at each mode μ and μ ± τ·{1, 2, 4, 8, 16}, so no narrow peak falls between nodes.
    /// ```
    pub fn breakpoints(&self, x: ArrayView1<f64>) -> (Vec<f64>, f64) {
        let modes = self.modes(x);
        let centres = Array2::from_shape_fn((modes.len(), 1), |(i, _)| modes[i].0);
        let peak = self.log_joint(x, centres.view()).fold(f64::NEG_INFINITY, |m, &v| m.max(v));
        let ln2pi = crate::base::prob::LN_2PI;
        let bound = -0.5 * ln2pi - 0.5 * self.a.len() as f64 * (ln2pi + 2.0 * self.sigma.ln());
        let z_max = (2.0 * (bound - peak + TAIL_NATS)).max(1.0).sqrt();
        let mut points = vec![-z_max, z_max];
        for &(mu, tau) in &modes {
            points.push(mu);
            for j in [1.0, 2.0, 4.0, 8.0, 16.0] {
                points.extend([mu - j * tau, mu + j * tau]);
            }
        }
        points.retain(|p| p.abs() <= z_max);
        points.sort_by(f64::total_cmp);
        points.dedup_by(|a, b| (*a - *b).abs() <= 1e-12 * z_max);
        (points, peak)
    }

    /// log p(x, z) − m at `z`, with m = log p(x, z*) at the best mode z*, computed from the
    /// difference itself, never as the difference of two numbers that may both be near −1e20
    /// (far from c in units of σ) while they differ by a few nats. With r = x − c, u = z²,
    /// s = (aᵀr − σ²/2)/‖a‖² (see [`Quadratic::modes`]):
    ///
    /// ```text
    /// ‖r − a u‖² − ‖r − a u*‖² = (u − u*) (‖a‖² (u + u*) − 2 aᵀr)
    /// s > 0, z* = ±√s:  log p(x, z) − m = −‖a‖² ((z − √s)(z + √s))² / (2σ²)        (the prior's −(u − s)/2 cancels)
    /// s ≤ 0, z* = 0:    log p(x, z) − m = −(z²/2)(1 − 2aᵀr/σ²) − ‖a‖² z⁴ / (2σ²)
    /// ```
    fn log_joint_over_peak(&self, shape: PeakShape, z: f64) -> f64 {
        let s2 = self.sigma * self.sigma;
        match shape {
            PeakShape::TwoModes { root_s, aa, e0, .. } => two_modes_delta(aa, e0, s2, z - root_s, z + root_s),
            PeakShape::AtZero { curv0, aa } => {
                let u = z * z;
                -0.5 * u * curv0 - aa * u * u / (2.0 * s2)
            }
        }
    }

    /// m = log p(x, z*) at the best mode, in closed form (not log p(x, z) at a rounded √s, whose
    /// square misses s by an ulp of s: at s = 3e17 that is 64, and 2,000 nats in m):
    ///
    /// ```text
    /// s > 0:  m = −s/2 − (‖r⊥‖² + σ⁴/(4‖a‖²))/(2σ²) + C,   r⊥ = r − a aᵀr/‖a‖²  (r − a s = r⊥ + a σ²/(2‖a‖²))
    /// s ≤ 0:  m = −‖r‖²/(2σ²) + C,                       C = −½ ln 2π − (D/2) ln(2πσ²),  r = x − c
    /// ```
    fn log_peak(&self, x: ArrayView1<f64>, shape: PeakShape) -> f64 {
        let ln2pi = crate::base::prob::LN_2PI;
        let s2 = self.sigma * self.sigma;
        let constant = -0.5 * ln2pi - 0.5 * self.a.len() as f64 * (ln2pi + s2.ln());
        let r = &x - &self.c;
        match shape {
            PeakShape::TwoModes { s, aa, .. } => {
                let along = self.a.dot(&r) / aa;
                let perp: f64 = r.iter().zip(&self.a).map(|(ri, ai)| (ri - ai * along).powi(2)).sum();
                -0.5 * s - (perp + s2 * s2 / (4.0 * aa)) / (2.0 * s2) + constant
            }
            PeakShape::AtZero { .. } => -r.dot(&r) / (2.0 * s2) + constant,
        }
    }

    /// The posterior's shape for [`Quadratic::log_joint_over_peak`].
    fn peak_shape(&self, x: ArrayView1<f64>) -> PeakShape {
        let s2 = self.sigma * self.sigma;
        let aa = self.a.dot(&self.a);
        let ax = self.a.dot(&(&x - &self.c));
        let s = if aa > 0.0 { (ax - 0.5 * s2) / aa } else { f64::NEG_INFINITY };
        if s > 0.0 {
            // ax − σ²/2 = t1 + t1_err exactly (Fast2Sum, ax > σ²/2 here); aa·s − t1 and r² − s by
            // fused multiply-adds, so e0 = aa (r² − s) + (aa s − ax + σ²/2) to a few ulps of itself.
            let half = 0.5 * s2;
            let t1 = ax - half;
            let t1_err = (ax - t1) - half;
            let root_s = s.sqrt();
            let e0 = aa * root_s.mul_add(root_s, -s) + aa.mul_add(s, -t1) - t1_err;
            PeakShape::TwoModes { s, root_s, aa, e0 }
        } else {
            PeakShape::AtZero { curv0: (1.0 - 2.0 * ax / s2).max(0.0), aa }
        }
    }

    /// log p(x) with the quadrature's report (value and error estimate of ∫ exp(log p(x,z) − m) dz).
    ///
    /// ```text
    /// log p(x) = m + ln ∫ exp(Δ(z)) dz,   Δ = log p(x, z) − m   (Quadratic::log_joint_over_peak)
    /// ```
    /// Over the bracket and breakpoints of [`Quadratic::breakpoints`] when they resolve the peaks
    /// (every width τ ≥ 1e-9 of the bracket, and the quartic width (σ²/‖a‖²)^¼ ≥ τ/16); otherwise (x far from c in units of σ: the generic
    /// bracket is then huge, or the peaks at ±√s narrower than the spacing of f64 near √s) in the
    /// offset w from the best mode, with a bracket from Δ itself:
    ///
    /// ```text
    /// s > 0:  ∫ exp Δ dz = 2 ∫_{−√s}^{∞} exp(−‖a‖² w² (2√s + w)² / (2σ²)) dw     (symmetry in z)
    ///         Δ ≤ −w²/(8τ²) for w ≥ −√s (τ = σ/(2‖a‖√s)), so |w| ≤ τ √(8·60) keeps all but e⁻⁶⁰
    /// s ≤ 0:  Δ ≤ −z² (1 − 2aᵀr/σ²)/2 and Δ ≤ −‖a‖² z⁴/(2σ²), so |z| ≤ min of √(120/(1 − 2aᵀr/σ²)), (120σ²/‖a‖²)^¼
    /// ```
    ///
    /// # Errors
    /// Invalid x; p(x) below f64's range (log p(x, z) = −∞ at the modes: ‖x − c‖²/σ² overflows).
    pub fn log_marginal_quadrature(&self, x: ArrayView1<f64>) -> Result<(f64, Quadrature)> {
        let (peak, q) = self.integral_over_peak(x)?;
        let log_px = peak + q.value.ln();
        if !log_px.is_finite() {
            return Err(self.underflow(x, log_px));
        }
        Ok((log_px, q))
    }

    /// log p(x) in two parts, log p(x) = m + L, each accurate on its own: m = log p(x, z*) at the
    /// best mode in closed form ([`Quadratic::log_joint_peak`]) and L = ln ∫ exp(log p(x, z) − m) dz
    /// by the quadrature of [`Quadratic::log_marginal_quadrature`]. Far from c in units of σ, m is
    /// about −1e24 and carries an ulp of 1e8 nats, while L (and every difference of log-densities
    /// formed against m) keeps its 1e-10: the bounds of [`crate::lessons::bounds`] are formed
    /// relative to m.
    ///
    /// # Errors
    /// As [`Quadratic::log_marginal_quadrature`].
    pub fn log_marginal_split(&self, x: ArrayView1<f64>) -> Result<(f64, f64)> {
        let (peak, q) = self.integral_over_peak(x)?;
        let l = q.value.ln();
        if !(peak + l).is_finite() {
            return Err(self.underflow(x, peak + l));
        }
        Ok((peak, l))
    }

    /// m = log p(x, z*) at the best posterior mode z*, in closed form (see [`Quadratic::log_marginal_split`]).
    ///
    /// # Errors
    /// Invalid x; m below f64's range (‖x − c‖²/σ² overflows).
    pub fn log_joint_peak(&self, x: ArrayView1<f64>) -> Result<f64> {
        self.check_x(x)?;
        let peak = self.log_peak(x, self.peak_shape(x));
        if !peak.is_finite() {
            return Err(self.underflow(x, peak));
        }
        Ok(peak)
    }

    /// Δ(z) = log p(x, z) − m at z = centre + scale·tᵢ for each tᵢ, formed without forming z where
    /// it matters (m as in [`Quadratic::log_joint_peak`]; r = √s the mode when s > 0):
    ///
    /// ```text
    /// s > 0:  Δ = −(e0 + ‖a‖² (centre − r + scale·t)(centre + r + scale·t))² / (2σ² ‖a‖²)
    ///         (e0 the residue of rounding s and r, see PeakShape::TwoModes: at x = 1e12 it moves the
    ///         mode by 1e-4 of its width; at 3e17, σ = 1 by 32 widths)
    /// s ≤ 0:  Δ = −(z²/2)(1 − 2aᵀ(x − c)/σ²) − ‖a‖² z⁴ / (2σ²),   z = centre + scale·t
    /// ```
    /// With centre = 0, scale = 1 it is Δ at the points t themselves. Near a mode at r = 1e6 with
    /// width 2e-7, `centre − r` is exact (Sterbenz) and scale·t keeps its digits, so a quadrature in
    /// t sees the peak at full resolution.
    ///
    /// # Shapes
    /// `t`: N; returns N.
    pub fn log_joint_over_peak_around(
        &self,
        x: ArrayView1<f64>,
        centre: f64,
        scale: f64,
        t: ArrayView1<f64>,
    ) -> Array1<f64> {
        let shape = self.peak_shape(x);
        let s2 = self.sigma * self.sigma;
        match shape {
            PeakShape::TwoModes { root_s, aa, e0, .. } => t.mapv(|t| {
                two_modes_delta(aa, e0, s2, centre - root_s + scale * t, centre + root_s + scale * t)
            }),
            PeakShape::AtZero { .. } => t.mapv(|t| self.log_joint_over_peak(shape, centre + scale * t)),
        }
    }

    /// L = ln ∫ exp Δ(z) dz (see [`Quadratic::log_marginal_split`]) by the composite Simpson rule on
    /// a uniform grid over a window around the best mode, in the offset w from it, as
    /// [`Quadratic::log_marginal_simpson`] but resolving peaks of any width at any x: a route to L
    /// independent of the adaptive quadrature. Returns (m, L).
    ///
    /// ```text
    /// s > 0:  L = ln 2 + ln ∫_lo^hi exp(−‖a‖² w² (2√s + w)² / (2σ²)) dw       (symmetry in z)
    ///         for w ≥ −√s:  Δ ≤ −w²/(8τ²) (τ = σ/(2‖a‖√s)) and Δ ≤ −‖a‖² w⁴/(2σ²), so
    ///         h = min(τ √480, (120σ²/‖a‖²)^¼): [max(−h, −√s), h] keeps all but e⁻⁶⁰
    /// ```
    /// The integral is over the offset from √s as rounded, the rounding residue e0 of
    /// [`Quadratic::log_joint_over_peak_around`] left out: it moves the peak (by 32 widths at
    /// x = 3e17, σ = 1; by more than its width's ulp at 1e150) but changes the integral only by a
    /// relative e0/(‖a‖² s) ≈ 1e-16.
    /// ```text
    /// s ≤ 0:  L = ln ∫_−h^h exp Δ(z) dz,   h = min(√(120/(1 − 2aᵀ(x − c)/σ²)), (120σ²/‖a‖²)^¼)
    /// ```
    ///
    /// # Errors
    /// Invalid x; `intervals` odd or below 2; p(x) underflowing.
    pub fn log_marginal_simpson_split(&self, x: ArrayView1<f64>, intervals: usize) -> Result<(f64, f64)> {
        let peak = self.log_joint_peak(x)?;
        if intervals < 2 || intervals % 2 == 1 {
            return Err(Error::invalid("intervals", intervals, "must be even and at least 2"));
        }
        let s2 = self.sigma * self.sigma;
        let simpson = |lo: f64, hi: f64, f: &dyn Fn(f64) -> f64| {
            let h = (hi - lo) / intervals as f64;
            let sum: f64 = (0..=intervals)
                .map(|i| {
                    let w = if i == 0 || i == intervals {
                        1.0
                    } else if i % 2 == 1 {
                        4.0
                    } else {
                        2.0
                    };
                    w * f(lo + h * i as f64)
                })
                .sum();
            sum * h / 3.0
        };
        let quartic = |aa: f64| {
            if aa > 0.0 { (2.0 * TAIL_NATS * s2 / aa).sqrt().sqrt() } else { f64::INFINITY }
        };
        let shape = self.peak_shape(x);
        let l = match shape {
            PeakShape::TwoModes { root_s, aa, .. } => {
                let tau = self.sigma / (2.0 * aa.sqrt() * root_s);
                let width = (tau * (8.0 * TAIL_NATS).sqrt()).min(quartic(aa));
                let (lo, hi) = ((-width).max(-root_s), width);
                let f = |w: f64| two_modes_delta(aa, 0.0, s2, w, 2.0 * root_s + w).exp();
                std::f64::consts::LN_2 + simpson(lo, hi, &f).ln()
            }
            PeakShape::AtZero { curv0, aa } => {
                let mut half = quartic(aa);
                if curv0 > 0.0 {
                    half = half.min((2.0 * TAIL_NATS / curv0).sqrt());
                }
                simpson(-half, half, &|z| self.log_joint_over_peak(shape, z).exp()).ln()
            }
        };
        if !(peak + l).is_finite() {
            return Err(self.underflow(x, peak + l));
        }
        Ok((peak, l))
    }

    /// m and the quadrature of ∫ exp(log p(x, z) − m) dz for [`Quadratic::log_marginal_quadrature`].
    fn integral_over_peak(&self, x: ArrayView1<f64>) -> Result<(f64, Quadrature)> {
        self.check_x(x)?;
        let (points, _) = self.breakpoints(x);
        let shape = self.peak_shape(x);
        let peak = self.log_peak(x, shape);
        if !peak.is_finite() {
            return Err(self.underflow(x, peak));
        }
        let z_max =
            points.last().copied().unwrap_or(0.0).abs().max(points.first().copied().unwrap_or(0.0).abs());
        let min_tau = self.modes(x).iter().map(|m| m.1).fold(f64::INFINITY, f64::min);
        // The quartic term's width (σ²/‖a‖²)^¼: a peak narrower than the curvature's τ when ‖a‖/σ
        // is large, which the curvature's breakpoints would step over.
        let aa = self.a.dot(&self.a);
        let quartic = if aa > 0.0 { (self.sigma * self.sigma / aa).sqrt().sqrt() } else { f64::INFINITY };
        let integrand = |t: ArrayView1<f64>| t.mapv(|z| self.log_joint_over_peak(shape, z).exp());
        let q = if points.len() >= 2 && min_tau >= 1e-9 * z_max && quartic >= min_tau / 16.0 {
            integrate(integrand, &points, QUADRATURE_REL_TOL, 0.0)?
        } else {
            let tail = |tau: f64, lo: f64, hi: f64, centre: f64| -> Vec<f64> {
                let mut p = vec![lo, centre, hi];
                for j in [1.0, 2.0, 4.0, 8.0, 16.0] {
                    p.extend([centre - j * tau, centre + j * tau]);
                }
                p.retain(|v| *v >= lo && *v <= hi);
                p.sort_by(f64::total_cmp);
                p.dedup();
                p
            };
            match shape {
                PeakShape::TwoModes { root_s, aa, .. } => {
                    let tau = self.sigma / (2.0 * aa.sqrt() * root_s);
                    let w = tau * (8.0 * TAIL_NATS).sqrt();
                    let s2 = self.sigma * self.sigma;
                    let mut q = integrate(
                        |t: ArrayView1<f64>| {
                            t.mapv(|w| two_modes_delta(aa, 0.0, s2, w, 2.0 * root_s + w).exp())
                        },
                        &tail(tau.min(quartic), (-w).max(-root_s), w, 0.0),
                        QUADRATURE_REL_TOL,
                        0.0,
                    )?;
                    (q.value, q.error) = (2.0 * q.value, 2.0 * q.error);
                    q
                }
                PeakShape::AtZero { curv0, aa } => {
                    let mut half = f64::INFINITY;
                    if curv0 > 0.0 {
                        half = (2.0 * TAIL_NATS / curv0).sqrt();
                    }
                    if aa > 0.0 {
                        half = half.min((2.0 * TAIL_NATS * self.sigma * self.sigma / aa).sqrt().sqrt());
                    }
                    let tau = self.modes(x).first().map_or(half, |m| m.1).min(quartic);
                    integrate(integrand, &tail(tau, -half, half, 0.0), QUADRATURE_REL_TOL, 0.0)?
                }
            }
        };
        Ok((peak, q))
    }

    /// The one error for an x whose p(x) is below f64's range.
    fn underflow(&self, x: ArrayView1<f64>, value: f64) -> Error {
        // Each xᵢ in Rust's shortest round-trip form (`1e300`, not 301 digits).
        let shown = x.iter().map(|v| format!("{v:?}")).collect::<Vec<_>>().join(", ");
        Error::invalid(
            "x",
            format!("[{shown}]"),
            format!("log p(x) = {value}: p(x) is below f64's range at this x"),
        )
    }

    /// log p(x) by the composite Simpson rule on a uniform grid: a route independent of the
    /// adaptive quadrature of [`Quadratic::log_marginal_quadrature`], used to normalise the
    /// posterior when KL(Q ‖ P(z|x)) is computed by its definition.
    ///
    /// ```text
    /// log p(x) = m + ln ∫ exp(log p(x, z) − m) dz,   ∫ over [−z_max, z_max] (see `breakpoints`)
    /// Simpson: ∫ f ≈ h/3 [f₀ + 4f₁ + 2f₂ + … + 4f_{n−1} + f_n],   h = 2 z_max / n,  n = `intervals`
    /// ```
    /// # Errors
    /// Invalid x; `intervals` odd or below 2; p(x) underflowing (as `log_marginal_quadrature`).
    pub fn log_marginal_simpson(&self, x: ArrayView1<f64>, intervals: usize) -> Result<f64> {
        self.check_x(x)?;
        if intervals < 2 || intervals % 2 == 1 {
            return Err(Error::invalid("intervals", intervals, "must be even and at least 2"));
        }
        let (points, peak) = self.breakpoints(x);
        let (lo, hi) = (points[0], points[points.len() - 1]);
        if !peak.is_finite() || hi <= lo {
            return Err(self.underflow(x, peak));
        }
        let h = (hi - lo) / intervals as f64;
        let z = Array2::from_shape_fn((intervals + 1, 1), |(i, _)| lo + h * i as f64);
        let f = self.log_joint(x, z.view()).mapv(|l| (l - peak).exp());
        let weighted: f64 = f
            .iter()
            .enumerate()
            .map(|(i, fi)| match i {
                0 => *fi,
                i if i == intervals => *fi,
                i if i % 2 == 1 => 4.0 * fi,
                _ => 2.0 * fi,
            })
            .sum();
        Ok(peak + (weighted * h / 3.0).ln())
    }

    /// log p(z|x) = log p(x, z) − log p(x) at each row of `z` (N × 1), normalised by quadrature.
    pub fn posterior_log_density(&self, x: ArrayView1<f64>, z: ArrayView2<f64>) -> Result<Array1<f64>> {
        let log_px = self.log_marginal(x)?;
        Ok(self.log_joint(x, z) - log_px)
    }
}

/// Δ = log p(x, z) − m for two modes at ±r, from the factors z − r and z + r:
///
/// ```text
/// g = ‖a‖² z² − aᵀ(x − c) + σ²/2 = e0 + ‖a‖² (z − r)(z + r),   Δ = −g² / (2σ² ‖a‖²)
/// ```
/// (= −‖a‖² (z² − s)²/(2σ²) with s = (aᵀ(x − c) − σ²/2)/‖a‖², and the prior's −(z² − s)/2 cancelled.)
fn two_modes_delta(aa: f64, e0: f64, s2: f64, z_minus_r: f64, z_plus_r: f64) -> f64 {
    let g = aa.mul_add(z_minus_r * z_plus_r, e0);
    -g * g / (2.0 * s2 * aa)
}

impl LatentModel for Quadratic {
    fn latent_dim(&self) -> usize {
        1
    }

    fn data_dim(&self) -> usize {
        self.a.len()
    }

    fn prior(&self) -> Prior {
        Prior::StdNormal { dim: 1 }
    }

    fn sample<R: Rng + ?Sized>(&self, n: usize, rng: &mut R) -> (Array2<f64>, Array2<f64>) {
        let z = Array2::<f64>::from_shape_simple_fn((n, 1), || rng.sample(StandardNormal));
        let noise = Array2::<f64>::from_shape_simple_fn((n, self.data_dim()), || rng.sample(StandardNormal));
        let x = (&z * &z).dot(&self.a.view().insert_axis(Axis(0))) + &self.c + noise * self.sigma; // N × D
        (z, x)
    }

    fn log_prior(&self, z: ArrayView2<f64>) -> Array1<f64> {
        let zeros = Array2::zeros((1, 1));
        diag_gaussian_log_density(z, zeros.view(), zeros.view())
    }

    fn log_likelihood(&self, x: ArrayView1<f64>, z: ArrayView2<f64>) -> Array1<f64> {
        let mean = (&z * &z).dot(&self.a.view().insert_axis(Axis(0))) + &self.c; // N × D: a zₙ² + c
        let log_var = Array2::from_elem((1, self.data_dim()), 2.0 * self.sigma.ln());
        diag_gaussian_log_density(mean.view(), x.insert_axis(Axis(0)), log_var.view())
    }

    fn log_marginal(&self, x: ArrayView1<f64>) -> Result<f64> {
        Ok(self.log_marginal_quadrature(x)?.0)
    }

    /// None: the posterior has no closed form (see [`Quadratic::posterior_log_density`]).
    fn posterior(&self, x: ArrayView1<f64>) -> Result<Option<Posterior>> {
        self.check_x(x)?;
        Ok(None)
    }

    fn check_x(&self, x: ArrayView1<f64>) -> Result<()> {
        check_x_len_finite(x, self.data_dim())
    }
}

impl ContinuousLatent for Quadratic {
    /// ```text
    /// ∂/∂z [log p(z) + log p(x|z)] = −z + 2z aᵀ(x − a z² − c) / σ²
    /// ```
    fn d_log_joint_dz(&self, x: ArrayView1<f64>, z: ArrayView2<f64>) -> Array2<f64> {
        let a_row = self.a.view().insert_axis(Axis(0));
        let resid = -((&z * &z).dot(&a_row) + &self.c) + x; // N × D
        let proj = resid.dot(&self.a).insert_axis(Axis(1)); // N × 1: aᵀ(x − a z² − c)
        &z * &proj * (2.0 / (self.sigma * self.sigma)) - z
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::prob::log_mean_exp_1d;
    use ndarray::array;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn model() -> Quadratic {
        Quadratic::new(array![1.0, 0.5], array![0.0, -0.2], 0.3).unwrap()
    }

    /// Two independent routes to log p(x) agree: a dense composite Simpson rule (200 000 intervals
    /// on [−10, 10], error ≪ 1e-10 for these peak widths) and the adaptive rule at a tighter
    /// tolerance. The stated accuracy is 1e-10 (relative on p(x), so in nats on log p(x)).
    #[test]
    fn quadrature_reaches_its_stated_accuracy() {
        let m = model();
        for x in [array![2.0, 0.8], array![0.1, -0.1], array![-1.0, 0.3], array![9.0, 4.3]] {
            let (lp, q) = m.log_marginal_quadrature(x.view()).unwrap();
            assert!(
                q.error <= QUADRATURE_REL_TOL * q.value,
                "error estimate {} for value {}",
                q.error,
                q.value
            );
            let n = 200_000;
            let h = 20.0 / n as f64;
            let t = Array1::from_shape_fn(n + 1, |i| -10.0 + i as f64 * h);
            let f = m.log_joint(x.view(), t.view().insert_axis(Axis(1)));
            let peak = f.fold(f64::NEG_INFINITY, |a, &b| a.max(b));
            let w = Array1::from_shape_fn(n + 1, |i| {
                if i == 0 || i == n {
                    1.0
                } else if i % 2 == 1 {
                    4.0
                } else {
                    2.0
                }
            });
            let simpson = peak + ((f.mapv(|v| (v - peak).exp()) * w).sum() * h / 3.0).ln();
            assert!((lp - simpson).abs() < 1e-10, "x = {x}: adaptive {lp} vs Simpson {simpson}");
        }
    }

    /// With a = 0 the answer is N(x; c, σ²) in closed form.
    /// On the boundary aᵀ(x − c) = σ²/2 (here a = σ = 1, x = ½) neither the single-mode nor the
    /// two-mode condition held: `modes` was empty and `vaelab bounds --q fit` panicked.
    #[test]
    fn the_boundary_between_one_and_two_modes_has_a_mode() {
        let m = Quadratic::new(array![1.0], array![0.0], 1.0).unwrap();
        let x = array![0.5];
        let modes = m.modes(x.view());
        assert_eq!(modes.len(), 1, "{modes:?}");
        assert_eq!(modes[0].0, 0.0);
        assert!(modes[0].1.is_finite() && modes[0].1 > 0.0, "{modes:?}");
        assert!(m.log_marginal(x.view()).unwrap().is_finite());
    }

    /// a = 1e300: ‖a‖² overflowed, no mode was found and `--q fit` panicked; now refused on load.
    #[test]
    fn loadings_too_large_for_the_quadrature_are_refused() {
        for a in [1e300, 1e100, 1e18] {
            let e = Quadratic::new(array![a], array![0.0], 0.4).unwrap_err().to_string();
            assert!(e.starts_with(&format!("invalid a = a vector with ‖a‖ = {a:e}")), "{e}");
        }
        let e = Quadratic::new(array![1e200, 1e200], array![0.0, 0.0], 1.0).unwrap_err().to_string();
        assert!(e.contains("‖a‖ = 1.414"), "{e}");
        // Up to the bound the quadrature still resolves the narrow peaks: for large a,
        // log p(x) + ½ ln a → ln N(0; 0, 1) + ln ∫₀^∞ N(x − c; v, σ²) v^(−½) dv, the same for every a.
        let limit = |a: f64| {
            let m = Quadratic::new(array![a], array![0.0], 0.4).unwrap();
            m.log_marginal(array![1.0].view()).unwrap() + 0.5 * a.ln()
        };
        let reference = limit(1e8);
        for a in [1e12, 1e16, 3.9e17] {
            assert!((limit(a) - reference).abs() < 1e-6, "a = {a:e}: {} vs {reference}", limit(a));
        }
    }

    /// Far from c in units of σ log p(x, z) is about −1e20 at its peak and the integrand's
    /// difference from the peak was all rounding: a named error. Now finite, and checked against
    /// the Laplace expansion at the modes (an independent route, exact to O(τ²/s) here):
    ///
    /// ```text
    /// s > 0:  log p(x) ≈ m + ln(2 √(2π) τ),   τ = σ/(2‖a‖√s)      (two Gaussian peaks)
    /// s ≤ 0:  log p(x) ≈ m + ln(√(2π) τ),     τ = (1 − 2aᵀ(x − c)/σ²)^(−½)
    /// ```
    /// with m = log p(x, z*) computed in closed form here. The tolerance: 8 ulps of |m| (the
    /// rounding of m itself, ~1e-4 nats at 5e11) plus the next Laplace term.
    #[test]
    fn extreme_x_gives_the_laplace_answer_not_an_error() {
        let ln2pi = crate::base::prob::LN_2PI;
        for (x, sigma) in [(1e8, 1.0), (1e12, 1.0), (1e15, 0.5), (3e17, 1.0), (1e150, 1.0)] {
            let m = Quadratic::new(array![1.0], array![0.0], sigma).unwrap();
            let s2: f64 = sigma * sigma;
            let s = x - 0.5 * s2; // (aᵀr − σ²/2)/‖a‖², a = 1
            // m = −s/2 − (σ⁴/(4‖a‖²))/(2σ²) − ½ ln 2π − ½ ln(2πσ²): the residual at √s is σ²/2.
            let peak = -0.5 * s - s2 / 8.0 - 0.5 * ln2pi - 0.5 * (ln2pi + s2.ln());
            let tau = sigma / (2.0 * s.sqrt());
            let laplace = peak + (2.0 * (2.0 * std::f64::consts::PI).sqrt() * tau).ln();
            let lp = m.log_marginal(array![x].view()).unwrap();
            let tol = 8.0 * f64::EPSILON * peak.abs() + 10.0 * tau * tau / s;
            assert!((lp - laplace).abs() <= tol, "x = {x:e}: {lp} vs Laplace {laplace} (tol {tol:e})");
        }
        // D = 2, a = (1, 1), x off the curve: ‖r⊥‖² = 4.5 enters m.
        let m = Quadratic::new(array![1.0, 1.0], array![0.0, 0.0], 1.0).unwrap();
        let s = (2e12 + 3.0 - 0.5) / 2.0;
        let peak = -0.5 * s - (4.5 + 1.0 / 8.0) / 2.0 - 0.5 * ln2pi - ln2pi;
        let tau = 1.0 / (2.0 * 2f64.sqrt() * s.sqrt());
        let laplace = peak + (2.0 * (2.0 * std::f64::consts::PI).sqrt() * tau).ln();
        let lp = m.log_marginal(array![1e12, 1e12 + 3.0].view()).unwrap();
        assert!((lp - laplace).abs() <= 8.0 * f64::EPSILON * peak.abs() + 1e-9, "{lp} vs Laplace {laplace}");
        // One mode at 0, x far below c: m = −‖x − c‖²/(2σ²) − ln 2π − ln σ.
        for x in [-1e8, -1e12, -1e150] {
            let m = Quadratic::new(array![1.0], array![0.0], 1.0).unwrap();
            let peak = -0.5 * x * x - ln2pi;
            let tau = (1.0 - 2.0 * x).powf(-0.5);
            let laplace = peak + ((2.0 * std::f64::consts::PI).sqrt() * tau).ln();
            let lp = m.log_marginal(array![x].view()).unwrap();
            let tol = 8.0 * f64::EPSILON * peak.abs() + 10.0 * tau.powi(4);
            assert!((lp - laplace).abs() <= tol, "x = {x:e}: {lp} vs Laplace {laplace} (tol {tol:e})");
        }
        // x on the boundary's near side with ‖a‖/σ = 4e6: the peak at 0 is quartic, width
        // (σ²/‖a‖²)^¼ = 5e-4, while the curvature says τ = 1 (a named error before). Independent
        // route: ∫ exp(−z²/2 − k z⁴) dz = 2 Γ(5/4) k^(−¼) (1 + O(k^(−½))),  k = ‖a‖²/(2σ²) = 8e12.
        let m = Quadratic::new(array![-2e5], array![0.0], 0.05).unwrap();
        let k: f64 = 4e10 / (2.0 * 0.0025);
        let gamma_5_4 = 0.906_402_477_055_477; // Γ(5/4), Abramowitz & Stegun 6.1
        let expected = -0.5 * ln2pi - 0.5 * (ln2pi + 0.0025f64.ln()) + (2.0 * gamma_5_4 * k.powf(-0.25)).ln();
        let lp = m.log_marginal(array![0.0].view()).unwrap();
        // The O(k^(−½)) term: −½ E[z²] = −½ Γ(3/4)/Γ(1/4) k^(−½) ≈ −6e-8 relative.
        assert!((lp - expected).abs() < 1e-6, "{lp} vs {expected}");
        // a = 0, c = −1e20: exactly N(0; c, 1), log p = −c²/2 − ½ ln 2π.
        let m = Quadratic::new(array![0.0], array![-1e20], 1.0).unwrap();
        let lp = m.log_marginal(array![0.0].view()).unwrap();
        let exact = -0.5 * 1e40 - 0.5 * ln2pi;
        assert!((lp - exact).abs() <= 8.0 * f64::EPSILON * 5e39, "{lp} vs {exact}");
        // Truly beyond f64: ‖x − c‖²/σ² overflows; one named error.
        let e = Quadratic::new(array![0.0], array![0.0], 1.0)
            .unwrap()
            .log_marginal(array![1e300].view())
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid x = [1e300]: log p(x) = -inf: p(x) is below f64's range at this x"
        );
    }

    /// Where the old route works, the analytic difference agrees with Simpson on log p(x, z) − m
    /// formed directly (an independent route for Δ and for the integral).
    #[test]
    fn the_analytic_difference_agrees_with_simpson_at_moderate_x() {
        let m = model();
        for x in [array![2.0, 0.8], array![0.3, -0.5], array![-3.0, 1.0], array![40.0, 20.0]] {
            let adaptive = m.log_marginal(x.view()).unwrap();
            let simpson = m.log_marginal_simpson(x.view(), 200_000).unwrap();
            assert!((adaptive - simpson).abs() < 1e-9, "{x}: {adaptive} vs {simpson}");
        }
    }

    /// The windowed Simpson route to L = log p(x) − m agrees with the uniform-grid Simpson rule on
    /// log p(x, z) itself (an independent route to Δ and to the window) at moderate x, and with the
    /// Laplace answer where only the window resolves the peaks (x = ±1e12; the tolerance as in
    /// `extreme_x_gives_the_laplace_answer_not_an_error`).
    #[test]
    fn the_windowed_simpson_split_agrees_with_independent_routes() {
        let m = model();
        for x in [array![2.0, 0.8], array![0.3, -0.5], array![-3.0, 1.0], array![40.0, 20.0]] {
            let (peak, l) = m.log_marginal_simpson_split(x.view(), 20_000).unwrap();
            let uniform = m.log_marginal_simpson(x.view(), 200_000).unwrap();
            assert!((peak + l - uniform).abs() < 1e-9, "{x}: {} vs {uniform}", peak + l);
        }
        let ln2pi = crate::base::prob::LN_2PI;
        let q = Quadratic::new(array![1.0], array![0.0], 0.4).unwrap();
        let s = 1e12 - 0.08;
        let tau = 0.4 / (2.0 * f64::sqrt(s));
        let (_, l) = q.log_marginal_simpson_split(array![1e12].view(), 20_000).unwrap();
        let laplace = (2.0 * (2.0 * std::f64::consts::PI).sqrt() * tau).ln();
        assert!((l - laplace).abs() < 1e-9, "{l} vs {laplace}");
        let tau = (1.0 + 2e12 / 0.16f64).powf(-0.5);
        let (peak, l) = q.log_marginal_simpson_split(array![-1e12].view(), 20_000).unwrap();
        assert!((l - (ln2pi.exp().sqrt() * tau).ln()).abs() < 1e-9, "{l}");
        assert!(
            (peak - (-1e24 / 0.32 - 0.5 * ln2pi - 0.5 * (ln2pi + 0.16f64.ln()))).abs()
                <= 8.0 * f64::EPSILON * 3.2e24
        );
    }

    #[test]
    fn quadrature_is_exact_when_x_ignores_z() {
        let m = Quadratic::new(array![0.0, 0.0], array![0.5, -1.0], 0.7).unwrap();
        let x = array![1.0, 0.0];
        let closed: f64 = (0..2)
            .map(|d| {
                -0.5 * (2.0 * std::f64::consts::PI * 0.49f64).ln() - 0.5 * (x[d] - m.c[d]).powi(2) / 0.49
            })
            .sum();
        assert!((m.log_marginal(x.view()).unwrap() - closed).abs() < 1e-10);
    }

    /// log p(x) = log E_{p(z)} p(x|z) by Monte Carlo (N = 200 000, delta-method SE, 4 SE).
    #[test]
    fn marginal_matches_monte_carlo_over_the_prior() {
        let m = model();
        let x = array![1.5, 0.6];
        let (z, _) = m.sample(200_000, &mut StdRng::seed_from_u64(41));
        let log_lik = m.log_likelihood(x.view(), z.view());
        let mc = log_mean_exp_1d(log_lik.view());
        let w = log_lik.mapv(|l| (l - mc).exp());
        let se = w.std(1.0) / (w.len() as f64).sqrt();
        let exact = m.log_marginal(x.view()).unwrap();
        assert!((mc - exact).abs() < 4.0 * se, "exact {exact}, MC {mc} ± {se}");
    }

    #[test]
    fn simpson_and_adaptive_quadrature_agree_on_log_px() {
        // Two routes to one integral; Simpson's error is O(h⁴) (h ≈ 2·z_max/10⁵ here).
        let m = model();
        for x in [array![2.0, 0.8], array![0.3, -0.5], array![1.5, 1.5]] {
            let adaptive = m.log_marginal(x.view()).unwrap();
            let simpson = m.log_marginal_simpson(x.view(), 100_000).unwrap();
            assert!((adaptive - simpson).abs() < 1e-9, "{x}: {adaptive} vs {simpson}");
        }
        assert!(m.log_marginal_simpson(array![2.0, 0.8].view(), 7).is_err());
        assert!(m.log_marginal_simpson(array![2.0, 0.8].view(), 0).is_err());
    }

    #[test]
    fn posterior_is_bimodal_and_d_log_joint_is_right() {
        let m = model();
        let x = array![2.0, 0.8];
        let modes = m.modes(x.view());
        assert_eq!(modes.len(), 2, "{modes:?}");
        let z = Array2::from_shape_fn((3, 1), |(i, _)| [modes[0].0, 0.0, modes[1].0][i]);
        let lp = m.posterior_log_density(x.view(), z.view()).unwrap();
        assert!((lp[0] - lp[2]).abs() < 1e-12 && lp[0] > lp[1] + 5.0, "{lp}");
        // Central differences (h = ε^(1/3)); ∂/∂z log p(x,z) = −z + 2z aᵀ(x − a z² − c)/σ², rel. 1e-7.
        let h = f64::EPSILON.cbrt();
        let zs = array![[0.3], [-1.2], [2.0]];
        let g = m.d_log_joint_dz(x.view(), zs.view());
        let fd =
            (m.log_joint(x.view(), (&zs + h).view()) - m.log_joint(x.view(), (&zs - h).view())) / (2.0 * h);
        for i in 0..3 {
            assert!((g[[i, 0]] - fd[i]).abs() < 1e-7 * fd[i].abs().max(1.0), "{} vs {}", g[[i, 0]], fd[i]);
        }
    }
}
