#!/usr/bin/env python3
"""NumPy peer of `vaelab bench --toy`: importance-sampled log-evidence on the linear-Gaussian toy
model (z ~ N(0, I_Z), x|z ~ N(W z + b, sigma^2 I_D)), proposal q = the prior, vectorised over
the K draws. Same estimator as vaelab's `bounds::draw` + `bounds::importance_log_evidence`:

    log w_k = log p(x|z_k) + log p(z_k) - log q(z_k),   log p_hat(x) = logmeanexp_k log w_k

Prints one JSON line: samples_per_sec (log-weights per second, median of --repeats), the runs,
and the estimate.
"""
import argparse
import json
import math
import statistics
import time

import numpy as np

LN_2PI = math.log(2.0 * math.pi)


def log_evidence(rng, w, b, sigma, x, k):
    z_dim = w.shape[1]
    z = rng.standard_normal((k, z_dim))                      # K x Z draws from q = N(0, I)
    resid = x[None, :] - (z @ w.T + b[None, :])              # K x D
    d = x.shape[0]
    log_lik = -0.5 * (d * (LN_2PI + 2.0 * math.log(sigma)) + (resid * resid).sum(1) / sigma**2)
    log_prior = -0.5 * (z_dim * LN_2PI + (z * z).sum(1))
    log_q = -0.5 * (z_dim * LN_2PI + (z * z).sum(1))        # q's own density (here the prior)
    log_w = log_lik + log_prior - log_q
    m = log_w.max()
    return m + math.log(np.exp(log_w - m).mean())


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--latent", type=int, default=2)
    p.add_argument("--data", type=int, default=10)
    p.add_argument("--k", type=int, default=1_000_000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    rng = np.random.default_rng(a.seed)
    w = rng.uniform(-1.0, 1.0, (a.data, a.latent))
    b = np.zeros(a.data)
    sigma = 0.5
    x = w @ rng.standard_normal(a.latent) + sigma * rng.standard_normal(a.data)
    log_evidence(rng, w, b, sigma, x, min(a.k, 1000))
    runs, value = [], None
    for _ in range(a.repeats):
        t0 = time.perf_counter()
        value = log_evidence(rng, w, b, sigma, x, a.k)
        runs.append(a.k / (time.perf_counter() - t0))
    print(json.dumps({"impl": "numpy", "mode": "toy", "latent": a.latent, "data": a.data, "k": a.k,
                      "samples_per_sec": statistics.median(runs), "samples_per_sec_runs": runs,
                      "value": value}))


if __name__ == "__main__":
    main()
