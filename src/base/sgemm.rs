//! C ← A B + β C for `f32` on AVX2 + FMA, with a 6 × 16 register tile, giving **the same bits as
//! matrixmultiply** (the crate ndarray's products call).
//!
//! matrixmultiply's AVX2 kernel holds an 8 × 8 tile of C in eight registers and rotates A with
//! three shuffles per eight FMAs. This kernel holds 6 rows × 16 columns of C in twelve registers
//! and broadcasts A from memory (a load, no shuffle), BLIS's shape for AVX2 cores. On the AMD EPYC
//! where it was written, the evaluation's 1000 × 400 × 784 product ran at 90–93% of the FMA peak
//! with it and 78–86% with matrixmultiply (see [`pays`]).
//!
//! The numbers are matrixmultiply's because every element of C is computed the same way
//! (its `gemm_loop` and `kernel_x86_avx::<FusedMulAdd>`, version 0.3):
//!
//! ```text
//! k is cut into blocks of KC = 256 (the last one shorter); for block ℓ:
//!   s    = fma(a_{i,p}, b_{p,j}, s)  for p through the block in order, from s = +0
//!   C_ij ← s + 0                      if ℓ = 0 and β = 0 (C not read)
//!   C_ij ← (β' C_ij) + s              otherwise, one rounding, with β' = β for ℓ = 0 and 1 after
//! ```
//! The tile shape only decides which elements share registers, not the order of any sum.
//! matrixmultiply sends the elements past its last whole 8 × 8 tile through a buffer (s + 0 there,
//! then added to β′C); that changes nothing, because s is never −0: it starts at +0, and an exact
//! zero sum rounds to +0. (The test `signed_zeros_match_at_every_edge` holds this to the bit.)
//!
//! A product with at most 24 columns (N ≤ 24) takes a second, skinny kernel instead: B packed into
//! rows of 24, A read in place, 3 rows × 24 columns of C in nine registers; the same sums.
//!
//! Used only where matrixmultiply itself would take its FMA kernel (AVX2 and FMA without AVX-512F,
//! on x86-64), for α = 1, and on one thread ([`crate::base::parallel::gemm`] splits a product
//! before calling this); everything else goes to ndarray's `general_mat_mul` unchanged.
//! [`crate::base::parallel::gemm`] sends it only the products where it measured faster ([`pays`]).

use std::any::TypeId;
use std::cell::RefCell;

use ndarray::{ArrayView1, ArrayView2, ArrayViewMut2, NdFloat};

/// Whether [`crate::base::parallel::gemm`] gives this product to this module's kernels:
///
/// - the blocked 6 × 16 kernel when M ≥ [`BLOCKED_MIN_M`], K ≥ [`BLOCKED_MIN_K`] and
///   N ≥ [`BLOCKED_MIN_N`], A and B in any layout (the training step's three decoder products,
///   the evaluation's decoder product, a dense first layer's forward and ∂W);
/// - the skinny kernel when N ≤ 24, A is stored row by row and M and K are at least
///   [`SKINNY_MIN_SIDE`] (a VAE's 20-wide heads, the ∂z of its decoder's first layer).
///
/// Measured on an AMD EPYC (Zen 3 class, 2 vCPUs), one thread pinned, interleaved with
/// matrixmultiply (session 13, a quiet host, medians of 15 runs, each shape in three such runs):
/// the step's decoder products at B = 128 from 82–83 to 85–87 GFLOP/s (B×400·400×784), 83–85 to
/// 88–91 (∂W, A = hᵀ) and 78–79 to 84 (∂h, B = Wᵀ, after the 8 × 8 transposes in the packing of
/// a column-major B; 75–78, slower than matrixmultiply, before them); a dense first layer's
/// 128×784·784×400 +3%, its ∂W +1–4%; 64 rows +1–2%; **32 rows −5%** (hence M ≥ 64). The evaluation's 1000 × 400 × 784:
/// 90–93 against 78–86 GFLOP/s (session 10). A narrow N (40, a partial 16-column panel) was
/// slower every time (57 against 80 GFLOP/s): hence N ≥ 256. The skinny kernel: 128 × 400 × 20
/// with B row-major 42–43 → 33 µs, with B transposed 44 → 35 µs; the heads' weight gradients
/// (A = hᵀ, column by column) were even (34 against 33 µs) and stay with matrixmultiply.
///
/// # Shapes
/// `a`: `M × K`, `b`: `K × N`.
pub fn pays<F: NdFloat>(a: &ArrayView2<F>, b: &ArrayView2<F>) -> bool {
    let (m, k, n) = (a.nrows(), a.ncols(), b.ncols());
    let blocked = m >= BLOCKED_MIN_M && k >= BLOCKED_MIN_K && n >= BLOCKED_MIN_N;
    let skinny = n <= SKINNY_N && a.strides()[1] == 1 && m >= SKINNY_MIN_SIDE && k >= SKINNY_MIN_SIDE;
    blocked || skinny
}

/// The smallest M [`pays`] gives the blocked kernel.
pub const BLOCKED_MIN_M: usize = 64;
/// The smallest K [`pays`] gives the blocked kernel.
pub const BLOCKED_MIN_K: usize = 128;
/// The smallest N [`pays`] gives the blocked kernel.
pub const BLOCKED_MIN_N: usize = 256;

