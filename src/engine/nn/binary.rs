//! A network's first layer on binary input: y = x W + b and ∂L/∂W += xᵀ ∂L/∂y computed from the
//! on-entries of x only (binarised digits: 13–19% of the pixels are on).
//!
//! ```text
//! x ∈ {0, 1}^{B×I},   on(b) = { i : x_bi = 1 },   rows(i) = { b : x_bi = 1 }
//! forward    y_b = b + Σ_{i ∈ on(b)} W_i              (a gather-sum of rows of W)      B × O
//! backward   ∂L/∂W_i += Σ_{b ∈ rows(i)} ∂L/∂y_b        (a sum of rows of ∂L/∂y per on-input)  I × O
//!            ∂L/∂b   += Σ_b ∂L/∂y_b                    O
//! ```
//! These are the dense layer's sums ([`super::linear_forward_into`], [`super::linear_backward_into`])
//! with the zero terms left out and the one-factors dropped (x_bi·W_io = W_io exactly for
//! x_bi ∈ {0, 1}), so the two paths differ only in the order of their additions: each computed
//! entry is within γ_n·Σ|terms| of the exact sum (n terms, γ_n = n u/(1 − n u), u = 2⁻²⁴ in `f32`;
//! Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., eq. 4.4), whatever the order.
//! The cost is B·I (reading x) + nnz·O additions instead of 2·B·I·O flops per product.
//!
//! No ∂L/∂x: this path is for a first layer, whose input gradient nobody needs.

use ndarray::{ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2, Axis, NdFloat, Zip};

use super::simd::{as_f32, as_f32_mut};

/// Which path a network's first layer takes on its input.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum InputPath {
    /// The on-entries path when every entry of the batch is exactly 0 or 1 (checked per batch by
    /// [`BinaryInput::scan`]), the dense product otherwise. Opt-in (`Trainer::set_input_path`,
    /// `vaelab bench` without `--dense`): measured on an Intel Xeon (family 6 model 207) it pays at
    /// 13% of the entries on (about 860 µs against 1,150 µs for the first layer's forward and ∂W at
    /// 128×784 → 400) and loses at 19% (about 1,255 µs), so it is not the default until a density
    /// threshold is measured and tested.
    Auto,
    /// Always the dense product (the default).
    #[default]
    Dense,
}

/// The cache of the binary first layer: the on-entries of a batch x ∈ {0, 1}^{B×I}, by row
/// (for the forward gather) and by column (for the backward sums). Sized once for a capacity,
/// so [`BinaryInput::scan`] allocates nothing on batches that fit.
///
/// # Shapes
/// Describes a `B × I` batch: `B + 1` row starts, `I + 1` column starts, nnz entries each way.
#[derive(Clone, Debug, Default)]
pub struct BinaryInput {
    rows: usize,
    cols: usize,
    nnz: usize,
    /// Where row b's on-columns start in `row_cols` (B + 1 entries).
    row_start: Vec<usize>,
    /// The on-columns, row by row, increasing within a row (at least nnz long).
    row_cols: Vec<u32>,
    /// Where column i's on-rows start in `col_rows` (I + 1 entries).
    col_start: Vec<usize>,
    /// The on-rows, column by column, increasing within a column (at least nnz long).
    col_rows: Vec<u32>,
}

impl BinaryInput {
    /// Buffers for batches of up to `rows × cols` entries.
    pub fn with_capacity(rows: usize, cols: usize) -> Self {
        let n = rows.saturating_mul(cols);
        BinaryInput {
            rows: 0,
            cols: 0,
            nnz: 0,
            row_start: Vec::with_capacity(rows + 1),
            row_cols: vec![0; n],
            col_start: vec![0; cols + 1],
            col_rows: vec![0; n],
        }
    }

