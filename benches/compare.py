#!/usr/bin/env python3
"""Interleaved throughput comparison of `vaelab bench` with the PyTorch and NumPy anchors.

For every configuration of the grid (threads x H x B) each round runs vaelab, the PyTorch anchor
and the NumPy anchor back to back (so all three see the same machine state), then the table
reports the median throughput of each over the rounds and the median of the per-round ratios.
Then the same for importance-sampled evaluation (`vaelab bench --eval` vs torch_is_peer.py, which
imports the anchor's estimator) and for the toy estimator (`vaelab bench --toy` vs
toy_estimator_numpy.py). Prints a markdown table (paste it into README's Performance section)
and writes every raw JSON line to --out.

    cargo build --release
    python3 benches/compare.py --python ../anchors-venv/bin/python            # the full grid
    python3 benches/compare.py --batches 128 --hiddens 400 --threads 1 --rounds 5   # headline only
    python3 benches/compare.py --batches 128 --hiddens 400 --threads 1 --rounds 5 --dense --digits --skip-eval --skip-toy

The anchors live in ../shared/anchors (README there); they need torch and numpy in --python.
"""
import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def threads_env(t):
    """The environment of a peer at t threads: every BLAS / OpenMP pool it may start capped at t
    (the anchors also call torch.set_num_threads(t), and the NumPy one sets these itself)."""
    return dict(os.environ, OMP_NUM_THREADS=str(t), MKL_NUM_THREADS=str(t), OPENBLAS_NUM_THREADS=str(t))


def run_json(cmd, env=None):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def anchor_rate(result):
    return result["results"][0]["samples_per_s"]


