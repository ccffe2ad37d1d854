"""Benchmark: time spent deep in the standard library (~1 s plain).

copy.deepcopy of a structure nested 40 levels deep: each copy runs about
120 frames deep in copy.py, below the one line of ours that called it, so
every CPU sample walks past them to charge that line."""
import copy
import os
import sys

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 15_000


def nest(depth):
    x = [1, "a", 2.0]
    for _ in range(depth):
        x = {"k": x, "l": [1, 2, 3]}
    return x


def main(rounds):
    obj = nest(40)
    total = 0
    for _ in range(rounds):
        total += len(copy.deepcopy(obj))
    return total


if __name__ == "__main__":
    for _ in range(int(os.environ.get("BENCH_REPEAT", "1"))):  # bench/run.py --repeat
        print(main(ROUNDS))
