"""The main thread waits off the CPU on known lines: os.read on a pipe that
a helper thread writes to only after WAIT seconds, then time.sleep(WAIT),
then a busy Python loop as a control.  The wall time of each wait goes to
the JSON file named by argv[1].  Usage: offcpu.py TRUTH.json [WAIT]
"""
import json
import os
import sys
import threading
import time

WAIT = float(sys.argv[2]) if len(sys.argv) > 2 else 0.5


def writer(fd):
    time.sleep(WAIT)
    os.write(fd, b"x")


def busy(n):
    t = 0
    for i in range(n):  # @busy
        t += i
    return t


def main():
    r, w = os.pipe()
    th = threading.Thread(target=writer, args=(w,))
    th.start()
    t0 = time.perf_counter()
    data = os.read(r, 1)  # @read
    t1 = time.perf_counter()
    time.sleep(WAIT)  # @sleep
    t2 = time.perf_counter()
    c0 = time.thread_time()
    busy(10_000_000)
    c1 = time.thread_time()
    th.join()
    assert data == b"x", data
    with open(sys.argv[1], "w") as f:
        json.dump({"read_wall": t1 - t0, "sleep_wall": t2 - t1, "busy_cpu": c1 - c0}, f)


if __name__ == "__main__":
    main()