/// The smallest M and K [`pays`] accepts for a product with N ≤ 24 columns.
pub const SKINNY_MIN_SIDE: usize = 64;

/// Rows of C per register tile.
const MR: usize = 6;
/// Columns of C per register tile (two 8-lane registers).
const NR: usize = 16;
/// Depth of a k-block: matrixmultiply's `S_KC`, which the bits depend on.
const KC: usize = 256;
/// Rows of A per packed block (96 × 256 × 4 B = 96 KiB: it stays in L2 while B's panels pass).
const MC: usize = 96;
/// Columns of B per packed block (256 × 1024 × 4 B = 1 MiB).
const NC: usize = 1024;

/// Whether [`gemm`] runs here: x86-64 with AVX2 and FMA but without AVX-512F, exactly where
/// matrixmultiply takes the FMA kernel whose bits this one reproduces. (Its `avx512` feature is on
/// in this build, through nalgebra's defaults, so an AVX-512 CPU gets its 16 × 16 AVX-512 kernel,
/// which this 256-bit one would not beat.)
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
            && !is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// C ← α A B + β C with this module's kernel when it applies (`F` = `f32`, α = 1, [`available`],
/// no dimension 0); returns `false`, with C untouched, when it does not, so the caller can call
/// `general_mat_mul` instead.
///
/// # Shapes
/// `a`: `M × K`, `b`: `K × N`, `c`: `M × N` (any strides; C's must not alias).
#[track_caller]
pub fn gemm<F: NdFloat>(
    alpha: F,
    a: &ArrayView2<F>,
    b: &ArrayView2<F>,
    beta: F,
    c: &mut ArrayViewMut2<F>,
) -> bool {
    gemm_from(alpha, a, b, beta, None, c)
}

/// C ← bias + A B, the bias added to every row: the bits of filling each row of C with `bias`
/// and then [`gemm`] with β = 1 (a linear layer's forward pass), with the bias read in the first
/// k-block's update instead of from a filled C (one pass over C fewer). Returns `false`, with C
/// untouched, where [`gemm`] would, or when `bias` is not contiguous.
///
/// # Shapes
/// `a`: `M × K`, `b`: `K × N`, `bias`: `N`, `c`: `M × N`.
#[track_caller]
pub fn gemm_bias<F: NdFloat>(
    a: &ArrayView2<F>,
    b: &ArrayView2<F>,
    bias: &ArrayView1<F>,
    c: &mut ArrayViewMut2<F>,
) -> bool {
    assert_eq!(bias.len(), b.ncols(), "gemm_bias: bias {} for B {:?}", bias.len(), b.dim());
    if bias.len() > 1 && bias.strides()[0] != 1 {
        return false;
    }
    gemm_from(F::one(), a, b, F::one(), Some(bias.as_ptr() as *const f32), c)
}

/// [`gemm`], the first k-block's β C replaced by the row `init` (N numbers) when given.
#[track_caller]
fn gemm_from<F: NdFloat>(
    alpha: F,
    a: &ArrayView2<F>,
    b: &ArrayView2<F>,
    beta: F,
    init: Option<*const f32>,
    c: &mut ArrayViewMut2<F>,
) -> bool {
    let ((m, k), (k2, n)) = (a.dim(), b.dim());
    assert!(k == k2 && c.dim() == (m, n), "gemm: A {:?} · B {:?} into C {:?}", a.dim(), b.dim(), c.dim());
    if TypeId::of::<F>() != TypeId::of::<f32>()
        || alpha != F::one()
        || m == 0
        || n == 0
        || k == 0
        || !available()
    {
        return false;
    }
    #[cfg(target_arch = "x86_64")]
    {
        let beta = beta.to_f32().expect("an f32 converts to f32");
        let (sa, sb, sc) = (a.strides(), b.strides(), c.strides());
        let (sa, sb, sc) = ([sa[0], sa[1]], [sb[0], sb[1]], [sc[0], sc[1]]);
        let (pa, pb, pc) = (a.as_ptr() as *const f32, b.as_ptr() as *const f32, c.as_mut_ptr() as *mut f32);
        // SAFETY: F is f32 (checked above), so the pointers address f32 elements; the views'
        // shapes and strides bound every access (`init`: N contiguous numbers, by the callers);
        // AVX2 and FMA are present (`available`).
        unsafe {
            if n <= SKINNY_N {
                gemm_skinny_avx2(m, k, n, pa, sa, pb, sb, beta, init, pc, sc)
            } else {
                gemm_avx2(m, k, n, pa, sa, pb, sb, beta, init, pc, sc)
            }
        };
        true
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (beta, init);
        false
    }
}

/// A reusable, 32-byte-aligned buffer of `f32` for the packed panels of one thread.
#[derive(Default)]
struct Packs {
    a: Vec<f32>,
    b: Vec<f32>,
}

thread_local! {
    static PACKS: RefCell<Packs> = RefCell::new(Packs::default());
}

