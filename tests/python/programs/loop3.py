"""A loop whose body has three lines of comparable cost.

Also estimates each line's cost on its own (a loop over that line alone,
minus an empty loop) and writes those estimates to the JSON file named by
argv[1], for the test's messages.  Usage: loop3.py TRUTH.json [N]
"""
import json
import sys
import time

N = int(sys.argv[2]) if len(sys.argv) > 2 else 12_000_000


def loop(n):
    a = b = c = 1
    for i in range(n):  # @for
        a = (a * 1103515245 + 12345) % 2147483648  # @l1
        b = (b * 214013 + 2531011) % 4294967296  # @l2
        c = (c * 69069 + 1) % 4294967291  # @l3
    return a + b + c


def cal_empty(n):
    for i in range(n):
        pass


def cal1(n):
    a = 1
    for i in range(n):
        a = (a * 1103515245 + 12345) % 2147483648


def cal2(n):
    b = 1
    for i in range(n):
        b = (b * 214013 + 2531011) % 4294967296


def cal3(n):
    c = 1
    for i in range(n):
        c = (c * 69069 + 1) % 4294967291


def timed(fn, n):
    t0 = time.thread_time()
    fn(n)
    return time.thread_time() - t0


def main():
    t0 = time.thread_time()
    loop(N)
    total = time.thread_time() - t0
    m = max(N // 10, 1)
    empty = timed(cal_empty, m)
    costs = [max(timed(f, m) - empty, 0.0) for f in (cal1, cal2, cal3)]
    scale = N / m
    with open(sys.argv[1], "w") as f:
        json.dump({"loop_cpu": total, "line_cpu_est": [c * scale for c in costs],
                   "for_cpu_est": empty * scale, "n": N}, f)


if __name__ == "__main__":
    main()
