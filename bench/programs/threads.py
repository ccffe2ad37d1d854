"""Benchmark: four Python threads sharing the GIL (~1.5 s plain)."""
import os
import sys
import threading

N = int(sys.argv[1]) if len(sys.argv) > 1 else 30_000_000
results = [0] * 4


def work(k, n):
    t = 0
    for i in range(n):
        t += (i * k) % 7
    results[k] = t


def main(n):
    threads = [threading.Thread(target=work, args=(k, n // 4)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(results)


if __name__ == "__main__":
    for _ in range(int(os.environ.get("BENCH_REPEAT", "1"))):  # bench/run.py --repeat
        print(main(N))