/// The 32-byte-aligned start of a buffer of at least `len` floats (grown once, then reused).
fn aligned(buf: &mut Vec<f32>, len: usize) -> *mut f32 {
    if buf.len() < len + 8 {
        buf.resize(len + 8, 0.0);
    }
    let p = buf.as_mut_ptr();
    // SAFETY: at most 7 floats in, inside the len + 8 allocated.
    unsafe { p.add(p.align_offset(32)) }
}

/// The blocked product: pack B's k-block into 16-column panels, A's into 6-row panels, and run
/// the register tile over them (BLIS's loop order: columns of B, k, rows of A, then the tiles).
///
/// # Safety
/// AVX2 and FMA; `a` addresses an M × K matrix with strides `sa`, `b` K × N with `sb`, `c` M × N
/// with `sc`, C not overlapping A or B and no two of its elements at one address.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_avx2(
    m: usize,
    k: usize,
    n: usize,
    a: *const f32,
    sa: [isize; 2],
    b: *const f32,
    sb: [isize; 2],
    beta: f32,
    init: Option<*const f32>,
    c: *mut f32,
    sc: [isize; 2],
) {
    PACKS.with(|packs| {
        let mut packs = packs.borrow_mut();
        let packs = &mut *packs;
        let a_pack = aligned(&mut packs.a, MC.min(m.div_ceil(MR) * MR) * KC.min(k));
        let b_pack = aligned(&mut packs.b, NC.min(n.div_ceil(NR) * NR) * KC.min(k));
        for jc in (0..n).step_by(NC) {
            let nc = NC.min(n - jc);
            for (block, pc) in (0..k).step_by(KC).enumerate() {
                let kc = KC.min(k - pc);
                let beta_block = if block == 0 { beta } else { 1.0 };
                let init_block = if block == 0 { init.map(|r| r.wrapping_add(jc)) } else { None };
                // SAFETY (the whole block): offsets stay inside the matrices by the caller's
                // contract; the packs hold a block of MC × KC and KC × NC rounded up to whole panels.
                unsafe {
                    pack_b(kc, nc, b.offset(pc as isize * sb[0] + jc as isize * sb[1]), sb, b_pack);
                    for ic in (0..m).step_by(MC) {
                        let mc = MC.min(m - ic);
                        pack_a(mc, kc, a.offset(ic as isize * sa[0] + pc as isize * sa[1]), sa, a_pack);
                        for jr in (0..nc).step_by(NR) {
                            for ir in (0..mc).step_by(MR) {
                                let tile = Tile {
                                    row: ic + ir,
                                    col: jc + jr,
                                    rows: MR.min(mc - ir),
                                    cols: NR.min(nc - jr),
                                };
                                let init = init_block.map(|r| r.wrapping_add(jr));
                                kernel(
                                    kc,
                                    a_pack.add(ir * kc),
                                    b_pack.add(jr * kc),
                                    beta_block,
                                    init,
                                    c,
                                    sc,
                                    tile,
                                );
                            }
                        }
                    }
                }
            }
        }
    });
}

/// The widest B the skinny product takes (three 8-lane registers per row of C).
const SKINNY_N: usize = 24;
/// Rows of C per register tile of the skinny product: 3 × 3 accumulators, 3 registers of B and a
/// broadcast (13 of the 16 AVX2 registers; with 4 rows the compiler kept an accumulator on the
/// stack, and the product ran at half the speed).
const SKINNY_ROWS: usize = 3;

/// C ← A B + β C (or C ← init + A B, `init` a row added to every row of C) for N ≤ [`SKINNY_N`]
/// (a VAE's 20-wide heads): each k-block of B packed into rows of 24 (zeros past N); A read
/// where it lies, without packing (for a narrow B, packing A would cost as much as the product:
/// matrixmultiply packs the whole of A for it). Tiles of 3 rows × 24 columns; each element's sum
/// is the module doc's (FMA over each k-block in order from +0, the blocks applied to C in
/// order), so the same bits.
///
/// # Shapes
/// A: `m × k` with strides `sa`, B: `k × n` with `sb`, C: `m × n` with `sc`, `init`: `n`;
/// the pack: [`KC`] × 24.
///
/// # Safety
/// As [`gemm_avx2`], and N ≤ [`SKINNY_N`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_skinny_avx2(
    m: usize,
    k: usize,
    n: usize,
    a: *const f32,
    sa: [isize; 2],
    b: *const f32,
    sb: [isize; 2],
    beta: f32,
    init: Option<*const f32>,
    c: *mut f32,
    sc: [isize; 2],
) {
    debug_assert!(n <= SKINNY_N, "gemm_skinny_avx2: N = {n}");
    PACKS.with(|packs| {
        let mut packs = packs.borrow_mut();
        let b_pack = aligned(&mut packs.b, KC.min(k) * SKINNY_N);
        // SAFETY (the whole block): B's k × n elements by the caller's contract; the pack holds
        // KC rows of 24; A's and C's rows i0.. < m, A's columns pc.. < k.
        unsafe {
            // One k-block of B at a time, over every row tile: each element of C still receives
            // its blocks in order.
            for (block, pc) in (0..k).step_by(KC).enumerate() {
                let kc = KC.min(k - pc);
                let b_rows = b.offset(pc as isize * sb[0]);
                for p in 0..kc {
                    std::ptr::write_bytes(b_pack.add(p * SKINNY_N + n), 0, SKINNY_N - n);
                }
                if sb[1] == 1 {
                    for p in 0..kc {
                        std::ptr::copy_nonoverlapping(
                            b_rows.offset(p as isize * sb[0]),
                            b_pack.add(p * SKINNY_N),
                            n,
                        );
                    }
                } else {
                    // Columns of B down k (Bᵀ stored row by row: each column contiguous when
                    // sb[0] = 1).
                    for j in 0..n {
                        let col = b_rows.offset(j as isize * sb[1]);
                        for p in 0..kc {
                            *b_pack.add(p * SKINNY_N + j) = *col.offset(p as isize * sb[0]);
                        }
                    }
                }
                let beta_block = if block == 0 { beta } else { 1.0 };
                let init_block = if block == 0 { init } else { None };
                for i0 in (0..m).step_by(SKINNY_ROWS) {
                    let a_block = a.offset(i0 as isize * sa[0] + pc as isize * sa[1]);
                    let tile = Tile { row: i0, col: 0, rows: SKINNY_ROWS.min(m - i0), cols: n };
                    match tile.rows {
                        3 => skinny_tile::<3>(kc, a_block, sa, b_pack, beta_block, init_block, c, sc, tile),
                        2 => skinny_tile::<2>(kc, a_block, sa, b_pack, beta_block, init_block, c, sc, tile),
                        _ => skinny_tile::<1>(kc, a_block, sa, b_pack, beta_block, init_block, c, sc, tile),
                    }
                }
            }
        }
    });
}

