"""Benchmark: copy-heavy work: bytes slicing, bytearray copies and numpy
array copies, large and small (~1 s plain)."""
import os
import sys

import numpy as np

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 30


def main(rounds):
    blob = bytes(range(256)) * 4096               # 1 MiB
    buf = bytearray(blob)
    arr = np.arange(1 << 17, dtype=np.float64)    # 1 MiB
    total = 0
    for r in range(rounds):
        for k in range(8):
            part = blob[k * 1024:]                # ~1 MiB copy
            total += part[-1]
            b2 = bytearray(buf)                   # 1 MiB copy
            b2[r & 255] = k
            total += b2[r & 255]
            b2[4096:8192] = blob[:4096]           # small copies
            c = arr.copy()                        # 1 MiB copy
            c[k] = r
            total += int(c[k])
        for k in range(1000):
            small = blob[k:k + 512]               # many small copies
            total += small[0]
    return total


if __name__ == "__main__":
    for _ in range(int(os.environ.get("BENCH_REPEAT", "1"))):  # bench/run.py --repeat
        print(main(ROUNDS))
