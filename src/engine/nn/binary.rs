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

#[cfg(target_arch = "x86_64")]
use super::simd::{Width, cpu_width};
use super::simd::{as_f32, as_f32_mut};

/// Which path a network's first layer takes on its input.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum InputPath {
    /// The on-entries path when every entry of the batch is exactly 0 or 1 and at most
    /// [`AUTO_MAX_DENSITY_PERCENT`]% of them are on (nnz ≤ t·B·I, checked per batch by
    /// [`BinaryInput::scan_at_most`]), the dense product otherwise (when it declines it has cost
    /// the scan up to where the count passed the limit with AVX2, one counting read otherwise).
    /// The default: the trainer's and `vaelab bench`'s (unless `--dense`); the lessons' printed
    /// numbers were rerun and re-quoted with it.
    #[default]
    Auto,
    /// The on-entries path whenever the batch is binary, whatever its density (for tests and
    /// measurements of the crossover; slower than [`InputPath::Dense`] above the threshold).
    Binary,
    /// Always the dense product.
    Dense,
}

/// t of [`InputPath::Auto`]'s rule, in percent of the batch's entries: the on-entries path when
/// nnz ≤ t·B·I. Measured with `cargo bench --bench kernels` on an Intel Xeon (family 6 model 207),
/// the first layer's forward + ∂W with its scan against the dense forward + ∂W at B = 128,
/// I = 784 (docs/performance.md): the on-entries path stops paying at about 15% of the entries
/// on for O = 100 (the scan weighs more beside a narrow layer), 22% for O = 400 and for
/// O = 1024; 14% is below all three, and above the synthetic bench data (12.9%) and the shipped
/// digits binarised per batch (13.2%).
pub const AUTO_MAX_DENSITY_PERCENT: usize = 14;

impl InputPath {
    /// The most on-entries a `rows × cols` batch may have for this path to read it by its
    /// on-entries: `None` for [`InputPath::Dense`], ⌊t·rows·cols⌋ for [`InputPath::Auto`]
    /// (t = [`AUTO_MAX_DENSITY_PERCENT`]/100), all of them for [`InputPath::Binary`].
    pub fn max_on_entries(self, rows: usize, cols: usize) -> Option<usize> {
        let n = rows.saturating_mul(cols);
        match self {
            InputPath::Dense => None,
            InputPath::Binary => Some(n),
            InputPath::Auto => Some(
                usize::try_from(n as u128 * AUTO_MAX_DENSITY_PERCENT as u128 / 100).unwrap_or(usize::MAX),
            ),
        }
    }
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
    /// Where row b's on-columns in each chunk of [`ROW_CHUNK`] columns start in `row_cols`, for
    /// the forward's tiles (`row_chunks(I)` + 1 entries per row, the last one the row's end).
    row_chunk: Vec<usize>,
    /// The AVX2 scan's transposed bit matrix: word w of column i (at `w · ⌈I/8⌉·8 + i`) holds
    /// bit r − 32w for every on-row r in 32w..32w + 32.
    col_bits: Vec<u32>,
}

/// Entries the AVX2 scan compares at once (8 `f32` lanes of a register).
const LANES: usize = 8;
/// Rows per word of the AVX2 scan's transposed bit matrix.
const BITS: usize = 32;

/// Slack the index buffers keep past their last possible entry: the AVX2 scans store [`LANES`]
/// indices at a time, of which only the on-entries' are kept.
const SLACK: usize = LANES;
const _: () = assert!(SLACK >= LANES && ROW_CHUNK.is_multiple_of(LANES));

/// For every byte m, the positions of its set bits in increasing order (then zeros): the scans'
/// branch-free left-packing of 8 compares into indices.
static LEFT_PACK: [[u32; 8]; 256] = left_pack_table();

