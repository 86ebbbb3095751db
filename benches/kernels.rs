//! Time per call of each hot kernel on the VAE's shapes: `cargo bench --bench kernels`.
//!
//! A plain timing loop (median of 7 batches of calls after a warm-up), printing one markdown
//! table: the linear layer forward and backward, the plain matrix products they are made of
//! (to set beside the anchors' `--gemm`, same shapes), the first layer's binary path (scan of the
//! on-pixels, gather-sum forward, ∂W backward; rates dense-equivalent), the fused output layer + Bernoulli loss +
//! gradient, the fused Adam step over all 648k parameters of the 784-400-20 VAE, and the
//! log-mean-exp over K = 5000 weights. It names the CPU and measures its FMA peak first
//! (`vaelab::cli::bench::fma_peak`), and gives every rate as a % of it. Arguments: `--threads T` (default 1), `--batch B`
//! (default 128), `--hidden H` (default 400).

use std::hint::black_box;
use std::time::Instant;

use ndarray::linalg::general_mat_mul;
use ndarray::{Array1, Array2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use vaelab::engine::nn::{
    BinaryInput, Optimizer, OptimizerConfig, bernoulli_nll_grad_into, binary_linear_backward_into,
    binary_linear_forward_into, linear_backward_into, linear_forward_into,
};
use vaelab::engine::vae::{Vae, VaeConfig};

fn time(mut f: impl FnMut()) -> f64 {
    f();
    let start = Instant::now();
    let mut reps = 0;
    while start.elapsed().as_secs_f64() < 0.05 {
        f();
        reps += 1;
    }
    let reps = reps.max(1);
    let mut per_call: Vec<f64> = (0..7)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..reps {
                f();
            }
            t.elapsed().as_secs_f64() / reps as f64
        })
        .collect();
    per_call.sort_by(f64::total_cmp);
    per_call[3]
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn random(rows: usize, cols: usize, rng: &mut ChaCha8Rng) -> Array2<f32> {
    Array2::from_shape_simple_fn((rows, cols), || rng.random_range(-1.0..1.0))
}

/// The one-thread FMA peak (GFLOP/s) the rates are set against, measured once in `main`.
static PEAK: std::sync::OnceLock<f64> = std::sync::OnceLock::new();

fn row(kernel: &str, shape: &str, seconds: f64, flops: f64) {
    let peak = PEAK.get().copied().unwrap_or(f64::NAN);
    let (rate, frac) = if flops > 0.0 {
        let g = flops / seconds / 1e9;
        (format!("{g:.1}"), format!("{:.0}%", 100.0 * g / peak))
    } else {
        ("–".into(), "–".into())
    };
    println!("| {kernel} | {shape} | {:.1} | {rate} | {frac} |", seconds * 1e6);
}