    /// Reads `x`: if every entry is exactly 0 or 1, records its on-entries and returns `true`;
    /// otherwise (a grey level, a NaN, more than 2³² rows or columns) returns `false` and the
    /// pattern is empty. One pass over x (64 entries to a bit mask, then its set bits), one over
    /// the on-entries to sort them by column.
    ///
    /// # Shapes
    /// `x`: `B × I`.
    pub fn scan<F: NdFloat>(&mut self, x: ArrayView2<F>) -> bool {
        let (b, n) = x.dim();
        self.clear();
        if u32::try_from(b).is_err() || u32::try_from(n).is_err() {
            return false;
        }
        if self.row_cols.len() < b * n {
            self.row_cols.resize(b * n, 0);
            self.col_rows.resize(b * n, 0);
        }
        if self.col_start.len() < n + 1 {
            self.col_start.resize(n + 1, 0);
        }
        self.row_start.push(0);
        let (zero, one) = (F::zero(), F::one());
        let mut nnz = 0;
        for row in x.outer_iter() {
            let ok = match row.as_slice() {
                #[cfg(target_arch = "x86_64")]
                Some(r) if has_avx2() && as_f32(r).is_some() => {
                    // SAFETY: the CPU has AVX2 (checked above).
                    unsafe { scan_row_avx2(as_f32(r).expect("f32"), &mut self.row_cols, &mut nnz) }
                }
                Some(r) => scan_row(r, zero, one, &mut self.row_cols, &mut nnz),
                None => scan_row(&row.to_vec(), zero, one, &mut self.row_cols, &mut nnz),
            };
            if !ok {
                self.clear();
                return false;
            }
            self.row_start.push(nnz);
        }
        (self.rows, self.cols, self.nnz) = (b, n, nnz);
        // By column: count, prefix-sum, place (each column's rows stay increasing), shift back.
        let starts = &mut self.col_start[..n + 1];
        starts.fill(0);
        for &i in &self.row_cols[..nnz] {
            starts[i as usize + 1] += 1;
        }
        for i in 0..n {
            starts[i + 1] += starts[i];
        }
        for r in 0..b {
            for &i in &self.row_cols[self.row_start[r]..self.row_start[r + 1]] {
                let at = &mut starts[i as usize];
                self.col_rows[*at] = r as u32;
                *at += 1;
            }
        }
        for i in (1..=n).rev() {
            starts[i] = starts[i - 1];
        }
        starts[0] = 0;
        true
    }

    fn clear(&mut self) {
        (self.rows, self.cols, self.nnz) = (0, 0, 0);
        self.row_start.clear();
    }

