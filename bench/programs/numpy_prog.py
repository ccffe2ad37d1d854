"""Benchmark: numpy matrix products and element-wise work (~1.5 s plain)."""
import os
import sys

import numpy as np

N = int(sys.argv[1]) if len(sys.argv) > 1 else 6


def main(rounds):
    rng = np.random.default_rng(0)
    a = rng.random((500, 500))
    b = rng.random((500, 500))
    acc = 0.0
    for _ in range(rounds):
        c = a @ b
        d = np.dot(b, a)
        e = np.sin(c) * np.cos(d) + np.sqrt(np.abs(c - d))
        acc += float(e.sum())
        v = rng.random(1_000_000)
        v.sort()
        acc += float(v[::1000].sum())
    return acc


if __name__ == "__main__":
    for _ in range(int(os.environ.get("BENCH_REPEAT", "1"))):  # bench/run.py --repeat
        print(round(main(N), 3))
