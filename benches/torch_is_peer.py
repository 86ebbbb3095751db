#!/usr/bin/env python3
"""Times the PyTorch anchor's importance-sampled log-likelihood on synthetic binary digits.

Imports `VAE` and `importance_sampled_ll` from the anchor script
(../shared/anchors/vae_torch_mnist10k.py, not copied here) and runs them on N random binary
points with K samples each, chunked at 1000 decoder rows, as `vaelab bench --eval` does.
Prints one JSON line: samples_per_sec (decoder passes/s), seconds, peak_rss_mib.
"""
import argparse
import json
import os
import resource
import sys
import time


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--anchors", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared", "anchors"))
    p.add_argument("--points", type=int, default=1000)
    p.add_argument("--k", type=int, default=5000)
    p.add_argument("--hidden", type=int, default=400)
    p.add_argument("--latent", type=int, default=20)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--chunk-rows", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    sys.path.insert(0, os.path.abspath(a.anchors))
    import torch
    import vae_torch_mnist10k as anchor

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    model = anchor.VAE(a.hidden, a.latent).eval()
    g = torch.Generator().manual_seed(a.seed)
    x = (torch.rand((a.points, anchor.D), generator=g) < 0.13).float()
    anchor.importance_sampled_ll(model, x[:2], a.k, g, a.chunk_rows, report_ks=())  # warm-up
    t0 = time.perf_counter()
    est, _ = anchor.importance_sampled_ll(model, x, a.k, g, a.chunk_rows, report_ks=())
    dt = time.perf_counter() - t0
    print(json.dumps({
        "impl": "torch", "mode": "eval", "threads": a.threads, "points": a.points, "k": a.k,
        "samples_per_sec": a.points * a.k / dt, "seconds": dt,
        "value": float(est[a.k].mean()),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }))


if __name__ == "__main__":
    main()