/// One k-block of R rows of the skinny product: s = Σ_p a_p ⊗ b_p over the block's kc steps in
/// order (FMA, from +0), then C ← β C + s (or C ← init + s) for the tile's `cols` columns, as
/// [`kernel`] writes a tile.
///
/// # Shapes
/// `a`: R rows × kc (strides `sa`), `b`: kc × 24 packed, the tile of C: R × `tile.cols`.
///
/// # Safety
/// AVX2 and FMA; `a`: the tile's rows at the block's first k, strides `sa`; `b`: kc rows of 24
/// packed (32-byte aligned); the tile's part of C addressable.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
#[inline]
unsafe fn skinny_tile<const R: usize>(
    kc: usize,
    a: *const f32,
    sa: [isize; 2],
    b: *const f32,
    beta: f32,
    init: Option<*const f32>,
    c: *mut f32,
    sc: [isize; 2],
    tile: Tile,
) {
    use std::arch::x86_64::*;
    let mut s = [[_mm256_setzero_ps(); SKINNY_N / 8]; R];
    // SAFETY: kc steps of A's R rows and of the packed B, by the caller's contract.
    unsafe {
        let rows: [*const f32; R] = std::array::from_fn(|r| a.offset(r as isize * sa[0]));
        for p in 0..kc {
            let bp = b.add(p * SKINNY_N);
            let (b0, b1, b2) = (_mm256_load_ps(bp), _mm256_load_ps(bp.add(8)), _mm256_load_ps(bp.add(16)));
            for (row, acc) in rows.iter().zip(s.iter_mut()) {
                let ar = _mm256_broadcast_ss(&*row.offset(p as isize * sa[1]));
                acc[0] = _mm256_fmadd_ps(ar, b0, acc[0]);
                acc[1] = _mm256_fmadd_ps(ar, b1, acc[1]);
                acc[2] = _mm256_fmadd_ps(ar, b2, acc[2]);
            }
        }
    }
    // SAFETY (C and init): the tile's rows and its `cols` columns, inside C by the contract.
    unsafe {
        // Whole registers inside C's contiguous rows are written as vectors (the same operations
        // lane by lane), the rest one number at a time.
        let whole = if sc[1] == 1 { tile.cols / 8 } else { 0 };
        let zero = _mm256_setzero_ps();
        let mut buf = [0.0f32; SKINNY_N];
        for (r, acc) in s.iter().enumerate() {
            let i = tile.row + r;
            let row = c.offset(i as isize * sc[0]);
            for (h, &v) in acc.iter().enumerate() {
                if h < whole {
                    let p = row.add(8 * h);
                    let out = if let Some(init) = init {
                        _mm256_add_ps(_mm256_loadu_ps(init.add(8 * h)), v)
                    } else if beta == 0.0 {
                        _mm256_add_ps(v, zero)
                    } else {
                        let old = _mm256_loadu_ps(p);
                        let old = if beta == 1.0 { old } else { _mm256_mul_ps(old, _mm256_set1_ps(beta)) };
                        _mm256_add_ps(old, v)
                    };
                    _mm256_storeu_ps(p, out);
                } else {
                    _mm256_storeu_ps(buf.as_mut_ptr().add(8 * h), v);
                }
            }
            for (j, &sum) in buf.iter().enumerate().take(tile.cols).skip(8 * whole) {
                let p = c.offset(i as isize * sc[0] + j as isize * sc[1]);
                *p = match init {
                    Some(init) => *init.add(j) + sum,
                    None if beta == 0.0 => sum + 0.0,
                    None => beta_times(beta, *p) + sum,
                };
            }
        }
    }
}

/// Where a register tile lands in C, and how much of it is inside C.
#[derive(Clone, Copy)]
struct Tile {
    row: usize,
    col: usize,
    rows: usize,
    cols: usize,
}