def load():
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--vaelab", default=os.path.join(REPO, "target", "release", "vaelab"))
    p.add_argument("--python", default=sys.executable, help="a Python with torch and numpy")
    p.add_argument("--anchors", default=os.path.join(REPO, "..", "shared", "anchors"))
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--batches", default="32,128,512")
    p.add_argument("--hiddens", default="400,1024")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--samples", type=int, default=25600, help="training samples per timed run")
    p.add_argument("--eval-points", type=int, default=100, help="points of the IS comparison (cost is linear in N)")
    p.add_argument("--k", type=int, default=5000)
    p.add_argument("--toy-k", type=int, default=1_000_000)
    p.add_argument("--skip-train", action="store_true")
    p.add_argument("--skip-eval", action="store_true")
    p.add_argument("--skip-toy", action="store_true")
    p.add_argument("--out", default="compare-raw.jsonl")
    p.add_argument("--dense", action="store_true",
                   help="also time vaelab with the dense first layer forced (vaelab bench --dense)")
    p.add_argument("--digits", action="store_true",
                   help="also time vaelab on the shipped digits binarised per batch (vaelab bench --digits); "
                        "the anchors' dense products cost the same on any data, so their rates are reused")
    a = p.parse_args()
    torch_bench = os.path.join(a.anchors, "vae_torch_bench.py")
    numpy_bench = os.path.join(a.anchors, "vae_numpy_bench.py")
    raw = open(a.out, "w")
    rows = []
    loads = [load()]

    def record(tag, obj):
        raw.write(json.dumps({"tag": tag, **obj}) + "\n")
        raw.flush()

    # The machine: CPU model and flags, and its one-thread FMA peak (vaelab bench --peak).
    peak = run_json([a.vaelab, "bench", "--json", "--peak"])
    record("vaelab-peak", peak)
    cpu = peak["cpu"]
    threads = [int(t) for t in a.threads.split(",")]
    if not a.skip_train:
        for t in threads:
            for h in [int(v) for v in a.hiddens.split(",")]:
                for b in [int(v) for v in a.batches.split(",")]:
                    steps = max(10, a.samples // b)
                    common = ["--batch", str(b), "--hidden", str(h), "--steps", str(steps), "--repeats", "1"]
                    anchor_args = common + ["--threads", str(t), "--warmup", "10", "--n-data", "16384",
                                            "--quiet", "--no-breakdown"]
                    # vaelab's runs of this configuration, each beside the same anchor runs: (extra
                    # flag, raw-JSON tag, table row).
                    variants = [([], "vaelab", "train")]
                    if a.dense:
                        variants.append((["--dense"], "vaelab-dense", "train (dense first layer)"))
                    if a.digits:
                        variants.append((["--digits"], "vaelab-digits", "train (vaelab on the digits)"))
                    rates = [{"vaelab": [], "torch": [], "numpy": []} for _ in variants]
                    gflops = [[] for _ in variants]
                    for _ in range(a.rounds):
                        for (extra, tag, _), into, gf in zip(variants, rates, gflops):
                            r = run_json([a.vaelab, "bench", "--json"] + extra + ["--threads", str(t), "--warmup",
                                                                                 "10"] + common)
                            record(tag, r)
                            into["vaelab"].append(r["samples_per_sec"])
                            gf.append(r["gflops"])
                        for peer, bench in (("torch", torch_bench), ("numpy", numpy_bench)):
                            r = run_json([a.python, bench] + anchor_args, threads_env(t))
                            record(peer, r)
                            for into in rates:
                                into[peer].append(anchor_rate(r))
                        loads.append(load())
                    for (_, _, what), into, gf in zip(variants, rates, gflops):
                        rows.append((what, t, f"B={b} H={h}", into, statistics.median(gf)))
                    print(f"train T={t} B={b} H={h}: " + ", ".join(
                        f"{k} {statistics.median(v):.0f}" for k, v in rates[0].items()), file=sys.stderr)
    if not a.skip_eval:
        for t in threads:
            rates = {"vaelab": [], "torch": []}
            rss = []
            gf = []
            for _ in range(a.rounds):
                r = run_json([a.vaelab, "bench", "--json", "--eval", "--points", str(a.eval_points), "--k",
                              str(a.k), "--repeats", "1", "--threads", str(t)])
                record("vaelab-eval", r)
                rates["vaelab"].append(r["samples_per_sec"])
                rss.append(r["peak_rss_mib"])
                gf.append(r["gflops"])
                r = run_json([a.python, os.path.join(HERE, "torch_is_peer.py"), "--anchors", a.anchors,
                              "--points", str(a.eval_points), "--k", str(a.k), "--threads", str(t)], threads_env(t))
                record("torch-eval", r)
                rates["torch"].append(r["samples_per_sec"])
                loads.append(load())
            rows.append(("eval", t, f"N={a.eval_points} K={a.k} (peak RSS {max(rss):.0f} MiB)", rates,
                         statistics.median(gf)))
            print(f"eval T={t}: " + ", ".join(f"{k} {statistics.median(v):.0f}" for k, v in rates.items()),
                  file=sys.stderr)
    if not a.skip_toy:
        rates = {"vaelab": [], "numpy": []}
        for _ in range(a.rounds):
            r = run_json([a.vaelab, "bench", "--json", "--toy", "--k", str(a.toy_k), "--repeats", "3"])
            record("vaelab-toy", r)
            rates["vaelab"].append(r["samples_per_sec"])
            r = run_json([a.python, os.path.join(HERE, "toy_estimator_numpy.py"), "--k", str(a.toy_k)], threads_env(1))
            record("numpy-toy", r)
            rates["numpy"].append(r["samples_per_sec"])
            loads.append(load())
        rows.append(("toy", 1, f"linear-Gaussian Z=2 D=10, K={a.toy_k}", rates, None))

    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    flags = ", ".join(f for f in ("avx2", "avx512f", "fma") if cpu[f]) or "none of avx2, avx512f, fma"
    print(f"\nMeasured {now} on {cpu['model']} ({platform.machine()}, {cpu['logical_cpus']} logical CPUs; {flags}); "
          f"one-thread FP32 FMA peak {peak['peak_gflops']:.1f} GFLOP/s (vaelab bench --peak); 1-minute load average "
          f"{min(loads):.1f}–{max(loads):.1f} during the run; {a.rounds} interleaved rounds, medians.\n")
    print("| what | threads | config | vaelab /s | PyTorch /s | NumPy /s | vaelab ÷ PyTorch | vaelab ÷ NumPy "
          "| vaelab GFLOP/s | % of peak |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for what, t, cfg, rates, gf in rows:
        med = {k: statistics.median(v) for k, v in rates.items()}

        def ratio(other):
            if other not in rates:
                return "–"
            return f"{statistics.median([x / y for x, y in zip(rates['vaelab'], rates[other])]):.2f}×"

        cell = lambda k: f"{med[k]:,.0f}" if k in med else "–"
        gcell = f"{gf:.0f}" if gf is not None else "–"
        pcell = f"{100 * gf / (peak['peak_gflops'] * t):.0f}%" if gf is not None else "–"
        print(f"| {what} | {t} | {cfg} | {cell('vaelab')} | {cell('torch')} | {cell('numpy')} | "
              f"{ratio('torch')} | {ratio('numpy')} | {gcell} | {pcell} |")
    print("\nUnits: training samples/s; eval: decoder passes (z samples)/s; toy: log-weights/s. GFLOP/s: "
          "matrix-product FLOPs as the anchors count them (training: dense-equivalent, so the binary first "
          "layer can put it above the peak); % of peak: of the measured FMA peak × threads.")


if __name__ == "__main__":
    main()