    /// (B, I) of the last batch scanned ((0, 0) after a non-binary one).
    pub fn dim(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    /// The number of on-entries.
    pub fn nnz(&self) -> usize {
        self.nnz
    }

    /// The on-columns of row `b`, increasing.
    pub fn row(&self, b: usize) -> &[u32] {
        &self.row_cols[self.row_start[b]..self.row_start[b + 1]]
    }

    /// The on-rows of column `i`, increasing.
    pub fn col(&self, i: usize) -> &[u32] {
        &self.col_rows[self.col_start[i]..self.col_start[i + 1]]
    }
}

/// Appends the on-columns of one row to `out[*nnz..]`; `false` if an entry is neither 0 nor 1.
#[inline]
fn scan_row<F: NdFloat>(row: &[F], zero: F, one: F, out: &mut [u32], nnz: &mut usize) -> bool {
    for (c, chunk) in row.chunks(64).enumerate() {
        let mut on = 0u64;
        let mut bad = false;
        for (k, &v) in chunk.iter().enumerate() {
            on |= u64::from(v == one) << k;
            bad |= (v != zero) & (v != one);
        }
        if bad {
            return false;
        }
        while on != 0 {
            out[*nnz] = (c * 64) as u32 + on.trailing_zeros();
            *nnz += 1;
            on &= on - 1;
        }
    }
    true
}

/// Columns per register block of the sums (4 AVX-512 or 8 AVX2 registers of `f32`).
const BLOCK: usize = 64;

/// out ← start + Σ_{r ∈ picks} m_r (or out += Σ_{r ∈ picks} m_r when `add`), m_r the row r of the
/// row-major `m` with `stride` columns, in 64-column register blocks; the rows are added in the
/// order of `picks`.
#[inline(always)]
fn gather_sum<F: NdFloat>(
    m: &[F],
    stride: usize,
    picks: &[u32],
    start: Option<&[F]>,
    out: &mut [F],
    add: bool,
) {
    let o = out.len();
    let mut c0 = 0;
    while c0 + BLOCK <= o {
        let mut acc = [F::zero(); BLOCK];
        if let Some(s) = start {
            acc.copy_from_slice(&s[c0..c0 + BLOCK]);
        }
        for &r in picks {
            let src = &m[r as usize * stride + c0..][..BLOCK];
            for k in 0..BLOCK {
                acc[k] += src[k];
            }
        }
        let dst = &mut out[c0..c0 + BLOCK];
        if add {
            for k in 0..BLOCK {
                dst[k] += acc[k];
            }
        } else {
            dst.copy_from_slice(&acc);
        }
        c0 += BLOCK;
    }
    let w = o - c0;
    if w > 0 {
        let mut acc = [F::zero(); BLOCK];
        if let Some(s) = start {
            acc[..w].copy_from_slice(&s[c0..]);
        }
        for &r in picks {
            let src = &m[r as usize * stride + c0..][..w];
            for k in 0..w {
                acc[k] += src[k];
            }
        }
        for k in 0..w {
            if add {
                out[c0 + k] += acc[k];
            } else {
                out[c0 + k] = acc[k];
            }
        }
    }
}

/// y_b ← bias + Σ_{i ∈ on(b)} W_i for every row (the body of [`binary_linear_forward_into`]).
#[inline(always)]
fn forward_body<F: NdFloat>(x: &BinaryInput, w: &[F], bias: &[F], y: &mut [F]) {
    let o = bias.len();
    for (b, y_row) in y.chunks_exact_mut(o).enumerate().take(x.rows) {
        gather_sum(w, o, x.row(b), Some(bias), y_row, false);
    }
}

/// ∂W_i += Σ_{b ∈ rows(i)} ∂y_b for every input column (the body of [`binary_linear_backward_into`]).
#[inline(always)]
fn backward_body<F: NdFloat>(x: &BinaryInput, d_y: &[F], d_w: &mut [F], o: usize) {
    for (i, dw_row) in d_w.chunks_exact_mut(o).enumerate().take(x.cols) {
        let rows = x.col(i);
        if !rows.is_empty() {
            gather_sum(d_y, o, rows, None, dw_row, true);
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn forward_avx2(x: &BinaryInput, w: &[f32], bias: &[f32], y: &mut [f32]) {
    forward_body(x, w, bias, y)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn backward_avx2(x: &BinaryInput, d_y: &[f32], d_w: &mut [f32], o: usize) {
    backward_body(x, d_y, d_w, o)
}

/// One row of `f32` to its on-columns (appended to `out[*nnz..]`), 8 entries per compare;
/// `false` if an entry is neither 0 nor 1 (−0 counts as 0).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn scan_row_avx2(row: &[f32], out: &mut [u32], nnz: &mut usize) -> bool {
    use std::arch::x86_64::*;
    let (zero, one) = (_mm256_setzero_ps(), _mm256_set1_ps(1.0));
    let chunks = row.chunks_exact(8);
    let rest = chunks.remainder();
    for (c, chunk) in chunks.enumerate() {
        // SAFETY: `chunk` holds 8 f32 (unaligned load).
        let v = unsafe { _mm256_loadu_ps(chunk.as_ptr()) };
        let on = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_EQ_OQ>(v, one)) as u32;
        let off = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_EQ_OQ>(v, zero)) as u32;
        if on | off != 0xff {
            return false;
        }
        let mut on = on;
        while on != 0 {
            out[*nnz] = (c * 8) as u32 + on.trailing_zeros();
            *nnz += 1;
            on &= on - 1;
        }
    }
    let base = row.len() - rest.len();
    for (k, &v) in rest.iter().enumerate() {
        if v == 1.0 {
            out[*nnz] = (base + k) as u32;
            *nnz += 1;
        } else if v != 0.0 {
            return false;
        }
    }
    true
}

fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static AVX2: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *AVX2.get_or_init(|| std::arch::is_x86_feature_detected!("avx2"))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Kernel: y ← x W + b for a binary x given by its on-entries (no allocation).
///
/// ```text
/// y_b = b + Σ_{i ∈ on(b)} W_i        (the dense y = x W + b without its zero terms)
/// ```
///
/// # Shapes
/// `x`: `B × I` (scanned), `weight`: `I × O`, `bias`: `O`, `y`: `B × O`.
#[track_caller]
pub fn binary_linear_forward_into<F: NdFloat>(
    x: &BinaryInput,
    weight: ArrayView2<F>,
    bias: ArrayView1<F>,
    mut y: ArrayViewMut2<F>,
) {
    assert!(
        x.cols == weight.nrows() && y.dim() == (x.rows, weight.ncols()) && bias.len() == weight.ncols(),
        "binary linear forward: x {:?} · W {:?} + b {:?} -> y {:?}",
        x.dim(),
        weight.dim(),
        bias.len(),
        y.dim()
    );
    let (Some(w), Some(bs)) = (weight.as_slice(), bias.as_slice()) else {
        // Strided parameters (never in this crate's layers): one row at a time.
        for (b, mut y_row) in y.outer_iter_mut().enumerate() {
            y_row.assign(&bias);
            for &i in x.row(b) {
                y_row += &weight.row(i as usize);
            }
        }
        return;
    };
    match y.as_slice_mut() {
        Some(ys) => {
            #[cfg(target_arch = "x86_64")]
            if let (Some(w), Some(bs), true) = (as_f32(w), as_f32(bs), has_avx2()) {
                let ys = as_f32_mut(ys).expect("F is f32");
                // SAFETY: the CPU has AVX2 (checked above).
                return unsafe { forward_avx2(x, w, bs, ys) };
            }
            forward_body(x, w, bs, ys)
        }
        None => {
            for (b, mut y_row) in y.outer_iter_mut().enumerate() {
                let mut tmp = y_row.to_vec();
                gather_sum(w, bs.len(), x.row(b), Some(bs), &mut tmp, false);
                y_row.assign(&ArrayView1::from(&tmp));
            }
        }
    }
}

/// Kernel: ∂W += xᵀ ∂y and ∂b += Σ_rows ∂y for a binary x given by its on-entries (no ∂x: a
/// first layer's).
///
/// ```text
/// ∂L/∂W_i += Σ_{b ∈ rows(i)} ∂L/∂y_b,    ∂L/∂b += Σ_b ∂L/∂y_b
/// ```
/// Each ∂W_i's sum starts at 0 and is then added to ∂W_i.
///
/// # Shapes
/// `x`: `B × I` (scanned), `d_y`: `B × O`, `d_weight`: `I × O`, `d_bias`: `O`.
#[track_caller]
pub fn binary_linear_backward_into<F: NdFloat>(
    x: &BinaryInput,
    d_y: ArrayView2<F>,
    mut d_weight: ArrayViewMut2<F>,
    mut d_bias: ArrayViewMut1<F>,
) {
    assert!(
        d_y.nrows() == x.rows && d_weight.dim() == (x.cols, d_y.ncols()) && d_bias.len() == d_y.ncols(),
        "binary linear backward: x {:?}, d_y {:?}, d_W {:?}, d_b {:?}",
        x.dim(),
        d_y.dim(),
        d_weight.dim(),
        d_bias.len()
    );
    for row in d_y.axis_iter(Axis(0)) {
        Zip::from(&mut d_bias).and(&row).for_each(|db, &g| *db += g);
    }
    let o = d_y.ncols();
    match (d_y.as_slice(), d_weight.as_slice_mut()) {
        (Some(dy), Some(dw)) => {
            #[cfg(target_arch = "x86_64")]
            if let (Some(dy), true) = (as_f32(dy), has_avx2()) {
                let dw = as_f32_mut(dw).expect("F is f32");
                // SAFETY: the CPU has AVX2 (checked above).
                return unsafe { backward_avx2(x, dy, dw, o) };
            }
            backward_body(x, dy, dw, o)
        }
        _ => {
            for i in 0..x.cols {
                let mut dw_row = d_weight.row_mut(i);
                for &b in x.col(i) {
                    dw_row += &d_y.row(b as usize);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::nn::gradcheck::{assert_slices_close, parameter_difference};
    use crate::engine::nn::{Linear, Parameters, linear_backward_into, linear_forward_into};
    use ndarray::{Array1, Array2, array};
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// γ_n = n u / (1 − n u): the relative bound of a sum of n terms in any order (Higham eq. 4.4).
    fn gamma(n: usize, u: f64) -> f64 {
        n as f64 * u / (1.0 - n as f64 * u)
    }

    /// A B × I batch with entries on with probability `p`, then row 0 all off and row 1 all on.
    fn batch(b: usize, i: usize, p: f64, rng: &mut StdRng) -> Array2<f32> {
        let mut x = Array2::from_shape_simple_fn((b, i), || f32::from(rng.random::<f64>() < p));
        x.row_mut(0).fill(0.0);
        if b > 1 {
            x.row_mut(1).fill(1.0);
        }
        x
    }

    #[test]
    fn scan_finds_exactly_the_on_entries_by_row_and_by_column() {
        let x = array![[0.0, 1.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0], [1.0, 1.0, -0.0, 1.0]];
        let mut s = BinaryInput::with_capacity(3, 4);
        assert!(s.scan(x.view()));
        assert_eq!((s.dim(), s.nnz()), ((3, 4), 5));
        assert_eq!([s.row(0), s.row(1), s.row(2)], [&[1, 3][..], &[], &[0, 1, 3]]);
        assert_eq!([s.col(0), s.col(1), s.col(2), s.col(3)], [&[2][..], &[0, 2], &[], &[0, 2]]);
        // A grey level, a NaN or a 2 anywhere: not binary, pattern emptied.
        for bad in [0.5, f64::NAN, 2.0] {
            let mut y = x.clone();
            y[(2, 2)] = bad;
            assert!(!s.scan(y.view()), "{bad}");
            assert_eq!((s.dim(), s.nnz()), ((0, 0), 0));
            // The f32 path (8 entries per compare, then the rest one by one), bad value in either.
            for col in [1, 9] {
                let mut z = Array2::<f32>::zeros((2, 11));
                z[(1, col)] = bad as f32;
                assert!(!s.scan(z.view()), "f32 {bad} at column {col}");
                z[(1, col)] = 1.0;
                assert!(s.scan(z.view()) && s.row(1) == [col as u32], "f32 one at column {col}");
            }
        }
        // Wider than one 64-bit mask, with a column view (strided rows).
        let mut rng = StdRng::seed_from_u64(5);
        let wide = batch(7, 150, 0.3, &mut rng);
        let t = wide.t().to_owned();
        let mut s = BinaryInput::with_capacity(0, 0);
        assert!(s.scan(t.t()));
        for b in 0..7 {
            let want: Vec<u32> = (0..150).filter(|&i| wide[(b, i)] == 1.0).map(|i| i as u32).collect();
            assert_eq!(s.row(b), &want[..], "row {b}");
        }
        for i in 0..150 {
            let want: Vec<u32> = (0..7).filter(|&b| wide[(b, i)] == 1.0).map(|b| b as u32).collect();
            assert_eq!(s.col(i), &want[..], "column {i}");
        }
    }

    #[test]
    fn both_paths_agree_to_the_summation_bound_on_random_binary_batches() {
        // Each entry is a sum of exact terms (0/1 times a weight) in some order: each path is
        // within γ_n Σ|terms| of the exact sum (n = terms added), so the two are within
        // (γ_n,sparse + γ_n,dense) Σ|terms| of each other, with u = 2⁻²⁴ (f32).
        let u = 2f64.powi(-24);
        let mut rng = StdRng::seed_from_u64(6);
        for (b, i, o, p) in
            [(1, 1, 1, 0.5), (5, 13, 70, 0.05), (32, 100, 64, 0.13), (64, 784, 130, 0.19), (9, 200, 400, 0.9)]
        {
            let x = batch(b, i, p, &mut rng);
            let layer: Linear<f32> = Linear::new(i, o, &mut rng).unwrap();
            let mut s = BinaryInput::with_capacity(b, i);
            assert!(s.scan(x.view()));
            let (mut ys, mut yd) = (Array2::zeros((b, o)), Array2::zeros((b, o)));
            binary_linear_forward_into(&s, layer.weight.view(), layer.bias.view(), ys.view_mut());
            linear_forward_into(x.view(), layer.weight.view(), layer.bias.view(), yd.view_mut());
            for r in 0..b {
                let on = s.row(r);
                for c in 0..o {
                    let mass = f64::from(layer.bias[c].abs())
                        + on.iter().map(|&j| f64::from(layer.weight[(j as usize, c)].abs())).sum::<f64>();
                    let bound = (gamma(on.len() + 1, u) + gamma(i + 1, u)) * mass;
                    let diff = f64::from((ys[(r, c)] - yd[(r, c)]).abs());
                    assert!(diff <= bound, "forward {b}x{i}x{o} p={p} ({r},{c}): {diff} > {bound}");
                }
            }
            // Row 0 is all off: exactly the bias.
            assert_eq!(ys.row(0), layer.bias);
            // Backward, on top of a non-zero ∂W (accumulation).
            let d_y = Array2::from_shape_simple_fn((b, o), || rng.random_range(-1.0f32..1.0));
            let start = Array2::from_shape_simple_fn((i, o), || rng.random_range(-1.0f32..1.0));
            let (mut ws, mut wd) = (start.clone(), start.clone());
            let (mut bs, mut bd) = (Array1::<f32>::ones(o), Array1::<f32>::ones(o));
            binary_linear_backward_into(&s, d_y.view(), ws.view_mut(), bs.view_mut());
            linear_backward_into(
                x.view(),
                layer.weight.view(),
                d_y.view(),
                wd.view_mut(),
                bd.view_mut(),
                None,
            );
            assert_eq!(bs, bd, "∂b is the same loop on both paths");
            for j in 0..i {
                let rows = s.col(j);
                for c in 0..o {
                    let mass = f64::from(start[(j, c)].abs())
                        + rows.iter().map(|&r| f64::from(d_y[(r as usize, c)].abs())).sum::<f64>();
                    let bound = (gamma(rows.len() + 1, u) + gamma(b + 1, u)) * mass;
                    let diff = f64::from((ws[(j, c)] - wd[(j, c)]).abs());
                    assert!(diff <= bound, "backward {b}x{i}x{o} p={p} ({j},{c}): {diff} > {bound}");
                }
            }
        }
    }

    #[test]
    fn both_paths_are_equal_when_every_sum_is_exact() {
        // Small integer weights: every partial sum is an integer below 2²⁴, exact in f32 in any
        // order, so the two paths must agree bit for bit (a missing or doubled term shows).
        let mut rng = StdRng::seed_from_u64(7);
        let (b, i, o) = (40, 300, 100);
        let x = batch(b, i, 0.2, &mut rng);
        let w = Array2::from_shape_simple_fn((i, o), || rng.random_range(-8i32..8) as f32);
        let bias = Array1::from_shape_simple_fn(o, || rng.random_range(-8i32..8) as f32);
        let d_y = Array2::from_shape_simple_fn((b, o), || rng.random_range(-8i32..8) as f32);
        let mut s = BinaryInput::with_capacity(b, i);
        assert!(s.scan(x.view()));
        let (mut ys, mut yd) = (Array2::zeros((b, o)), Array2::zeros((b, o)));
        binary_linear_forward_into(&s, w.view(), bias.view(), ys.view_mut());
        linear_forward_into(x.view(), w.view(), bias.view(), yd.view_mut());
        assert_eq!(ys, yd);
        let (mut ws, mut wd) = (Array2::zeros((i, o)), Array2::zeros((i, o)));
        let (mut bs, mut bd) = (Array1::zeros(o), Array1::zeros(o));
        binary_linear_backward_into(&s, d_y.view(), ws.view_mut(), bs.view_mut());
        linear_backward_into(x.view(), w.view(), d_y.view(), wd.view_mut(), bd.view_mut(), None);
        assert_eq!(ws, wd);
    }

    #[test]
    fn sparse_backward_matches_finite_differences() {
        // L = Σ r ⊙ y with y from the sparse forward, so ∂L/∂y = r; ∂L/∂W and ∂L/∂b from the sparse
        // backward against central differences (f64, gradcheck's tolerance).
        let mut rng = StdRng::seed_from_u64(8);
        let (b, i, o) = (4, 70, 5);
        let x = batch(b, i, 0.3, &mut rng).mapv(f64::from);
        let layer: Linear<f64> = Linear::new(i, o, &mut rng).unwrap();
        let r = Array2::from_shape_simple_fn((b, o), || rng.random_range(-1.0..1.0));
        let mut s = BinaryInput::with_capacity(b, i);
        assert!(s.scan(x.view()));
        let loss = |l: &Linear<f64>| {
            let mut y = Array2::zeros((b, o));
            binary_linear_forward_into(&s, l.weight.view(), l.bias.view(), y.view_mut());
            (y * &r).sum()
        };
        let mut grads = layer.zeros_like();
        binary_linear_backward_into(&s, r.view(), grads.weight.view_mut(), grads.bias.view_mut());
        let mut probe = layer.clone();
        for t in 0..2 {
            let approx = parameter_difference(&mut probe, t, &loss);
            assert_slices_close(&layer.tensor_name(t), grads.tensor(t), &approx, 1e-8);
        }
    }
}