/// B's `kc × nc` block into panels of 16 columns: panel q holds, for p = 0..kc, the 16 numbers
/// b[p, 16q..16q + 16] (zeros past column nc).
///
/// # Safety
/// `b` addresses a kc × nc matrix with strides `sb`; `out` holds kc × ⌈nc/16⌉·16 floats.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn pack_b(kc: usize, nc: usize, b: *const f32, sb: [isize; 2], out: *mut f32) {
    let mut dst = out;
    for j0 in (0..nc).step_by(NR) {
        let w = NR.min(nc - j0);
        // SAFETY: inside the block and the pack by the contract.
        unsafe {
            if sb[1] == 1 {
                // Rows of B contiguous: 16 numbers per step of p (zeros after the last column).
                for p in 0..kc {
                    let src = b.offset(p as isize * sb[0] + j0 as isize);
                    if w == NR {
                        std::ptr::copy_nonoverlapping(src, dst.add(p * NR), NR);
                    } else {
                        for j in 0..NR {
                            *dst.add(p * NR + j) = if j < w { *src.add(j) } else { 0.0 };
                        }
                    }
                }
            } else if sb[0] == 1 && w == NR {
                // Columns of B contiguous (Bᵀ stored row by row): 8 × 8 blocks transposed in
                // registers, then the steps of p left over one by one.
                let whole = kc / 8 * 8;
                for p0 in (0..whole).step_by(8) {
                    for half in 0..2 {
                        let cols: [*const f32; 8] = std::array::from_fn(|q| {
                            b.offset((j0 + 8 * half + q) as isize * sb[1] + p0 as isize)
                        });
                        transpose_8x8(cols, dst.add(p0 * NR + 8 * half), NR);
                    }
                }
                for j in 0..NR {
                    let src = b.offset((j0 + j) as isize * sb[1]);
                    for p in whole..kc {
                        *dst.add(p * NR + j) = *src.add(p);
                    }
                }
            } else {
                // Columns of B strided: walk each column down p.
                for j in 0..NR {
                    if j < w {
                        let src = b.offset((j0 + j) as isize * sb[1]);
                        for p in 0..kc {
                            *dst.add(p * NR + j) = *src.offset(p as isize * sb[0]);
                        }
                    } else {
                        for p in 0..kc {
                            *dst.add(p * NR + j) = 0.0;
                        }
                    }
                }
            }
            dst = dst.add(kc * NR);
        }
    }
}

/// Eight rows of 8 floats (`rows[q]`, q = 0..8) written as their transpose: the 8 numbers
/// rows[0..8][t] at `out + t·stride`, t = 0..8. A copy: no arithmetic.
///
/// # Shapes
/// In: 8 × 8 (8 row pointers); out: 8 × 8 with row stride `stride`.
///
/// # Safety
/// AVX2; 8 floats readable at each of `rows`, 8 writable at each `out + t·stride`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn transpose_8x8(rows: [*const f32; 8], out: *mut f32, stride: usize) {
    use std::arch::x86_64::*;
    // SAFETY: the loads and stores stay inside what the caller's contract names.
    unsafe {
        let r: [__m256; 8] = std::array::from_fn(|q| _mm256_loadu_ps(rows[q]));
        let t0 = _mm256_unpacklo_ps(r[0], r[1]);
        let t1 = _mm256_unpackhi_ps(r[0], r[1]);
        let t2 = _mm256_unpacklo_ps(r[2], r[3]);
        let t3 = _mm256_unpackhi_ps(r[2], r[3]);
        let t4 = _mm256_unpacklo_ps(r[4], r[5]);
        let t5 = _mm256_unpackhi_ps(r[4], r[5]);
        let t6 = _mm256_unpacklo_ps(r[6], r[7]);
        let t7 = _mm256_unpackhi_ps(r[6], r[7]);
        let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
        let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
        let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
        let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
        let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
        let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
        let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
        let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
        let cols = [
            _mm256_permute2f128_ps::<0x20>(u0, u4),
            _mm256_permute2f128_ps::<0x20>(u1, u5),
            _mm256_permute2f128_ps::<0x20>(u2, u6),
            _mm256_permute2f128_ps::<0x20>(u3, u7),
            _mm256_permute2f128_ps::<0x31>(u0, u4),
            _mm256_permute2f128_ps::<0x31>(u1, u5),
            _mm256_permute2f128_ps::<0x31>(u2, u6),
            _mm256_permute2f128_ps::<0x31>(u3, u7),
        ];
        for (t, c) in cols.iter().enumerate() {
            _mm256_storeu_ps(out.add(t * stride), *c);
        }
    }
}