const fn left_pack_table() -> [[u32; 8]; 256] {
    let mut t = [[0u32; 8]; 256];
    let mut m = 0;
    while m < 256 {
        let (mut j, mut k) = (0, 0);
        while j < 8 {
            if (m >> j) & 1 == 1 {
                t[m][k] = j as u32;
                k += 1;
            }
            j += 1;
        }
        m += 1;
    }
    t
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
            row_chunk: Vec::with_capacity(rows.saturating_mul(row_chunks(cols) + 1)),
            row_cols: vec![0; n.saturating_add(SLACK)],
            col_start: vec![0; cols + 1],
            col_rows: vec![0; n.saturating_add(SLACK)],
            col_bits: Vec::with_capacity(rows.div_ceil(BITS).saturating_mul(cols.div_ceil(LANES) * LANES)),
        }
    }

    /// [`BinaryInput::scan`] when `x` has at most `max_nnz` on-entries; `false` (and an empty
    /// pattern) otherwise. For contiguous `f32` rows with AVX2, one pass that stops once the
    /// count passes `max_nnz`; otherwise one counting pass over x first (which also checks that
    /// every entry is 0 or 1), then the scan only if the count is within `max_nnz`. The buffers
    /// grow to min(max_nnz, B·I) entries each way (and 8 of slack) the first time they are
    /// short, never more.
    ///
    /// # Shapes
    /// `x`: `B × I`.
    pub fn scan_at_most<F: NdFloat>(&mut self, x: ArrayView2<F>, max_nnz: usize) -> bool {
        self.clear();
        let want = max_nnz.min(x.len());
        #[cfg(target_arch = "x86_64")]
        if let Some(x32) = avx2_rows(x) {
            // One pass: it stops as soon as the count passes max_nnz.
            self.reserve(want);
            // SAFETY: the CPU has AVX2 and x's rows are contiguous f32 (avx2_rows checked both).
            return unsafe { self.fill_avx2(x32, want) };
        }
        let Some(nnz) = count_on(x) else { return false };
        if nnz > max_nnz {
            return false;
        }
        // nnz ≤ min(max_nnz, B·I): the pass below fits.
        self.reserve(want);
        self.fill(x)
    }

    /// Index buffers for `nnz` on-entries each way (and the slack), grown only when short.
    fn reserve(&mut self, nnz: usize) {
        let want = nnz.saturating_add(SLACK);
        if self.row_cols.len() < want {
            self.row_cols.resize(want, 0);
            self.col_rows.resize(want, 0);
        }
    }

    /// Reads `x`: if every entry is exactly 0 or 1, records its on-entries and returns `true`;
    /// otherwise (a grey level, a NaN, more than 2³² rows or columns) returns `false` and the
    /// pattern is empty. For contiguous `f32` rows with AVX2, `fill_avx2`'s one pass
    /// over x and one over its bit matrix; otherwise the plain `fill`.
    ///
    /// # Shapes
    /// `x`: `B × I`.
    pub fn scan<F: NdFloat>(&mut self, x: ArrayView2<F>) -> bool {
        let (b, n) = x.dim();
        self.clear();
        if u32::try_from(b).is_err() || u32::try_from(n).is_err() {
            return false;
        }
        self.reserve(b * n);
        #[cfg(target_arch = "x86_64")]
        if let Some(x32) = avx2_rows(x) {
            // SAFETY: the CPU has AVX2 and x's rows are contiguous f32 (avx2_rows checked both).
            return unsafe { self.fill_avx2(x32, b * n) };
        }
        self.fill(x)
    }

    /// [`BinaryInput::fill`] for contiguous `f32` rows with AVX2, stopping (with `false` and an
    /// empty pattern) once more than `max_nnz` entries are on. One pass over x: 8 entries per
    /// compare, their on-columns left-packed into `row_cols` (a table lookup and one store, no
    /// branch per entry) and their bits set in a transposed bit matrix; then one pass over that
    /// matrix, column by column, left-packing each byte of rows into `col_rows` the same way.
    /// The same pattern as `fill` (each list increasing).
    ///
    /// # Shapes
    /// `x`: `B × I`, each row one block of memory; the bit matrix ⌈B/32⌉ × ⌈I/8⌉·8 words.
    ///
    /// # Safety
    /// AVX2; room for `max_nnz` entries and [`SLACK`] in both index buffers.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn fill_avx2(&mut self, x: ArrayView2<f32>, max_nnz: usize) -> bool {
        use std::arch::x86_64::*;
        let (b, n) = x.dim();
        self.clear();
        if u32::try_from(b).is_err() || u32::try_from(n).is_err() {
            return false;
        }
        assert!(
            self.row_cols.len() >= max_nnz + SLACK && self.col_rows.len() >= max_nnz + SLACK,
            "fill_avx2 room"
        );
        if self.col_start.len() < n + 1 {
            self.col_start.resize(n + 1, 0);
        }
        let (words, stride) = (b.div_ceil(BITS), n.div_ceil(LANES) * LANES);
        self.col_bits.clear();
        self.col_bits.resize(words * stride, 0);
        let (zero, one) = (_mm256_setzero_ps(), _mm256_set1_ps(1.0));
        let mut nnz = 0;
        // Held here, not reloaded through `self` after every store.
        let row_cols = self.row_cols.as_mut_ptr();
        self.row_start.push(0);
        for (r, row) in x.outer_iter().enumerate() {
            let row = row.to_slice().expect("avx2_rows: contiguous rows");
            let bits = &mut self.col_bits[(r / BITS) * stride..][..stride];
            let bit = _mm256_set1_epi32(1 << (r % BITS));
            let whole = n / LANES * LANES;
            for c0 in (0..whole).step_by(LANES) {
                if c0.is_multiple_of(ROW_CHUNK) {
                    self.row_chunk.push(nnz);
                }
                // SAFETY: 8 floats of the row at c0 < whole; 8 words of `bits` at c0 < stride;
                // 8 indices at nnz ≤ max_nnz inside row_cols (room checked above).
                unsafe {
                    let v = _mm256_loadu_ps(row.as_ptr().add(c0));
                    let on = _mm256_cmp_ps::<_CMP_EQ_OQ>(v, one);
                    let off = _mm256_cmp_ps::<_CMP_EQ_OQ>(v, zero);
                    let mask = _mm256_movemask_ps(on) as u32;
                    if mask | _mm256_movemask_ps(off) as u32 != 0xff {
                        self.clear();
                        return false;
                    }
                    let at = bits.as_mut_ptr().add(c0) as *mut __m256i;
                    let set = _mm256_and_si256(_mm256_castps_si256(on), bit);
                    _mm256_storeu_si256(at, _mm256_or_si256(_mm256_loadu_si256(at), set));
                    let lanes = _mm256_loadu_si256(LEFT_PACK[mask as usize].as_ptr() as *const __m256i);
                    let cols = _mm256_add_epi32(lanes, _mm256_set1_epi32(c0 as i32));
                    _mm256_storeu_si256(row_cols.add(nnz) as *mut __m256i, cols);
                    nnz += mask.count_ones() as usize;
                }
                if nnz > max_nnz {
                    self.clear();
                    return false;
                }
            }
            if whole < n && whole.is_multiple_of(ROW_CHUNK) {
                self.row_chunk.push(nnz);
            }
            for (c, &v) in row.iter().enumerate().skip(whole) {
                if v == 1.0 {
                    if nnz == max_nnz {
                        self.clear();
                        return false;
                    }
                    // SAFETY: nnz < max_nnz, inside row_cols (room checked above).
                    unsafe { *row_cols.add(nnz) = c as u32 };
                    bits[c] |= 1 << (r % BITS);
                    nnz += 1;
                } else if v != 0.0 {
                    self.clear();
                    return false;
                }
            }
            if n == 0 {
                self.row_chunk.push(nnz);
            }
            self.row_chunk.push(nnz);
            self.row_start.push(nnz);
        }
        (self.rows, self.cols, self.nnz) = (b, n, nnz);
        // By column: each word's bytes of rows left-packed, in increasing order of rows.
        let mut at = 0;
        let col_rows = self.col_rows.as_mut_ptr();
        self.col_start[0] = 0;
        for i in 0..n {
            for w in 0..words {
                let word = self.col_bits[w * stride + i];
                for byte in 0..BITS / 8 {
                    let m = (word >> (8 * byte)) & 0xff;
                    // SAFETY: 8 indices at `at` ≤ nnz ≤ max_nnz inside col_rows (room checked above).
                    unsafe {
                        let lanes = _mm256_loadu_si256(LEFT_PACK[m as usize].as_ptr() as *const __m256i);
                        let rows = _mm256_add_epi32(lanes, _mm256_set1_epi32((BITS * w + 8 * byte) as i32));
                        _mm256_storeu_si256(col_rows.add(at) as *mut __m256i, rows);
                    }
                    at += m.count_ones() as usize;
                }
            }
            self.col_start[i + 1] = at;
        }
        debug_assert_eq!(at, nnz, "fill_avx2: entries by column");
        true
    }

    /// The plain body of [`BinaryInput::scan`] (for `f64`, rows that are not one block of memory,
    /// or a CPU without AVX2; [`BinaryInput::fill_avx2`] otherwise), with room for the batch's
    /// on-entries already made (an index past the buffers panics; it cannot happen after `scan`'s
    /// or `scan_at_most`'s sizing). One pass over x (64 entries to a bit mask, then its set bits),
    /// one over the on-entries to sort them by column (count, prefix-sum, place).
    fn fill<F: NdFloat>(&mut self, x: ArrayView2<F>) -> bool {
        let (b, n) = x.dim();
        self.clear();
        if u32::try_from(b).is_err() || u32::try_from(n).is_err() {
            return false;
        }
        if self.col_start.len() < n + 1 {
            self.col_start.resize(n + 1, 0);
        }
        self.row_start.push(0);
        let (zero, one) = (F::zero(), F::one());
        let mut nnz = 0;
        for row in x.outer_iter() {
            let ok = match row.as_slice() {
                Some(r) => scan_row(r, zero, one, &mut self.row_cols, &mut nnz),
                None => scan_row(&row.to_vec(), zero, one, &mut self.row_cols, &mut nnz),
            };
            if !ok {
                self.clear();
                return false;
            }
            let start = *self.row_start.last().expect("pushed");
            let mut k = start;
            for c in 0..row_chunks(n) {
                while k < nnz && (self.row_cols[k] as usize) < c * ROW_CHUNK {
                    k += 1;
                }
                self.row_chunk.push(k);
            }
            self.row_chunk.push(nnz);
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
        self.row_chunk.clear();
    }

    /// (B, I) of the last batch scanned ((0, 0) after a non-binary one).
    pub fn dim(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    /// Entries held by the two index buffers (u32 each): what the cache costs in memory, 4 bytes
    /// an entry, besides its B + I + 2 starts, its chunk starts and (AVX2) its ⌈B/32⌉ × ⌈I/8⌉·8-word
    /// (`u32`) bit matrix.
    pub fn buffer_entries(&self) -> usize {
        self.row_cols.len() + self.col_rows.len()
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

/// `x` as `f32` rows each one block of memory, when the CPU has AVX2 (the fused scan's input).
///
/// # Shapes
/// `x`: `B × I`, returned as it is.
#[cfg(target_arch = "x86_64")]
fn avx2_rows<'a, F: NdFloat>(x: ArrayView2<'a, F>) -> Option<ArrayView2<'a, f32>> {
    if cpu_width() < Width::Avx2 || (x.ncols() > 1 && x.strides()[1] != 1) {
        return None;
    }
    if std::any::TypeId::of::<F>() != std::any::TypeId::of::<f32>() {
        return None;
    }
    // SAFETY: F is f32 (same type), so the view is reinterpreted as itself.
    Some(unsafe { std::mem::transmute_copy::<ArrayView2<'a, F>, ArrayView2<'a, f32>>(&x) })
}

/// The number of entries of `x` equal to 1, or `None` if one is neither 0 nor 1 (−0 counts as
/// 0): one read of x (the plain path's count, before its scan; the AVX2 scan counts as it goes).
fn count_on<F: NdFloat>(x: ArrayView2<F>) -> Option<usize> {
    let (zero, one) = (F::zero(), F::one());
    let mut total = 0;
    for row in x.outer_iter() {
        let count = row.iter().try_fold(0usize, |c, &v| {
            if v == one {
                Some(c + 1)
            } else if v == zero {
                Some(c)
            } else {
                None
            }
        })?;
        total += count;
    }
    Some(total)
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

/// Columns per register block of the sums (8 AVX2 registers of `f32`).
const BLOCK: usize = 64;

/// out ← start + Σ_{r ∈ picks} m_r (or out += Σ_{r ∈ picks} m_r when `add`), m_r the row r of the
/// row-major `m` with `stride` columns: one sum per column, from the start (or 0), the picked rows
/// added in the order of `picks`, then (with `add`) added to `out`. The plain loop, one block of
/// up to 64 columns at a time; the AVX2 kernels ([`gather_cols_avx2`]) give its bits.
///
/// # Shapes
/// `m`: rows × `stride`, `picks` < rows, `start` and `out`: `stride` long.
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
    for c0 in (0..o).step_by(BLOCK) {
        let w = BLOCK.min(o - c0);
        let mut acc = [F::zero(); BLOCK];
        if let Some(s) = start {
            acc[..w].copy_from_slice(&s[c0..c0 + w]);
        }
        for &r in picks {
            let src = &m[r as usize * stride + c0..][..w];
            for k in 0..w {
                acc[k] += src[k];
            }
        }
        let dst = &mut out[c0..c0 + w];
        if add {
            for k in 0..w {
                dst[k] += acc[k];
            }
        } else {
            dst.copy_from_slice(&acc[..w]);
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

/// Input rows of W per chunk of the AVX2 forward: 96 rows × 64 columns × 4 bytes = 24 KB, inside
/// a 32 KB L1 data cache.
const ROW_CHUNK: usize = 96;

/// The chunks of [`ROW_CHUNK`] input rows of a layer with `cols` inputs (at least one).
fn row_chunks(cols: usize) -> usize {
    cols.div_ceil(ROW_CHUNK).max(1)
}

/// [`forward_body`] with the AVX2 sums, tiled so that W is read from the L1 cache: one block of
/// 64 columns and [`ROW_CHUNK`] input rows at a time over every row of the batch, each row's sum
/// carried in y from one chunk of input rows to the next ([`Init::Out`]). Each entry's sum is
/// the same (the bias, then the picked rows of W in the order of `on(b)`), so the same bits.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn forward_avx2(x: &BinaryInput, w: &[f32], bias: &[f32], y: &mut [f32]) {
    let o = bias.len();
    // Every load below stays inside `w`, `bias` and `y`: checked once here.
    assert!(w.len() == x.cols * o && y.len() == x.rows * o, "binary forward_avx2 shapes");
    assert!(x.row_cols[..x.nnz].iter().all(|&i| (i as usize) < x.cols), "binary forward_avx2 columns");
    let chunks = row_chunks(x.cols);
    for (c0, c1) in column_blocks(w, o) {
        for k in 0..chunks {
            for b in 0..x.rows {
                let at = b * (chunks + 1) + k;
                let picks = &x.row_cols[x.row_chunk[at]..x.row_chunk[at + 1]];
                let init = if k == 0 { Init::Start(bias) } else { Init::Out };
                if k == 0 || !picks.is_empty() {
                    // SAFETY: AVX2 is enabled; columns c0..c1 ≤ o of every picked row of W
                    // (row < I), of the bias and of y's row b < B (checked above).
                    unsafe { gather_cols_avx2(w, o, picks, init, &mut y[b * o..(b + 1) * o], false, c0, c1) };
                }
            }
        }
    }
}

/// [`backward_body`] with the AVX2 sums, one block of 64 columns at a time over every input
/// column: the block's B × 64 slice of ∂y (32 KB at B = 128) is read by all I columns before the
/// next. Each entry's sum is the same (the picked rows of ∂y in the order of `rows(i)`, then
/// added to ∂W_i), so the same bits.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn backward_avx2(x: &BinaryInput, d_y: &[f32], d_w: &mut [f32], o: usize) {
    // Every load below stays inside `d_y` and `d_w`: checked once here.
    assert!(d_y.len() == x.rows * o && d_w.len() == x.cols * o, "binary backward_avx2 shapes");
    assert!(x.col_rows[..x.nnz].iter().all(|&b| (b as usize) < x.rows), "binary backward_avx2 rows");
    for (c0, c1) in column_blocks(d_y, o) {
        for i in 0..x.cols {
            let rows = x.col(i);
            if !rows.is_empty() {
                // SAFETY: AVX2 is enabled; columns c0..c1 ≤ o of every picked row of ∂y
                // (row < B) and of ∂W's row i < I (checked above).
                unsafe {
                    gather_cols_avx2(d_y, o, rows, Init::Zero, &mut d_w[i * o..(i + 1) * o], true, c0, c1)
                };
            }
        }
    }
}

/// The column blocks (c0, c1) of the AVX2 sums over rows of `m` with `o` columns: blocks of
/// [`BLOCK`] columns, after a first block of up to 15 columns that brings the next blocks to
/// 64-byte cache-line boundaries when every row of `m` shares one alignment (o a multiple of
/// 16 floats) and o ≥ 16. A block of 64 columns from such a boundary spans 4 cache lines of each
/// picked row; from where the allocator leaves an array (16 bytes past a line, say) it spans 5,
/// and on the AMD EPYC (Zen 3) host the forward sums took about 30% longer so
/// (docs/performance.md).
#[cfg(target_arch = "x86_64")]
fn column_blocks(m: &[f32], o: usize) -> impl Iterator<Item = (usize, usize)> {
    let head = if o >= 16 && o.is_multiple_of(16) { (64 - m.as_ptr() as usize % 64) % 64 / 4 } else { 0 };
    let rest = (head..o).step_by(BLOCK).map(move |c0| (c0, (c0 + BLOCK).min(o)));
    (head > 0).then_some((0, head)).into_iter().chain(rest)
}

/// [`gather_sum`]'s columns c0..c1 (at most one 64-column block) for `f32` in AVX2 registers
/// held explicitly: the same additions in the same order (one accumulator per column, the
/// picked rows added in the order of `picks`, then `out` added last), so bit-identical to it.
/// ⌈(c1 − c0)/8⌉ registers, the last one's lanes past c1 masked off (neither read nor written).
///
/// # Shapes
/// `m`: rows × `stride` (row-major), `picks` < rows, `start` and `out`: `stride` long.
///
/// # Safety
/// AVX2; c0 ≤ c1 ≤ c0 + 64, c1 ≤ `stride`; every picked row of `m` is inside `m`; `start`
/// (when given) and `out` hold at least c1 entries.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
#[allow(clippy::too_many_arguments)]
unsafe fn gather_cols_avx2(
    m: &[f32],
    stride: usize,
    picks: &[u32],
    init: Init<'_>,
    out: &mut [f32],
    add: bool,
    c0: usize,
    c1: usize,
) {
    debug_assert!(
        c0 <= c1 && c1 - c0 <= BLOCK && c1 <= stride && c1 <= out.len(),
        "gather_cols_avx2 columns"
    );
    let n = c1 - c0;
    // Columns kept in the last register.
    let lanes = (n + 7) % 8 + 1;
    macro_rules! block {
        ($v:literal) => {
            if lanes == 8 {
                gather_block_avx2::<$v, false>(m, stride, picks, init, out, add, c0, 8)
            } else {
                gather_block_avx2::<$v, true>(m, stride, picks, init, out, add, c0, lanes)
            }
        };
    }
    // SAFETY: the caller's contract: every register's kept columns lie in c0..c1.
    unsafe {
        match n.div_ceil(8) {
            0 => {}
            1 => block!(1),
            2 => block!(2),
            3 => block!(3),
            4 => block!(4),
            5 => block!(5),
            6 => block!(6),
            7 => block!(7),
            _ => block!(8),
        }
    }
}

/// Where the AVX2 sums' accumulators start.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
enum Init<'a> {
    /// At 0.
    Zero,
    /// At the start's entries (the bias of a forward sum), as the plain loop copies them (a −0
    /// bias stays −0 on a row with no on-entries).
    Start(&'a [f32]),
    /// At `out`'s entries, as a previous call on the same columns left them: a sum carried on
    /// over the next picks, with the same bits as had it been held in registers throughout.
    Out,
}

/// V registers of 8 columns from column c0; with `MASKED`, only the last register's first
/// `lanes` columns are read (masked loads, which touch no memory in the other lanes) and written.
///
/// # Safety
/// AVX2; the kept columns (c0..c0 + 8(V − 1) + `lanes`) inside `out`, the start and every picked
/// row of `m`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
#[allow(clippy::too_many_arguments)]
unsafe fn gather_block_avx2<const V: usize, const MASKED: bool>(
    m: &[f32],
    stride: usize,
    picks: &[u32],
    init: Init<'_>,
    out: &mut [f32],
    add: bool,
    c0: usize,
    lanes: usize,
) {
    use std::arch::x86_64::*;
    debug_assert!(lanes == 8 || (MASKED && lanes < 8), "gather_block_avx2 lanes");
    let keep = _mm256_cmpgt_epi32(_mm256_set1_epi32(lanes as i32), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    // Register v's 8 columns from p: a plain load, or the last register's kept lanes.
    // SAFETY (the closure's callers): p + the kept lanes inside one slice, by the caller's contract.
    let load = |p: *const f32, v: usize| unsafe {
        if MASKED && v == V - 1 { _mm256_maskload_ps(p, keep) } else { _mm256_loadu_ps(p) }
    };
    let mut acc = [_mm256_setzero_ps(); V];
    // SAFETY (all loads and stores): inside the slices by the caller's contract.
    unsafe {
        match init {
            Init::Zero => {}
            Init::Start(s) => {
                for (v, a) in acc.iter_mut().enumerate() {
                    *a = load(s.as_ptr().add(c0 + 8 * v), v);
                }
            }
            Init::Out => {
                for (v, a) in acc.iter_mut().enumerate() {
                    *a = load(out.as_ptr().add(c0 + 8 * v), v);
                }
            }
        }
        for &r in picks {
            let row = m.as_ptr().add(r as usize * stride + c0);
            for (v, a) in acc.iter_mut().enumerate() {
                *a = _mm256_add_ps(*a, load(row.add(8 * v), v));
            }
        }
        let dst = out.as_mut_ptr().add(c0);
        for (v, a) in acc.iter().enumerate() {
            let mut a = *a;
            if add {
                a = _mm256_add_ps(load(dst.add(8 * v), v), a);
            }
            if MASKED && v == V - 1 {
                _mm256_maskstore_ps(dst.add(8 * v), keep, a);
            } else {
                _mm256_storeu_ps(dst.add(8 * v), a);
            }
        }
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
            // The sums stay AVX2 on an AVX-512 CPU: AVX-512 sums were faster alone but not in the
            // training step (docs/performance.md).
            #[cfg(target_arch = "x86_64")]
            if let (Some(w), Some(bs), true) = (as_f32(w), as_f32(bs), cpu_width() >= Width::Avx2) {
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
            if let (Some(dy), true) = (as_f32(dy), cpu_width() >= Width::Avx2) {
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

    /// The pattern as plain lists: rows' on-columns, columns' on-rows, each row's chunk starts.
    fn pattern(s: &BinaryInput) -> (Vec<Vec<u32>>, Vec<Vec<u32>>, Vec<usize>) {
        let (b, i) = s.dim();
        (
            (0..b).map(|r| s.row(r).to_vec()).collect(),
            (0..i).map(|c| s.col(c).to_vec()).collect(),
            s.row_chunk.clone(),
        )
    }

    /// The fused AVX2 scan (f32 rows, one block of memory each) and the plain scan (the same
    /// batch in f64) against the lists read off the dense batch one entry at a time: rows and
    /// columns around the 8-entry compares, the 32-row words of the bit matrix and the 96-column
    /// chunks, densities 0 to 1, some off entries −0. With a limit, on buffers sized to it:
    /// exactly nnz is taken, nnz − 1 refused and emptied.
    #[test]
    fn the_fused_scan_finds_the_pattern_entry_by_entry_at_every_shape() {
        let mut rng = StdRng::seed_from_u64(29);
        let mut fused = BinaryInput::default();
        let mut plain = BinaryInput::default();
        for b in [1, 2, 31, 32, 33, 65, 128, 130] {
            for i in [0, 1, 7, 8, 9, 95, 96, 97, 104, 200, 784] {
                for p in [0.0, 0.13, 0.5, 1.0] {
                    let mut x = Array2::from_shape_simple_fn((b, i), || f32::from(rng.random::<f64>() < p));
                    // Some off entries −0 (it counts as off), in the 8-lane compares and the tail.
                    x.indexed_iter_mut()
                        .filter(|((r, c), v)| **v == 0.0 && (r + c) % 5 == 0)
                        .for_each(|(_, v)| *v = -0.0);
                    let rows: Vec<Vec<u32>> = (0..b)
                        .map(|r| (0..i).filter(|&c| x[(r, c)] == 1.0).map(|c| c as u32).collect())
                        .collect();
                    let cols: Vec<Vec<u32>> = (0..i)
                        .map(|c| (0..b).filter(|&r| x[(r, c)] == 1.0).map(|r| r as u32).collect())
                        .collect();
                    let mut chunks = Vec::new();
                    let mut start = 0;
                    for row in &rows {
                        for k in 0..row_chunks(i) {
                            chunks
                                .push(start + row.iter().filter(|&&c| (c as usize) < k * ROW_CHUNK).count());
                        }
                        start += row.len();
                        chunks.push(start);
                    }
                    let want = (rows, cols, chunks);
                    assert!(fused.scan(x.view()), "{b} × {i}, p = {p}");
                    assert_eq!(pattern(&fused), want, "fused, {b} × {i}, p = {p}");
                    assert!(plain.scan(x.mapv(f64::from).view()));
                    assert_eq!(pattern(&plain), want, "plain, {b} × {i}, p = {p}");
                    // With a limit, on fresh buffers sized to it (the last 8-index store at the
                    // buffer's end): exactly nnz is taken, nnz − 1 refused and emptied.
                    let nnz = fused.nnz();
                    let mut exact = BinaryInput::default();
                    assert!(exact.scan_at_most(x.view(), nnz) && pattern(&exact) == want);
                    assert_eq!(exact.buffer_entries(), 2 * (nnz + SLACK));
                    if nnz > 0 {
                        let mut short = BinaryInput::default();
                        assert!(!short.scan_at_most(x.view(), nnz - 1), "{b} × {i}, p = {p}: limit");
                        assert_eq!((short.dim(), short.nnz(), short.row_chunk.len()), ((0, 0), 0, 0));
                    }
                }
            }
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
    fn the_vector_kernels_are_bit_identical_to_the_plain_loop() {
        // The AVX2 sums add the same terms in the same order as forward_body and
        // backward_body compiled without them, so every bit agrees; widths 400 (a head block
        // when the arrays start off a cache line, then blocks of 64), 1..=70 (every masked
        // last register) and 130.
        let mut rng = StdRng::seed_from_u64(9);
        for o in (1..=70).chain([130, 400]) {
            let (b, i) = (11, 90);
            let x = batch(b, i, 0.3, &mut rng);
            let w = Array2::from_shape_simple_fn((i, o), || rng.random_range(-1.0f32..1.0));
            let bias = Array1::from_shape_simple_fn(o, || rng.random_range(-1.0f32..1.0));
            let d_y = Array2::from_shape_simple_fn((b, o), || rng.random_range(-1.0f32..1.0));
            let start = Array2::from_shape_simple_fn((i, o), || rng.random_range(-1.0f32..1.0));
            let mut s = BinaryInput::default();
            assert!(s.scan(x.view()));
            let (mut fast, mut plain) = (Array2::zeros((b, o)), Array2::<f32>::zeros((b, o)));
            binary_linear_forward_into(&s, w.view(), bias.view(), fast.view_mut());
            forward_body(&s, w.as_slice().unwrap(), bias.as_slice().unwrap(), plain.as_slice_mut().unwrap());
            assert!(fast.iter().zip(&plain).all(|(a, c)| a.to_bits() == c.to_bits()), "forward, O = {o}");
            let (mut fast, mut plain) = (start.clone(), start.clone());
            let mut db = Array1::zeros(o);
            binary_linear_backward_into(&s, d_y.view(), fast.view_mut(), db.view_mut());
            backward_body(&s, d_y.as_slice().unwrap(), plain.as_slice_mut().unwrap(), o);
            assert!(fast.iter().zip(&plain).all(|(a, c)| a.to_bits() == c.to_bits()), "backward, O = {o}");
        }
    }

    #[test]
    fn the_vector_kernels_keep_their_bits_at_every_alignment_and_across_row_chunks() {
        // W and ∂y as views at 0..16 floats past a cache line (every head of `column_blocks`,
        // and its absence), widths that are multiples of 16 (aligned rows) or not, and I = 250
        // (three chunks of ROW_CHUNK input rows, the forward's sums carried in y between them).
        let mut rng = StdRng::seed_from_u64(10);
        let (b, i) = (13, 250);
        for o in [16, 17, 48, 64, 80, 400] {
            let x = batch(b, i, 0.3, &mut rng);
            let mut s = BinaryInput::default();
            assert!(s.scan(x.view()));
            // Every fifth bias −0: row 0 of the batch is all off, so its y is the bias, sign kept.
            let bias =
                Array1::from_shape_fn(o, |c| if c % 5 == 0 { -0.0 } else { rng.random_range(-1.0f32..1.0) });
            let start = Array2::from_shape_simple_fn((i, o), || rng.random_range(-1.0f32..1.0));
            let w_buf: Vec<f32> = (0..i * o + 32).map(|_| rng.random_range(-1.0f32..1.0)).collect();
            let dy_buf: Vec<f32> = (0..b * o + 32).map(|_| rng.random_range(-1.0f32..1.0)).collect();
            let line = |p: *const f32| (64 - p as usize % 64) % 64 / 4;
            for off in 0..16 {
                let (wo, dyo) = (line(w_buf.as_ptr()) + off, line(dy_buf.as_ptr()) + off);
                let w = ArrayView2::from_shape((i, o), &w_buf[wo..wo + i * o]).unwrap();
                let d_y = ArrayView2::from_shape((b, o), &dy_buf[dyo..dyo + b * o]).unwrap();
                assert_eq!((w.as_ptr() as usize % 64, d_y.as_ptr() as usize % 64), (4 * off, 4 * off));
                let (mut fast, mut plain) = (Array2::zeros((b, o)), Array2::<f32>::zeros((b, o)));
                binary_linear_forward_into(&s, w, bias.view(), fast.view_mut());
                forward_body(
                    &s,
                    w.as_slice().unwrap(),
                    bias.as_slice().unwrap(),
                    plain.as_slice_mut().unwrap(),
                );
                let same = fast.iter().zip(&plain).all(|(a, c)| a.to_bits() == c.to_bits());
                assert!(same, "forward, O = {o}, {off} floats past a line");
                let (mut fast, mut plain) = (start.clone(), start.clone());
                let mut db = Array1::zeros(o);
                binary_linear_backward_into(&s, d_y, fast.view_mut(), db.view_mut());
                backward_body(&s, d_y.as_slice().unwrap(), plain.as_slice_mut().unwrap(), o);
                let same = fast.iter().zip(&plain).all(|(a, c)| a.to_bits() == c.to_bits());
                assert!(same, "backward, O = {o}, {off} floats past a line");
            }
        }
    }

    #[test]
    fn auto_takes_the_on_entries_path_up_to_the_threshold_density_only() {
        // The rule: nnz ≤ ⌊t·B·I⌋ with t = AUTO_MAX_DENSITY_PERCENT / 100.
        let (b, i) = (50, 100);
        let max = InputPath::Auto.max_on_entries(b, i).unwrap();
        assert_eq!(max, AUTO_MAX_DENSITY_PERCENT * b * i / 100);
        assert_eq!(InputPath::Dense.max_on_entries(b, i), None);
        assert_eq!(InputPath::Binary.max_on_entries(b, i), Some(b * i));
        // Both sides: exactly max on-entries is read by its on-entries, one more is not.
        let mut x = Array2::<f32>::zeros((b, i));
        for k in 0..max {
            x[(k % b, k / b)] = 1.0;
        }
        let mut s = BinaryInput::default();
        assert!(s.scan_at_most(x.view(), max));
        assert_eq!(s.nnz(), max);
        x[(max % b, max / b)] = 1.0;
        assert!(!s.scan_at_most(x.view(), max));
        assert_eq!((s.dim(), s.nnz()), ((0, 0), 0));
        assert!(s.scan_at_most(x.view(), InputPath::Binary.max_on_entries(b, i).unwrap()));
        assert_eq!(s.nnz(), max + 1);
        // A grey level is refused whatever the count, in the f32 fast path and in f64.
        x[(3, 97)] = 0.5;
        assert!(!s.scan_at_most(x.view(), usize::MAX));
        assert!(!s.scan_at_most(x.mapv(f64::from).view(), usize::MAX));
        // The buffers grow to the limit only (not B·I) when a limit is given (and the slack).
        let mut lazy = BinaryInput::default();
        x[(3, 97)] = 0.0;
        x[(max % b, max / b)] = 0.0;
        assert!(lazy.scan_at_most(x.view(), max));
        assert_eq!(lazy.buffer_entries(), 2 * (max + SLACK));
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
