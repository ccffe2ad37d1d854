"""np.dot(a, b) and a @ b on lines of their own, with a pure-Python line
between them, ROUNDS times.  Each of the three lines is timed by the lines
around it, in wall time less the time this thread sat preempted (waiting
on the run queue, /proc/thread-self/schedstat: the profiler does not count
it, as no program line causes it) and in this thread's CPU time
(thread_time); the sums go to the JSON file named by argv[1].  Run with
OPENBLAS_NUM_THREADS=1 so that the truth is one thread's time.
Usage: numpy_lines.py TRUTH.json [ROUNDS] [N] [PYN]
"""
import json
import os
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import numpy as np  # noqa: E402

ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 6
N = int(sys.argv[3]) if len(sys.argv) > 3 else 700
PYN = int(sys.argv[4]) if len(sys.argv) > 4 else 3_000_000

tt = time.thread_time


def _run_queue_wait():
    """Seconds this thread has waited on the run queue so far (0 when the
    kernel keeps no scheduler statistics)."""
    try:
        with open("/proc/thread-self/schedstat") as f:
            return int(f.read().split()[1]) * 1e-9
    except (OSError, IndexError, ValueError):
        return 0.0


def pc():
    """Wall time, less the time spent preempted."""
    return time.perf_counter() - _run_queue_wait()


def main():
    rng = np.random.default_rng(1)
    a = rng.random((N, N))
    b = rng.random((N, N))
    wall = [0.0, 0.0, 0.0]
    cpu = [0.0, 0.0, 0.0]
    for _ in range(ROUNDS):
        w0 = pc(); c0 = tt()  # @t0
        x = np.dot(a, b)  # @dot
        w1 = pc(); c1 = tt()  # @t1
        s = sum(i * i for i in range(PYN))  # @py
        w2 = pc(); c2 = tt()  # @t2
        c = a @ b  # @matmul
        w3 = pc(); c3 = tt()  # @t3
        wall[0] += w1 - w0; wall[1] += w2 - w1; wall[2] += w3 - w2
        cpu[0] += c1 - c0; cpu[1] += c2 - c1; cpu[2] += c3 - c2
    assert x.shape == c.shape and s > 0
    with open(sys.argv[1], "w") as f:
        json.dump({"wall": dict(zip(("dot", "py", "matmul"), wall)),
                   "cpu": dict(zip(("dot", "py", "matmul"), cpu)),
                   "rounds": ROUNDS}, f)


if __name__ == "__main__":
    main()