/// A's `mc × kc` block into panels of 6 rows: panel q holds, for p = 0..kc, the 6 numbers
/// a[6q..6q + 6, p] (zeros past row mc).
///
/// # Safety
/// `a` addresses an mc × kc matrix with strides `sa`; `out` holds ⌈mc/6⌉·6 × kc floats.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn pack_a(mc: usize, kc: usize, a: *const f32, sa: [isize; 2], out: *mut f32) {
    let mut dst = out;
    for i0 in (0..mc).step_by(MR) {
        let h = MR.min(mc - i0);
        // SAFETY: inside the block and the pack by the contract.
        unsafe {
            if h == MR {
                let rows: [*const f32; MR] = std::array::from_fn(|r| a.offset((i0 + r) as isize * sa[0]));
                for p in 0..kc {
                    for (r, row) in rows.iter().enumerate() {
                        *dst.add(r) = *row.offset(p as isize * sa[1]);
                    }
                    dst = dst.add(MR);
                }
            } else {
                for p in 0..kc {
                    for r in 0..MR {
                        *dst.add(r) = if r < h {
                            *a.offset((i0 + r) as isize * sa[0] + p as isize * sa[1])
                        } else {
                            0.0
                        };
                    }
                    dst = dst.add(MR);
                }
            }
        }
    }
}

/// One 6 × 16 tile: s = Σ_p a_p ⊗ b_p over the block's kc steps in order (FMA, from +0), then
/// C ← β C + s as the module doc says, or C ← init + s with `init` (the tile's columns of a row
/// added to every row; C not read). Only the `tile.rows × tile.cols` inside C are written.
///
/// # Safety
/// AVX2 and FMA; `a`: 6 × kc packed, `b`: kc × 16 packed (32-byte aligned); the tile's part of C
/// addressable.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
#[inline]
unsafe fn kernel(
    kc: usize,
    a: *const f32,
    b: *const f32,
    beta: f32,
    init: Option<*const f32>,
    c: *mut f32,
    sc: [isize; 2],
    tile: Tile,
) {
    use std::arch::x86_64::*;
    let mut s = [[_mm256_setzero_ps(); 2]; MR];
    // Ask for the tile's rows of C now, so they are in cache when the sums are added to them.
    for r in 0..tile.rows {
        let row = c.wrapping_offset((tile.row + r) as isize * sc[0] + tile.col as isize * sc[1]);
        // SAFETY: a prefetch never faults; the address is C's own. (Safe in newer Rust.)
        #[allow(unused_unsafe)]
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(row as *const i8);
            _mm_prefetch::<_MM_HINT_T0>(row.wrapping_offset((tile.cols - 1) as isize * sc[1]) as *const i8);
        }
    }
    // SAFETY: the packed panels hold kc steps of 6 and 16 floats.
    unsafe {
        let (mut a, mut b) = (a, b);
        for _ in 0..kc {
            let b0 = _mm256_load_ps(b);
            let b1 = _mm256_load_ps(b.add(8));
            for (r, row) in s.iter_mut().enumerate() {
                let ar = _mm256_broadcast_ss(&*a.add(r));
                row[0] = _mm256_fmadd_ps(ar, b0, row[0]);
                row[1] = _mm256_fmadd_ps(ar, b1, row[1]);
            }
            a = a.add(MR);
            b = b.add(NR);
        }
    }
    // SAFETY (stores and loads of C): rows tile.row.. and columns tile.col.. inside C, by the contract.
    unsafe {
        if tile.rows == MR && tile.cols == NR && sc[1] == 1 {
            let zero = _mm256_setzero_ps();
            for (r, row) in s.iter().enumerate() {
                let i = tile.row + r;
                let dst = c.offset(i as isize * sc[0] + tile.col as isize);
                for (h, &acc) in row.iter().enumerate() {
                    let p = dst.add(8 * h);
                    let out = if let Some(init) = init {
                        _mm256_add_ps(_mm256_loadu_ps(init.add(8 * h)), acc)
                    } else if beta == 0.0 {
                        _mm256_add_ps(acc, zero)
                    } else {
                        let old = _mm256_loadu_ps(p);
                        let old = if beta == 1.0 { old } else { _mm256_mul_ps(old, _mm256_set1_ps(beta)) };
                        _mm256_add_ps(old, acc)
                    };
                    _mm256_storeu_ps(p, out);
                }
            }
        } else {
            let mut buf = [[0.0f32; NR]; MR];
            for (row, out) in s.iter().zip(buf.iter_mut()) {
                _mm256_storeu_ps(out.as_mut_ptr(), row[0]);
                _mm256_storeu_ps(out.as_mut_ptr().add(8), row[1]);
            }
            for (r, row) in buf.iter().enumerate().take(tile.rows) {
                let i = tile.row + r;
                for (q, &acc) in row.iter().enumerate().take(tile.cols) {
                    let j = tile.col + q;
                    let p = c.offset(i as isize * sc[0] + j as isize * sc[1]);
                    *p = match init {
                        Some(init) => *init.add(q) + acc,
                        None if beta == 0.0 => acc + 0.0,
                        None => beta_times(beta, *p) + acc,
                    };
                }
            }
        }
    }
}

