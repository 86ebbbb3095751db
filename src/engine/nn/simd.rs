//! `f32` fast paths of the hot element-wise kernels, written so LLVM vectorises them (16
//! independent lanes, branch-free bodies, no libm calls) and compiled two or three times: plain
//! (SSE2, any x86-64), with AVX2 and (the Bernoulli loss, which pays for it in the evaluation)
//! with AVX-512, the widest the CPU has chosen at run time. All builds do the same arithmetic in the same order
//! (no fused multiply-add: Rust never contracts `a * b + c`), so the results do not depend on the
//! machine's vector width (tested bit for bit).
//!
//! The generic kernels in [`super::loss`], [`super::optim`] and [`super::params`] call these when
//! `F` is `f32` and the data is contiguous; `f64` (the gradient checks) keeps the libm path.

/// Lanes of the partial sums: wide enough for AVX-512, and a fixed summation order.
const LANES: usize = 16;

/// e^x for x ≤ 0 (x < −87 is treated as −87: e^−87 ≈ 1.6e−38), relative error ≲ 2 ulp.
///
/// ```text
/// e^x = 2ⁿ · e^r,   n = round(x / ln 2),   r = x − n ln 2 ∈ [−½ ln 2, ½ ln 2]
/// e^r ≈ 1 + r + r² P(r)      (Cephes `expf`, degree-5 P; Moshier 1989)
/// ```
#[inline(always)]
fn exp_nonpositive(x: f32) -> f32 {
    let x = x.max(-87.0);
    let n = (x * std::f32::consts::LOG2_E - 0.5).ceil(); // round half up of x/ln2 for x ≤ 0
    let r = x - n * 0.693_359_4 - n * -2.121_944_4e-4; // ln 2 split in two for an exact r
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_2e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5; // Cephes' 5.0000001201e−1 rounds to ½ in f32
    let e = p * r * r + r + 1.0;
    e * pow2_integer(n)
}

/// 2ⁿ for an integer-valued n ∈ [−126, 127] (as [`exp_nonpositive`] makes it), from the bits of
/// n + 2²³ + 127: an integer below 2²⁴, exact in `f32`, whose 23 mantissa bits hold n + 127, the
/// biased exponent of 2ⁿ. The same bits as `((n as i32 + 127) as u32) << 23`, without the
/// saturating float-to-int cast that LLVM leaves scalar (one lane at a time) in the vector loops.
#[inline(always)]
fn pow2_integer(n: f32) -> f32 {
    f32::from_bits(((n + 8_388_735.0).to_bits() & 0x007f_ffff) << 23)
}

/// log(1 + t) for t ∈ [0, 1], relative error ≲ 1.5e−8 plus rounding.
///
/// ```text
/// log(1 + t) = 2 atanh s = 2 (s + s³/3 + s⁵/5 + …),   s = t / (2 + t) ∈ [0, ⅓]
/// ```
/// truncated after s¹⁵/15: the tail is below s¹⁷/17 · 9/8 ≤ 1.4e−8 of the sum. No cancellation
/// for small t (s is computed directly from t).
#[inline(always)]
fn log1p_unit(t: f32) -> f32 {
    let s = t / (2.0 + t);
    let s2 = s * s;
    let mut p = 1.0 / 15.0_f32;
    p = p * s2 + 1.0 / 13.0;
    p = p * s2 + 1.0 / 11.0;
    p = p * s2 + 1.0 / 9.0;
    p = p * s2 + 1.0 / 7.0;
    p = p * s2 + 1.0 / 5.0;
    p = p * s2 + 1.0 / 3.0;
    p = p * s2 + 1.0;
    2.0 * s * p
}

/// One element of the fused Bernoulli kernel: (nll, σ(l) − x).
#[inline(always)]
fn bernoulli_elem(l: f32, x: f32) -> (f32, f32) {
    let t = exp_nonpositive(-l.abs());
    let inv = 1.0 / (1.0 + t);
    let sig = if l >= 0.0 { inv } else { t * inv };
    (l.max(0.0) - x * l + log1p_unit(t), sig - x)
}

