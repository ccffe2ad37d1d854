"""Benchmark: allocates and frees large numpy arrays (mmap-sized blocks)
with light arithmetic on them (~1 s plain)."""
import os
import sys

import numpy as np

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 400


def main(rounds):
    total = 0.0
    keep = []
    for r in range(rounds):
        a = np.ones(1 << 21)                      # 16 MiB
        b = np.empty(1 << 20)                     # 8 MiB
        b.fill(r)
        c = a[: 1 << 20] + b                      # 8 MiB
        total += float(c[r])
        keep.append(np.zeros(1 << 18))            # 2 MiB, kept a while
        if len(keep) > 8:
            keep.pop(0)
        del a, b, c
    return total


if __name__ == "__main__":
    for _ in range(int(os.environ.get("BENCH_REPEAT", "1"))):  # bench/run.py --repeat
        print(main(ROUNDS))