/// β C as matrixmultiply forms it (a product, skipped at β = 1 where it is exact).
#[inline(always)]
fn beta_times(beta: f32, c: f32) -> f32 {
    if beta == 1.0 { c } else { c * beta }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::linalg::general_mat_mul;
    use ndarray::{Array2, ShapeBuilder, s};
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn random(shape: (usize, usize), column_major: bool, rng: &mut StdRng) -> Array2<f32> {
        let mut x = Array2::zeros(shape.set_f(column_major));
        x.mapv_inplace(|_: f32| rng.random_range(-1.0f32..1.0));
        x
    }

    /// Every shape class the two kernels meet (whole and partial 6 × 16 tiles, matrixmultiply's
    /// 8 × 8 edges, k across one, two and four 256-blocks, the VAE's shapes, and N ≤ 24 for the
    /// skinny one), each operand row- or column-major, β ∈ {0, 1, 0.5}: the bits of C equal
    /// matrixmultiply's.
    #[test]
    fn the_kernel_gives_matrixmultiplys_bits() {
        if !available() {
            return it_declines_on_this_cpu();
        }
        let mut rng = StdRng::seed_from_u64(5);
        let shapes = [
            (1, 1, 1),
            (6, 16, 16),
            (7, 3, 17),
            (13, 255, 9),
            (128, 784, 400),
            (128, 400, 784),
            (400, 128, 784),
            (128, 20, 400),
            (128, 400, 40),
            (100, 257, 20),
            (97, 513, 1030),
            (1000, 400, 33),
            (128, 400, 20),
            (400, 128, 20),
            (130, 520, 24),
            (2, 300, 1),
            (64, 256, 24),
            (70, 512, 8),
        ];
        // The evaluation's decoder product, in its own layout only (it is large).
        let shapes = shapes.into_iter().map(|s| (s, 0..8)).chain([((1000, 400, 784), 0..1)]);
        for ((m, k, n), layouts) in shapes {
            for layout in layouts {
                let a = random((m, k), layout & 1 != 0, &mut rng);
                let b = random((k, n), layout & 2 != 0, &mut rng);
                for beta in [0.0f32, 1.0, 0.5] {
                    let c0 = random((m, n), layout & 4 != 0, &mut rng);
                    let mut expected = c0.clone();
                    general_mat_mul(1.0, &a, &b, beta, &mut expected);
                    let mut got = c0.clone();
                    assert!(gemm(1.0, &a.view(), &b.view(), beta, &mut got.view_mut()));
                    let same = expected.iter().zip(&got).all(|(e, g)| e.to_bits() == g.to_bits());
                    assert!(same, "{m}×{k}×{n}, layout {layout}, β = {beta}");
                }
            }
        }
    }

    /// `gemm_bias` gives the bits of filling C's rows with the bias and then `gemm` with β = 1:
    /// shapes with k in one and two 256-blocks, whole and edge tiles, N over 1024, A, B and C
    /// each row- or column-major; a bias of −0 (kept by the fill, then −0 + s) included. A
    /// strided bias is declined with C untouched.
    #[test]
    fn the_bias_read_by_the_kernel_gives_the_filled_cs_bits() {
        if !available() {
            return it_declines_on_this_cpu();
        }
        let mut rng = StdRng::seed_from_u64(11);
        let shapes = [(1, 1, 1), (7, 3, 17), (13, 300, 40), (1000, 400, 784), (9, 520, 1030), (128, 400, 20)];
        // The skinny kernel's whole registers only (N = 8, 16, 24) and a partial one.
        let skinny = [(5, 300, 8), (5, 300, 16), (7, 270, 24), (4, 9, 13)];
        for (m, k, n) in shapes.into_iter().chain(skinny) {
            for layout in [0, 1, 2, 4] {
                let a = random((m, k), layout & 1 != 0, &mut rng);
                let b = random((k, n), layout & 2 != 0, &mut rng);
                let mut bias = random((1, n), false, &mut rng).row(0).to_owned();
                bias[0] = -0.0;
                let mut expected = random((m, n), layout & 4 != 0, &mut rng);
                let mut got = expected.clone();
                for mut row in expected.rows_mut() {
                    row.assign(&bias);
                }
                general_mat_mul(1.0, &a, &b, 1.0, &mut expected);
                assert!(gemm_bias(&a.view(), &b.view(), &bias.view(), &mut got.view_mut()));
                let same = expected.iter().zip(&got).all(|(e, g)| e.to_bits() == g.to_bits());
                assert!(same, "{m}×{k}×{n}, layout {layout}");
            }
        }
        let (a, b) = (Array2::<f32>::ones((2, 3)), Array2::<f32>::ones((3, 4)));
        let wide = Array2::<f32>::ones((1, 8));
        let mut c = Array2::<f32>::from_elem((2, 4), 7.0);
        assert!(!gemm_bias(&a.view(), &b.view(), &wide.slice(s![0, ..;2]), &mut c.view_mut()));
        assert_eq!(c, Array2::<f32>::from_elem((2, 4), 7.0));
    }

    /// Zeros and their signs: all-zero products (every one −0) into C = −0, on a 9 × 9 and a
    /// 9 × 30 C (whole 8 × 8 tiles of matrixmultiply's and its edges; the skinny and the blocked
    /// kernel), k within one block and across two, β = 0 and 1, also into a strided view.
    #[test]
    fn signed_zeros_match_at_every_edge() {
        if !available() {
            return it_declines_on_this_cpu();
        }
        let bits = |x: &Array2<f32>| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        // n = 9 goes to the skinny kernel (N ≤ 24), n = 30 to the blocked one.
        for (k, n) in [(3, 9), (300, 9), (3, 30), (300, 30)] {
            let a = Array2::from_elem((9, k), 0.0f32);
            let b = Array2::from_elem((k, n), -1.0f32);
            for beta in [0.0f32, 1.0] {
                let mut expected = Array2::from_elem((9, n), -0.0f32);
                general_mat_mul(1.0, &a, &b, beta, &mut expected);
                let mut got = Array2::from_elem((9, n), -0.0f32);
                assert!(gemm(1.0, &a.view(), &b.view(), beta, &mut got.view_mut()));
                assert_eq!(bits(&got), bits(&expected), "k = {k}, n = {n}, β = {beta}");
                let mut wide = Array2::from_elem((9, 2 * n), -0.0f32);
                let mut expected_wide = wide.clone();
                general_mat_mul(1.0, &a, &b, beta, &mut expected_wide.slice_mut(s![.., ..;2]));
                assert!(gemm(1.0, &a.view(), &b.view(), beta, &mut wide.slice_mut(s![.., ..;2])));
                assert_eq!(bits(&wide), bits(&expected_wide), "strided, k = {k}, n = {n}, β = {beta}");
            }
        }
    }

    /// Where the kernel is not [`available`] (an AVX-512 CPU, or not x86-64) the bit tests have
    /// nothing to compare; they check instead that every product is declined with C untouched, so
    /// matrixmultiply computes it.
    fn it_declines_on_this_cpu() {
        let a = Array2::<f32>::ones((1000, 400));
        let b = Array2::<f32>::ones((400, 784));
        let mut c = Array2::<f32>::from_elem((1000, 784), -0.0);
        assert!(!gemm(1.0, &a.view(), &b.view(), 0.0, &mut c.view_mut()));
        assert!(c.iter().all(|v| v.to_bits() == (-0.0f32).to_bits()));
    }

    /// The routing rule ([`pays`]) at its boundaries: the blocked kernel from M = 64, K = 128,
    /// N = 256 in any layout (the evaluation's and the training step's decoder products), the
    /// skinny one for N ≤ 24 with a row-major A and M, K ≥ 64; nothing else.
    #[test]
    fn it_is_chosen_where_it_measured_faster_only() {
        let wide = |m: usize, k: usize| Array2::<f32>::zeros((m, k));
        // The evaluation's decoder product; the step's three decoder products (∂W with A = hᵀ,
        // ∂h with B = Wᵀ); 64 rows; not 32 rows, a narrow N or a short K.
        assert!(pays(&wide(1000, 400).view(), &wide(400, 784).view()));
        assert!(pays(&wide(128, 400).view(), &wide(400, 784).view()));
        assert!(pays(&wide(128, 400).t(), &wide(128, 784).view()));
        assert!(pays(&wide(128, 784).view(), &wide(400, 784).t()));
        assert!(pays(&wide(64, 400).view(), &wide(400, 784).view()));
        assert!(!pays(&wide(32, 400).view(), &wide(400, 784).view()));
        assert!(!pays(&wide(1000, 400).view(), &wide(400, 40).view()));
        assert!(!pays(&wide(1000, 20).view(), &wide(20, 400).view()));
        // The heads' forward and the decoder's ∂z (B transposed); not the heads' ∂W (A = hᵀ),
        // not a short K or M.
        assert!(pays(&wide(128, 400).view(), &wide(400, 20).view()));
        assert!(pays(&wide(128, 400).view(), &wide(20, 400).t()));
        assert!(!pays(&wide(128, 400).t(), &wide(128, 20).view()));
        assert!(!pays(&wide(128, 20).view(), &wide(20, 20).view()));
        // The boundaries, one side each.
        assert!(pays(&wide(64, 128).view(), &wide(128, 256).view()));
        assert!(!pays(&wide(63, 128).view(), &wide(128, 256).view()));
        assert!(!pays(&wide(64, 127).view(), &wide(127, 256).view()));
        assert!(!pays(&wide(64, 128).view(), &wide(128, 255).view()));
        assert!(pays(&wide(64, 64).view(), &wide(64, 24).view()));
        assert!(!pays(&wide(63, 64).view(), &wide(64, 24).view()));
        assert!(!pays(&wide(64, 63).view(), &wide(63, 24).view()));
        assert!(!pays(&wide(16, 400).view(), &wide(400, 20).view()));
        assert!(!pays(&wide(128, 400).view(), &wide(400, 25).view()));
    }

    #[test]
    fn it_declines_what_it_does_not_reproduce() {
        let a = Array2::<f32>::ones((2, 3));
        let b = Array2::<f32>::ones((3, 4));
        let mut c = Array2::<f32>::zeros((2, 4));
        assert!(!gemm(2.0, &a.view(), &b.view(), 0.0, &mut c.view_mut()), "α ≠ 1");
        assert_eq!(c, Array2::<f32>::zeros((2, 4)));
        let (a64, b64) = (a.mapv(f64::from), b.mapv(f64::from));
        assert!(
            !gemm(1.0, &a64.view(), &b64.view(), 0.0, &mut Array2::<f64>::zeros((2, 4)).view_mut()),
            "f64"
        );
        let empty = Array2::<f32>::zeros((2, 0));
        assert!(
            !gemm(1.0, &empty.view(), &Array2::<f32>::zeros((0, 4)).view(), 0.0, &mut c.view_mut()),
            "K = 0"
        );
    }
}
