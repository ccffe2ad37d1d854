"""Benchmark: a tight pure-Python loop (~1.5 s plain)."""
import os
import sys

N = int(sys.argv[1]) if len(sys.argv) > 1 else 9_000_000


def main(n):
    a = b = 1
    for i in range(n):
        a = (a * 1103515245 + 12345) % 2147483648
        b ^= a >> (i & 7)
    return a + b


if __name__ == "__main__":
    for _ in range(int(os.environ.get("BENCH_REPEAT", "1"))):  # bench/run.py --repeat
        print(main(N))