/// Terms per call of [`bernoulli_nll_block`]: four chunks of 16 lanes.
const STAGE: usize = 64;

/// The loss terms of [`bernoulli_elem`] for [`STAGE`] elements, one step of the formula at a time
/// over all of them: the same operations on each element in the same order (so the same bits as
/// [`bernoulli_elem`], tested), laid out so that the CPU has eight independent vectors in flight
/// at every step. Element by element, each term is a chain of ≈ 45 dependent operations (the two
/// polynomials, a division), whose latency, not the arithmetic, bounded the loop.
///
/// `t` ← e^(−|l|), for the gradient ([`bernoulli_grad_block`]).
///
/// # Shapes
/// `l`, `x`, `nll`, `t`: [`STAGE`].
#[inline(always)]
fn bernoulli_nll_block(l: &[f32; STAGE], x: &[f32; STAGE], nll: &mut [f32; STAGE], t: &mut [f32; STAGE]) {
    // e^(−|l|) as exp_nonpositive: n, then r (in `r`), then the polynomial (in `p`).
    let (mut n, mut r) = ([0.0f32; STAGE], [0.0f32; STAGE]);
    for i in 0..STAGE {
        let a = (-l[i].abs()).max(-87.0);
        n[i] = (a * std::f32::consts::LOG2_E - 0.5).ceil();
        r[i] = a - n[i] * 0.693_359_4 - n[i] * -2.121_944_4e-4;
    }
    let mut p = [1.987_569_1e-4_f32; STAGE];
    for c in [1.398_2e-3, 8.333_452e-3, 4.166_579_6e-2, 1.666_666_5e-1, 0.5] {
        for i in 0..STAGE {
            p[i] = p[i] * r[i] + c;
        }
    }
    for i in 0..STAGE {
        t[i] = (p[i] * r[i] * r[i] + r[i] + 1.0) * pow2_integer(n[i]);
    }
    // log1p(t) as log1p_unit: s (in `r`), s² (in `n`), the polynomial (in `p`).
    for i in 0..STAGE {
        r[i] = t[i] / (2.0 + t[i]);
        n[i] = r[i] * r[i];
    }
    let mut p = [1.0 / 15.0_f32; STAGE];
    for c in [1.0 / 13.0, 1.0 / 11.0, 1.0 / 9.0, 1.0 / 7.0, 1.0 / 5.0, 1.0 / 3.0, 1.0_f32] {
        for i in 0..STAGE {
            p[i] = p[i] * n[i] + c;
        }
    }
    for i in 0..STAGE {
        nll[i] = l[i].max(0.0) - x[i] * l[i] + 2.0 * r[i] * p[i];
    }
}

/// `d ← scale · (σ(l) − x)` of [`bernoulli_elem`] for [`STAGE`] elements, from their
/// t = e^(−|l|) ([`bernoulli_nll_block`]): the same operations, so the same bits.
///
/// # Shapes
/// `l`, `t`, `x`, `d`: [`STAGE`].
#[inline(always)]
fn bernoulli_grad_block(l: &[f32; STAGE], t: &[f32; STAGE], x: &[f32; STAGE], scale: f32, d: &mut [f32]) {
    for i in 0..STAGE {
        let inv = 1.0 / (1.0 + t[i]);
        let sig = if l[i] >= 0.0 { inv } else { t[i] * inv };
        d[i] = scale * (sig - x[i]);
    }
}

#[inline(always)]
fn bernoulli_row_body(l: &[f32], x: &[f32], scale: f32, d: Option<&mut [f32]>) -> f64 {
    match d {
        Some(d) => bernoulli_row_terms::<true>(l, x, scale, d),
        None => bernoulli_row_terms::<false>(l, x, scale, &mut []),
    }
}

