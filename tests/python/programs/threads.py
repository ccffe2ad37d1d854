"""The main thread burns CPU in native code (GIL released) while four Python
threads compute different amounts.  Each thread function measures its own
CPU time with time.thread_time(); the main thread records what its spin
used.  Everything goes to the JSON file named by argv[1].
Usage: threads.py TRUTH.json [UNIT] [SPIN_MS]
"""
import json
import sys
import threading
import time

import _scalenetest as st

UNIT = int(sys.argv[2]) if len(sys.argv) > 2 else 4_000_000
SPIN_MS = float(sys.argv[3]) if len(sys.argv) > 3 else 1500.0
cpu = {}


def work_a(n):
    c0 = time.thread_time()
    t = 0
    for i in range(n):
        t += i * i % 7
    cpu["work_a"] = time.thread_time() - c0


def work_b(n):
    c0 = time.thread_time()
    t = 0
    for i in range(n):
        t += i * i % 7
    cpu["work_b"] = time.thread_time() - c0


def work_c(n):
    c0 = time.thread_time()
    t = 0
    for i in range(n):
        t += i * i % 7
    cpu["work_c"] = time.thread_time() - c0


def work_d(n):
    c0 = time.thread_time()
    t = 0
    for i in range(n):
        t += i * i % 7
    cpu["work_d"] = time.thread_time() - c0


def main():
    threads = [threading.Thread(target=fn, args=(k * UNIT,))
               for k, fn in enumerate((work_a, work_b, work_c, work_d), start=1)]
    for t in threads:
        t.start()
    cpu["main_spin"] = st.spin(SPIN_MS, release_gil=True)  # @spin
    for t in threads:
        t.join()
    with open(sys.argv[1], "w") as f:
        json.dump({"cpu": cpu}, f)


if __name__ == "__main__":
    main()
