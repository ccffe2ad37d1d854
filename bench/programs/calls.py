"""Benchmark: many small Python function and method calls (~1.5 s plain)."""
import os
import sys

N = int(sys.argv[1]) if len(sys.argv) > 1 else 33


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


class Point:
    __slots__ = ("x", "y")

    def __init__(self, x, y):
        self.x = x
        self.y = y

    def add(self, other):
        return Point(self.x + other.x, self.y + other.y)


def points(n):
    p = Point(0, 0)
    one = Point(1, 2)
    for _ in range(n):
        p = p.add(one)
    return p.x + p.y


if __name__ == "__main__":
    for _ in range(int(os.environ.get("BENCH_REPEAT", "1"))):  # bench/run.py --repeat
        print(fib(N), points(4_000_000))