/// The row's loss, and with `GRAD` its gradient into `d` (unused without): blocks of
/// [`STAGE`] terms, each block's four chunks added to the 16 lanes in order, then the remaining
/// whole chunks and the last terms one lane each, in the same order.
///
/// # Shapes
/// `l`, `x`: n; `d`: n with `GRAD`, anything without.
#[inline(always)]
fn bernoulli_row_terms<const GRAD: bool>(l: &[f32], x: &[f32], scale: f32, d: &mut [f32]) -> f64 {
    let mut acc = [0.0f32; LANES];
    let n = l.len();
    let (staged, full) = (n / STAGE * STAGE, n / LANES * LANES);
    for (k, (lb, xb)) in l[..staged].chunks_exact(STAGE).zip(x[..staged].chunks_exact(STAGE)).enumerate() {
        let (lb, xb) = (lb.try_into().expect("a block"), xb.try_into().expect("a block"));
        let (mut nll, mut t) = ([0.0f32; STAGE], [0.0f32; STAGE]);
        bernoulli_nll_block(lb, xb, &mut nll, &mut t);
        if GRAD {
            bernoulli_grad_block(lb, &t, xb, scale, &mut d[k * STAGE..(k + 1) * STAGE]);
        }
        for chunk in nll.chunks_exact(LANES) {
            for j in 0..LANES {
                acc[j] += chunk[j];
            }
        }
    }
    for (c, (lc, xc)) in
        l[staged..full].chunks_exact(LANES).zip(x[staged..full].chunks_exact(LANES)).enumerate()
    {
        for j in 0..LANES {
            let (nll, g) = bernoulli_elem(lc[j], xc[j]);
            acc[j] += nll;
            if GRAD {
                d[staged + c * LANES + j] = scale * g;
            }
        }
    }
    for i in full..n {
        let (nll, g) = bernoulli_elem(l[i], x[i]);
        acc[i - full] += nll;
        if GRAD {
            d[i] = scale * g;
        }
    }
    acc.iter().map(|&a| f64::from(a)).sum()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn bernoulli_row_avx2(l: &[f32], x: &[f32], scale: f32, d: Option<&mut [f32]>) -> f64 {
    bernoulli_row_body(l, x, scale, d)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn bernoulli_row_avx512(l: &[f32], x: &[f32], scale: f32, d: Option<&mut [f32]>) -> f64 {
    bernoulli_row_body(l, x, scale, d)
}

/// The widest vectors a kernel of this file is compiled for that the CPU has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // only Plain off x86-64
pub(crate) enum Width {
    /// The plain build (SSE2 on x86-64; any other target).
    Plain,
    /// 256-bit AVX2.
    Avx2,
    /// 512-bit AVX-512 Foundation.
    Avx512,
}

/// This CPU's [`Width`], detected once (`Avx512` only with AVX2 too: its callers may run an AVX2
/// build).
pub(crate) fn cpu_width() -> Width {
    #[cfg(target_arch = "x86_64")]
    {
        static WIDTH: std::sync::OnceLock<Width> = std::sync::OnceLock::new();
        *WIDTH.get_or_init(|| {
            if std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx2") {
                Width::Avx512
            } else if std::arch::is_x86_feature_detected!("avx2") {
                Width::Avx2
            } else {
                Width::Plain
            }
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        Width::Plain
    }
}

/// Σ_d [max(l, 0) − x l + log1p(e^(−|l|))] over one row, and `d ← scale·(σ(l) − x)` if given:
/// the `f32` body of [`super::bernoulli_nll_grad_into`]. The sum runs in 16 lanes of `f32`, then
/// in `f64`.
///
/// # Shapes
/// `l`, `x`, `d`: `D`.
pub(crate) fn bernoulli_row(l: &[f32], x: &[f32], scale: f32, d: Option<&mut [f32]>) -> f64 {
    bernoulli_row_at(cpu_width(), l, x, scale, d)
}

/// [`bernoulli_row`] built for `width` (at most the CPU's [`cpu_width`]).
///
/// # Shapes
/// `l`, `x`, `d`: `D`.
fn bernoulli_row_at(width: Width, l: &[f32], x: &[f32], scale: f32, d: Option<&mut [f32]>) -> f64 {
    assert!(l.len() == x.len() && d.as_ref().is_none_or(|d| d.len() == l.len()), "bernoulli row lengths");
    assert!(width <= cpu_width(), "bernoulli row: {width:?} on a CPU with {:?}", cpu_width());
    match width {
        // SAFETY: the CPU has AVX-512F (cpu_width() checked it).
        #[cfg(target_arch = "x86_64")]
        Width::Avx512 => unsafe { bernoulli_row_avx512(l, x, scale, d) },
        // SAFETY: the CPU has AVX2 (cpu_width() checked it).
        #[cfg(target_arch = "x86_64")]
        Width::Avx2 => unsafe { bernoulli_row_avx2(l, x, scale, d) },
        Width::Plain => bernoulli_row_body(l, x, scale, d),
        #[cfg(not(target_arch = "x86_64"))]
        _ => bernoulli_row_body(l, x, scale, d),
    }
}

/// Whether every value is finite, in 16 lanes (`v − v` is 0 for finite v, NaN otherwise).
#[allow(clippy::eq_op)]
pub(crate) fn all_finite(values: &[f32]) -> bool {
    let mut acc = [0.0f32; LANES];
    let chunks = values.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for j in 0..LANES {
            acc[j] += c[j] - c[j];
        }
    }
    for (j, &v) in rest.iter().enumerate() {
        acc[j] += v - v;
    }
    acc.iter().all(|a| *a == 0.0)
}

/// Whether every value lies in [0, 1] (so is finite: a NaN fails both comparisons), in 16 lanes.
#[allow(clippy::manual_range_contains)] // `&`, not `contains`'s `&&`: one branch-free select per lane
pub(crate) fn all_in_unit_interval(values: &[f32]) -> bool {
    let outside = |v: f32| u32::from(!((v >= 0.0) & (v <= 1.0)));
    let mut acc = [0u32; LANES];
    let chunks = values.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for j in 0..LANES {
            acc[j] |= outside(c[j]);
        }
    }
    rest.iter().all(|&v| outside(v) == 0) && acc.iter().all(|&a| a == 0)
}

/// Constants of one Adam step (see [`super::Adam`]).
#[derive(Clone, Copy)]
pub(crate) struct AdamStep {
    pub b1: f32,
    pub b2: f32,
    pub one_b1: f32,
    pub one_b2: f32,
    pub step_size: f32,
    pub inv_sqrt_bc2: f32,
    pub eps: f32,
}

/// x, or 0 when |x| is below the smallest normal `f32` (see `optim::flush_subnormal`).
#[inline(always)]
fn flush_subnormal(x: f32) -> f32 {
    if x.abs() < f32::MIN_POSITIVE { 0.0 } else { x }
}

/// One element of Adam's update (the generic loop's operations in its order).
#[inline(always)]
#[allow(clippy::eq_op)]
fn adam_one(c: AdamStep, p: &mut f32, g: &mut f32, m: &mut f32, v: &mut f32) -> f32 {
    let gi = *g;
    let mi = flush_subnormal(c.b1 * *m + c.one_b1 * gi);
    let vi = flush_subnormal(c.b2 * *v + c.one_b2 * gi * gi);
    *m = mi;
    *v = vi;
    *p -= c.step_size * mi / (vi.sqrt() * c.inv_sqrt_bc2 + c.eps);
    *g = 0.0;
    // 0 when the new θ, m and v are finite, NaN otherwise (x − x is NaN for x = ±∞ or NaN).
    (*p - *p) + (mi - mi) + (vi - vi)
}

#[inline(always)]
fn adam_body(c: AdamStep, p: &mut [f32], g: &mut [f32], m: &mut [f32], v: &mut [f32]) -> bool {
    let n = p.len();
    let (g, m, v) = (&mut g[..n], &mut m[..n], &mut v[..n]);
    // The finiteness of what was written, in 16 lanes as in all_finite (no extra pass).
    let mut acc = [0.0f32; LANES];
    // Elements one by one up to θ's first 32-byte boundary, so the vector loop's loads and stores
    // of θ (and of g, m and v, which the allocator leaves at the same offset from a line) do not
    // straddle cache lines. Each element's update is the same wherever it runs.
    const VECTOR_BYTES: usize = 32;
    let head = ((VECTOR_BYTES - p.as_ptr() as usize % VECTOR_BYTES) % VECTOR_BYTES / size_of::<f32>()).min(n);
    for i in 0..head {
        acc[i] += adam_one(c, &mut p[i], &mut g[i], &mut m[i], &mut v[i]);
    }
    let whole = head + (n - head) / LANES * LANES;
    for i in (head..whole).step_by(LANES) {
        let (p, g, m, v) =
            (&mut p[i..i + LANES], &mut g[i..i + LANES], &mut m[i..i + LANES], &mut v[i..i + LANES]);
        for j in 0..LANES {
            acc[j] += adam_one(c, &mut p[j], &mut g[j], &mut m[j], &mut v[j]);
        }
    }
    for i in whole..n {
        acc[i - whole] += adam_one(c, &mut p[i], &mut g[i], &mut m[i], &mut v[i]);
    }
    acc.iter().all(|a| *a == 0.0)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn adam_avx2(c: AdamStep, p: &mut [f32], g: &mut [f32], m: &mut [f32], v: &mut [f32]) -> bool {
    adam_body(c, p, g, m, v)
}

/// The `f32` body of Adam's fused update over one tensor (same operations, same order as the
/// generic loop in [`super::Optimizer::step`]), and g ← 0. Returns whether every updated θ, m
/// and v is finite (checked on the values as they are written).
pub(crate) fn adam(c: AdamStep, p: &mut [f32], g: &mut [f32], m: &mut [f32], v: &mut [f32]) -> bool {
    adam_at(cpu_width(), c, p, g, m, v)
}

/// [`adam`] built for `width` (at most the CPU's [`cpu_width`]; Adam's AVX2 build serves both).
///
/// # Shapes
/// `p`, `g`, `m`, `v`: the same length.
fn adam_at(width: Width, c: AdamStep, p: &mut [f32], g: &mut [f32], m: &mut [f32], v: &mut [f32]) -> bool {
    assert!(p.len() == g.len() && p.len() == m.len() && p.len() == v.len(), "adam lengths");
    assert!(width <= cpu_width(), "adam: {width:?} on a CPU with {:?}", cpu_width());
    match width {
        // SAFETY: the CPU has AVX2 (cpu_width() checked it for both). Adam reads and writes 10 MB
        // a step: 512-bit registers were not faster (docs/performance.md).
        #[cfg(target_arch = "x86_64")]
        Width::Avx2 | Width::Avx512 => unsafe { adam_avx2(c, p, g, m, v) },
        Width::Plain => adam_body(c, p, g, m, v),
        #[cfg(not(target_arch = "x86_64"))]
        _ => adam_body(c, p, g, m, v),
    }
}

/// `s` as `&[f32]` when `F` is `f32`.
#[inline]
pub(crate) fn as_f32<F: 'static>(s: &[F]) -> Option<&[f32]> {
    (std::any::TypeId::of::<F>() == std::any::TypeId::of::<f32>())
        // SAFETY: F is f32 (same type), so the slice is reinterpreted as itself.
        .then(|| unsafe { std::slice::from_raw_parts(s.as_ptr().cast::<f32>(), s.len()) })
}

/// `s` as `&mut [f32]` when `F` is `f32`.
#[inline]
pub(crate) fn as_f32_mut<F: 'static>(s: &mut [F]) -> Option<&mut [f32]> {
    (std::any::TypeId::of::<F>() == std::any::TypeId::of::<f32>())
        // SAFETY: F is f32 (same type), so the slice is reinterpreted as itself.
        .then(|| unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr().cast::<f32>(), s.len()) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    #[test]
    fn exp_and_log1p_match_libm_to_a_few_ulp() {
        // Every 997th f32 in [−87, 0] for exp and [0, 1] for log1p, against libm in f64.
        let mut worst = (0.0f64, 0.0f64);
        for i in 0..=87_000_000u32 / 997 {
            let x = -(i as f32) * 997e-6;
            let exact = f64::from(x).exp();
            worst.0 = worst.0.max(((f64::from(exp_nonpositive(x)) - exact) / exact).abs());
            let t = (i as f32) * 997.0 / 87_000_000.0;
            let exact = f64::from(t).ln_1p();
            if t > 0.0 {
                worst.1 = worst.1.max(((f64::from(log1p_unit(t)) - exact) / exact).abs());
            }
        }
        // f32 has ε = 2^−24 ≈ 6e−8 relative spacing; allow 4 ulp (rounding of the steps above).
        assert!(worst.0 < 4.0 * 6e-8 && worst.1 < 4.0 * 6e-8, "worst relative errors {worst:?}");
        assert_eq!(exp_nonpositive(0.0), 1.0);
        assert_eq!(log1p_unit(0.0), 0.0);
    }

    /// The exponent's bits as [`exp_nonpositive`] built them before [`pow2_integer`].
    fn pow2_by_cast(n: f32) -> f32 {
        f32::from_bits(((n as i32 + 127) as u32) << 23)
    }

    #[test]
    fn pow2_from_the_mantissa_is_bit_identical_to_the_cast() {
        // Every n the exponential can make (x ∈ [−87, 0] gives n ∈ [−126, 0]), and up to 127.
        for n in -126..=127 {
            let n = n as f32;
            assert_eq!(pow2_integer(n).to_bits(), pow2_by_cast(n).to_bits(), "n = {n}");
            assert_eq!(f64::from(pow2_integer(n)), 2f64.powi(n as i32), "n = {n}");
        }
        assert_eq!(pow2_integer(-0.0).to_bits(), pow2_by_cast(-0.0).to_bits());
        // And the whole exponential against the cast version on every 61st f32 in [−88, 0]
        // (−88 and below clamp to −87), bit for bit.
        let reference = |x: f32| {
            let x = x.max(-87.0);
            let n = (x * std::f32::consts::LOG2_E - 0.5).ceil();
            let r = x - n * 0.693_359_4 - n * -2.121_944_4e-4;
            let mut p = 1.987_569_1e-4_f32;
            for c in [1.398_2e-3, 8.333_452e-3, 4.166_579_6e-2, 1.666_666_5e-1, 0.5] {
                p = p * r + c;
            }
            (p * r * r + r + 1.0) * pow2_by_cast(n)
        };
        let (lo, hi) = ((-88.0f32).to_bits(), (-0.0f32).to_bits()); // negative: bits fall toward 0
        for bits in (hi..=lo).step_by(61).chain([lo, hi, 0]) {
            let x = f32::from_bits(bits);
            assert_eq!(exp_nonpositive(x).to_bits(), reference(x).to_bits(), "x = {x:e}");
        }
    }

    /// The staged blocks give each term's bits (and its gradient's) as the element-by-element
    /// formula, over every 4099th f32 from −200 to 200 (both signs, both targets), the clamp at
    /// −87 and its neighbours, zeros of both signs, subnormals, huge logits and infinities (NaN
    /// stays NaN).
    #[test]
    fn the_staged_loss_terms_are_the_elementwise_bits() {
        let (lo, hi) = ((-200.0f32).to_bits(), 200.0f32.to_bits());
        let sweep = (0..=hi).step_by(4099).chain((1u32 << 31..=lo).step_by(4099)).map(f32::from_bits);
        let special = [0.0, -0.0, 1e-45, -1e-45, 87.0, -87.0, 87.000_01, -87.000_01, 88.0, 1e30, -1e30];
        let special = special.into_iter().chain([f32::INFINITY, f32::NEG_INFINITY, f32::NAN]);
        let logits: Vec<f32> = sweep.chain(special).collect();
        for target in [0.0f32, 1.0] {
            for block in logits.chunks(STAGE) {
                let mut l = [0.0f32; STAGE];
                l[..block.len()].copy_from_slice(block);
                let x = [target; STAGE];
                let (mut nll, mut t, mut d) = ([f32::NAN; STAGE], [f32::NAN; STAGE], [f32::NAN; STAGE]);
                bernoulli_nll_block(&l, &x, &mut nll, &mut t);
                bernoulli_grad_block(&l, &t, &x, 0.25, &mut d);
                let same = |a: f32, b: f32| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
                for (i, &v) in l.iter().enumerate() {
                    let (e, g) = bernoulli_elem(v, target);
                    assert!(same(e, nll[i]), "l = {v:e}, x = {target}: {} against {e}", nll[i]);
                    assert!(same(0.25 * g, d[i]), "l = {v:e}, x = {target}: ∂ {} against {}", d[i], 0.25 * g);
                }
            }
        }
    }

    /// Every [`Width`] up to this CPU's.
    fn widths() -> Vec<Width> {
        [Width::Plain, Width::Avx2, Width::Avx512].into_iter().filter(|w| *w <= cpu_width()).collect()
    }

    #[test]
    fn the_detected_width_is_the_cpus() {
        #[cfg(target_arch = "x86_64")]
        {
            let (avx2, avx512) =
                (std::arch::is_x86_feature_detected!("avx2"), std::arch::is_x86_feature_detected!("avx512f"));
            let expected = match (avx2, avx512) {
                (true, true) => Width::Avx512,
                (true, false) => Width::Avx2,
                _ => Width::Plain,
            };
            assert_eq!(cpu_width(), expected, "avx2 {avx2}, avx512f {avx512}");
        }
        #[cfg(not(target_arch = "x86_64"))]
        assert_eq!(cpu_width(), Width::Plain);
    }

    #[test]
    fn every_vector_width_gives_the_same_bits() {
        // Rows of 1..=70 and 784 entries (the lane tail and the digits' width), logits from −100
        // to 100 (e^−|l| clamped at −87, σ(l) rounding to 0 and 1) and 0/1 targets, with and
        // without a gradient.
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for n in (1..=70).chain([784]) {
            let l: Vec<f32> = (0..n).map(|_| rng.random_range(-100.0..100.0f32)).collect();
            let x: Vec<f32> = (0..n).map(|_| f32::from(u8::from(rng.random_bool(0.3)))).collect();
            let mut runs = widths().into_iter().map(|w| {
                let mut d = vec![0.0f32; n];
                let with = bernoulli_row_at(w, &l, &x, 0.5, Some(&mut d));
                (w, with.to_bits(), bernoulli_row_at(w, &l, &x, 0.5, None).to_bits(), d)
            });
            let (_, with, without, d) = runs.next().unwrap();
            assert_eq!(with, without, "n = {n}: the sum with and without the gradient");
            for (w, w_with, w_without, w_d) in runs {
                assert_eq!((w_with, w_without), (with, without), "n = {n}: {w:?} sum");
                assert!(
                    w_d.iter().zip(&d).all(|(a, b)| a.to_bits() == b.to_bits()),
                    "n = {n}: {w:?} gradient"
                );
            }
        }
        // Adam: 1,000 parameters (a tail of 8 lanes), 50 steps with random gradients (its AVX2
        // build serves Avx512 too, so that width repeats the AVX2 run).
        let c = adam_step_for_tests();
        let grads: Vec<Vec<f32>> =
            (0..50).map(|_| (0..1000).map(|_| rng.random_range(-1.0..1.0f32)).collect()).collect();
        let run = |w: Width| {
            let (mut p, mut m, mut v) = (vec![0.1f32; 1000], vec![0.0f32; 1000], vec![0.0f32; 1000]);
            for g in &grads {
                assert!(adam_at(w, c, &mut p, &mut g.clone(), &mut m, &mut v));
            }
            [p, m, v].concat().iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        };
        let plain = run(Width::Plain);
        for w in widths() {
            assert_eq!(run(w), plain, "Adam at {w:?}");
        }
        eprintln!("widths compared: {:?}", widths());
    }

    /// Adam's constants for the tests below: PyTorch's β₁, β₂ and ϵ, a step size of 10⁻³ and a
    /// bias-correction factor of 1.3 (not 1, so its product is exercised).
    fn adam_step_for_tests() -> AdamStep {
        AdamStep {
            b1: 0.9,
            b2: 0.999,
            one_b1: 0.1,
            one_b2: 0.001,
            step_size: 1e-3,
            inv_sqrt_bc2: 1.3,
            eps: 1e-8,
        }
    }

    /// Adam's vector loop starts at θ's first 32-byte boundary, after up to 7 elements one by one:
    /// at every start offset in a line and every length around the head and the 16-lane chunks,
    /// each element gets the bits of the one-element update, and an infinite gradient in the
    /// head, the chunks or the tail is reported.
    #[test]
    fn adam_gives_each_elements_bits_at_every_alignment_and_reports_a_bad_one_anywhere() {
        let c = adam_step_for_tests();
        let mut rng = StdRng::seed_from_u64(23);
        let total = 80;
        let fresh =
            |rng: &mut StdRng| -> Vec<f32> { (0..total).map(|_| rng.random_range(-1.0..1.0f32)).collect() };
        let (p0, g0, m0) = (fresh(&mut rng), fresh(&mut rng), fresh(&mut rng));
        let v0: Vec<f32> = fresh(&mut rng).iter().map(|x| x * x).collect();
        for w in widths() {
            for offset in 0..8 {
                for n in [0, 1, 3, 7, 8, 9, 16, 23, 24, 40, 72] {
                    let r = offset..offset + n;
                    let (mut p, mut g, mut m, mut v) = (p0.clone(), g0.clone(), m0.clone(), v0.clone());
                    assert!(adam_at(
                        w,
                        c,
                        &mut p[r.clone()],
                        &mut g[r.clone()],
                        &mut m[r.clone()],
                        &mut v[r.clone()]
                    ));
                    let (mut pe, mut ge, mut me, mut ve) = (p0.clone(), g0.clone(), m0.clone(), v0.clone());
                    for i in r.clone() {
                        adam_one(c, &mut pe[i], &mut ge[i], &mut me[i], &mut ve[i]);
                    }
                    let bits = |x: &[f32]| x.iter().map(|y| y.to_bits()).collect::<Vec<_>>();
                    for (got, want) in [(&p, &pe), (&g, &ge), (&m, &me), (&v, &ve)] {
                        assert_eq!(bits(got), bits(want), "{w:?}, offset {offset}, n = {n}");
                    }
                    for bad in [0, n / 2, n.saturating_sub(1)].into_iter().filter(|_| n > 0) {
                        let (mut p, mut g, mut m, mut v) = (p0.clone(), g0.clone(), m0.clone(), v0.clone());
                        g[offset + bad] = f32::INFINITY;
                        let finite = adam_at(
                            w,
                            c,
                            &mut p[r.clone()],
                            &mut g[r.clone()],
                            &mut m[r.clone()],
                            &mut v[r.clone()],
                        );
                        assert!(!finite, "{w:?}, offset {offset}, n = {n}, ∞ at {bad}");
                    }
                }
            }
        }
    }

    #[test]
    fn unit_interval_check_finds_every_value_outside_anywhere() {
        let mut v: Vec<f32> = (0..37).map(|i| (i % 3) as f32 / 2.0).collect();
        v[5] = -0.0;
        assert!(all_in_unit_interval(&v) && all_in_unit_interval(&[]));
        let outside = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -1e-45, 1.000_000_1, 2.0, -0.5];
        // Positions in the first 16-lane chunk, the second, and the 5 left over.
        for i in [0, 15, 16, 31, 32, 36] {
            for bad in outside {
                let keep = v[i];
                v[i] = bad;
                assert!(!all_in_unit_interval(&v), "{bad} at {i}");
                v[i] = keep;
            }
        }
    }

    #[test]
    fn finite_check_finds_nan_and_infinity_anywhere() {
        let mut v = vec![1.5f32; 37];
        assert!(all_finite(&v));
        for (i, bad) in [(0, f32::NAN), (20, f32::INFINITY), (36, f32::NEG_INFINITY)] {
            let keep = v[i];
            v[i] = bad;
            assert!(!all_finite(&v), "{bad} at {i}");
            v[i] = keep;
        }
    }
}