fn main() {
    let threads = arg("--threads", 1);
    vaelab::base::parallel::set_threads(threads).expect("threads >= 1");
    let (b, h, d, z) = (arg("--batch", 128), arg("--hidden", 400), 784, 20);
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let cpu = vaelab::cli::bench::cpu_info();
    let peak = vaelab::cli::bench::fma_peak(1.0);
    PEAK.set(peak.gflops * threads as f64).expect("set once");
    println!(
        "kernels at B = {b}, H = {h}, D = {d}, Z = {z}, {threads} thread(s) on {} (avx2 {}, avx512f {}, fma {}); \
         FP32 FMA peak {:.1} GFLOP/s per thread (256-bit {:?}, 512-bit {:?}); % of peak = of {threads} thread(s)\n",
        cpu.model, cpu.avx2, cpu.avx512f, cpu.fma, peak.gflops, peak.avx2_gflops, peak.avx512_gflops
    );
    println!("| kernel | shape | µs per call | GFLOP/s | % of peak |");
    println!("|---|---|---|---|---|");

    // Plain products, as the anchors' --gemm names them (MxKxN, :tA/:tB = operand transposed).
    // The encoder's dense first layer and its ∂W; the decoder's output layer, its ∂W and its ∂h;
    // a 20-wide head (the skinny kernel's shape).
    for (m, k, n, ta, tb) in [
        (b, d, h, false, false),
        (d, b, h, true, false),
        (b, h, d, false, false),
        (h, b, d, true, false),
        (b, d, h, false, true),
        (b, h, z, false, false),
    ] {
        let a = if ta { random(k, m, &mut rng).reversed_axes() } else { random(m, k, &mut rng) };
        let bm = if tb { random(n, k, &mut rng).reversed_axes() } else { random(k, n, &mut rng) };
        let mut c = Array2::<f32>::zeros((m, n));
        let s = time(|| general_mat_mul(1.0, &a, &bm, 0.0, &mut c));
        let name = format!("{m}x{k}x{n}{}{}", if ta { ":tA" } else { "" }, if tb { ":tB" } else { "" });
        row("sgemm (matrixmultiply)", &name, s, 2.0 * (m * k * n) as f64);
        if vaelab::base::sgemm::available() {
            let s = time(|| {
                vaelab::base::sgemm::gemm(1.0, &a.view(), &bm.view(), 0.0, &mut c.view_mut());
            });
            row("sgemm (vaelab, same bits)", &name, s, 2.0 * (m * k * n) as f64);
        }
    }
    // The importance-sampled evaluation's decoder product (1000 z's × H → D).
    let (a, bm) = (random(1000, h, &mut rng), random(h, d, &mut rng));
    let mut c = Array2::<f32>::zeros((1000, d));
    let name = format!("1000x{h}x{d}");
    let s = time(|| general_mat_mul(1.0, &a, &bm, 1.0, &mut c));
    row("sgemm (matrixmultiply)", &name, s, 2.0 * (1000 * h * d) as f64);
    if vaelab::base::sgemm::available() {
        let s = time(|| {
            vaelab::base::sgemm::gemm(1.0, &a.view(), &bm.view(), 1.0, &mut c.view_mut());
        });
        row("sgemm (vaelab, same bits)", &name, s, 2.0 * (1000 * h * d) as f64);
    }

    // Linear layer forward and backward at the first layer's shape.
    let x = random(b, d, &mut rng);
    let w = random(d, h, &mut rng);
    let bias = Array1::<f32>::zeros(h);
    let mut y = Array2::<f32>::zeros((b, h));
    let s = time(|| linear_forward_into(x.view(), w.view(), bias.view(), y.view_mut()));
    row("linear forward (bias + x W)", &format!("{b}×{d} → {h}"), s, 2.0 * (b * d * h) as f64);
    let (mut dw, mut db, mut dx) =
        (Array2::<f32>::zeros((d, h)), Array1::<f32>::zeros(h), Array2::<f32>::zeros((b, d)));
    let dy = random(b, h, &mut rng);
    let s = time(|| {
        linear_backward_into(x.view(), w.view(), dy.view(), dw.view_mut(), db.view_mut(), Some(dx.view_mut()))
    });
    row("linear backward (∂W, ∂b, ∂x)", &format!("{b}×{d} → {h}"), s, 4.0 * (b * d * h) as f64);

    // The same layer on binary x from its on-pixels (scan, gather-sum forward, ∂W and ∂b backward).
    for p in [0.13, 0.19] {
        let xb = Array2::from_shape_simple_fn((b, d), || f32::from(rng.random::<f64>() < p));
        let mut on = BinaryInput::with_capacity(b, d);
        let s = time(|| {
            black_box(on.scan(xb.view()));
        });
        row(&format!("binary scan (on = {p})"), &format!("{b}×{d}"), s, 0.0);
        let s = time(|| binary_linear_forward_into(&on, w.view(), bias.view(), y.view_mut()));
        row(
            &format!("binary linear forward (on = {p}, dense-equivalent)"),
            &format!("{b}×{d} → {h}"),
            s,
            2.0 * (b * d * h) as f64,
        );
        let s = time(|| binary_linear_backward_into(&on, dy.view(), dw.view_mut(), db.view_mut()));
        row(
            &format!("binary linear backward ∂W, ∂b (on = {p}, dense-equivalent)"),
            &format!("{b}×{d} → {h}"),
            s,
            2.0 * (b * d * h) as f64,
        );
    }
    // The binary path with W and ∂y placed on a 64-byte cache line and 16 bytes past one (where
    // the allocator leaves a large array on glibc: the training step's W and ∂y sit there).
    let xb = Array2::from_shape_simple_fn((b, d), || f32::from(rng.random::<f64>() < 0.13));
    let mut on = BinaryInput::with_capacity(b, d);
    assert!(on.scan(xb.view()));
    let (mut w_buf, mut dy_buf) = (vec![0f32; d * h + 32], vec![0f32; b * h + 32]);
    for past in [0, 16] {
        let at = |buf: &[f32]| (64 - buf.as_ptr() as usize % 64) % 64 / 4 + past / 4;
        let (wa, da) = (at(&w_buf), at(&dy_buf));
        w_buf[wa..wa + d * h].copy_from_slice(w.as_slice().expect("contiguous"));
        dy_buf[da..da + b * h].copy_from_slice(dy.as_slice().expect("contiguous"));
        let wv = ndarray::ArrayView2::from_shape((d, h), &w_buf[wa..wa + d * h]).expect("shape");
        let dyv = ndarray::ArrayView2::from_shape((b, h), &dy_buf[da..da + b * h]).expect("shape");
        let s = time(|| binary_linear_forward_into(&on, wv, bias.view(), y.view_mut()));
        let shape = format!("{b}×{d} → {h}");
        row(
            &format!("binary linear forward (on = 0.13, W {past} B past a line)"),
            &shape,
            s,
            2.0 * (b * d * h) as f64,
        );
        let s = time(|| binary_linear_backward_into(&on, dyv, dw.view_mut(), db.view_mut()));
        row(
            &format!("binary linear backward (on = 0.13, ∂y {past} B past a line)"),
            &shape,
            s,
            2.0 * (b * d * h) as f64,
        );
    }
    let s = time(|| linear_backward_into(x.view(), w.view(), dy.view(), dw.view_mut(), db.view_mut(), None));
    row("linear backward ∂W, ∂b only (first layer)", &format!("{b}×{d} → {h}"), s, 2.0 * (b * d * h) as f64);

    // The first layer's whole work per step on each path (forward and ∂W, ∂b; the binary path
    // with its scan) against the density of the input: where the on-entries path stops paying.
    let xd = Array2::from_shape_simple_fn((b, d), || f32::from(rng.random::<f64>() < 0.5));
    let dense = time(|| {
        linear_forward_into(xd.view(), w.view(), bias.view(), y.view_mut());
        linear_backward_into(xd.view(), w.view(), dy.view(), dw.view_mut(), db.view_mut(), None);
    });
    row("first layer, dense: forward + ∂W, ∂b", &format!("{b}×{d} → {h}"), dense, 4.0 * (b * d * h) as f64);
    // What Auto costs when it declines (a 30%-on batch over its threshold): the scan up to the
    // limit (AVX2; the counting read otherwise).
    let xb = Array2::from_shape_simple_fn((b, d), || f32::from(rng.random::<f64>() < 0.3));
    let mut on = BinaryInput::default();
    let max = vaelab::engine::nn::InputPath::Auto.max_on_entries(b, d).expect("Auto has a limit");
    let s = time(|| assert!(!on.scan_at_most(xb.view(), max)));
    row("Auto declining a 30%-on batch (the scan until the limit)", &format!("{b}×{d}"), s, 0.0);
    for p in [0.05, 0.10, 0.13, 0.16, 0.19, 0.22, 0.25, 0.30] {
        let xb = Array2::from_shape_simple_fn((b, d), || f32::from(rng.random::<f64>() < p));
        let mut on = BinaryInput::with_capacity(b, d);
        let s = time(|| {
            black_box(on.scan(xb.view()));
            binary_linear_forward_into(&on, w.view(), bias.view(), y.view_mut());
            binary_linear_backward_into(&on, dy.view(), dw.view_mut(), db.view_mut());
        });
        row(
            &format!("first layer, binary: scan + forward + ∂W, ∂b (on = {p}; {:.2} × dense)", s / dense),
            &format!("{b}×{d} → {h}"),
            s,
            4.0 * (b * d * h) as f64,
        );
    }

    // Fused output layer: Bernoulli NLL + gradient over B × D logits.
    let logits = random(b, d, &mut rng) * 4.0;
    let target = Array2::from_shape_simple_fn((b, d), || f32::from(rng.random::<f32>() < 0.13));
    let mut grad = Array2::<f32>::zeros((b, d));
    let mut rows = vec![0.0; b];
    let s = time(|| {
        black_box(bernoulli_nll_grad_into(
            logits.view(),
            target.view(),
            1.0 / b as f32,
            Some(grad.view_mut()),
            &mut rows,
        ));
    });
    row("fused sigmoid + BCE + gradient", &format!("{b}×{d}"), s, 0.0);

    // Fused Adam over every parameter of the VAE (one pass, gradients zeroed in the same pass).
    let vae: Vae<f32> = Vae::new(VaeConfig::bernoulli(d, vec![h], z), &mut rng).unwrap();
    let mut params = vae.params.clone();
    let mut grads = vae.zero_grads();
    let mut adam = Optimizer::new(OptimizerConfig::adam(1e-3), &params).unwrap();
    let count = vaelab::engine::nn::Parameters::scalar_count(&params);
    let s = time(|| adam.step(&mut params, &mut grads));
    row("fused Adam step", &format!("{count} parameters"), s, 0.0);
    let s = time(|| {
        black_box(vaelab::engine::nn::Parameters::first_non_finite(&grads));
    });
    row("gradient finiteness check", &format!("{count} parameters"), s, 0.0);

    // Log-mean-exp over the K = 5000 log-weights of one point (f64).
    let lw = Array1::from_shape_simple_fn(5000, || rng.random_range(-100.0..-80.0f64));
    let s = time(|| {
        black_box(vaelab::base::prob::log_mean_exp_1d(lw.view()));
    });
    row("log-mean-exp", "K = 5000 (f64)", s, 0.0);
}
