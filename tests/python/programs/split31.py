"""Two Python functions with 3:1 the work, called alternately.

heavy() runs 3 * UNIT iterations and light() UNIT iterations of the same
loop body, ROUNDS times each.  The thread CPU time of every call is
measured here (time.thread_time) and written to the JSON file named by
argv[1] as the truth.  Usage: split31.py TRUTH.json [ROUNDS] [UNIT]
"""
import json
import sys
import time

ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 10
UNIT = int(sys.argv[3]) if len(sys.argv) > 3 else 1_500_000


def heavy(n):
    t = 0
    for i in range(3 * n):  # @heavy-loop
        t += i * i % 7  # @heavy-body
    return t


def light(n):
    t = 0
    for i in range(n):  # @light-loop
        t += i * i % 7  # @light-body
    return t


def main():
    cpu = {"heavy": 0.0, "light": 0.0}
    for _ in range(ROUNDS):
        c0 = time.thread_time()
        heavy(UNIT)
        c1 = time.thread_time()
        light(UNIT)
        c2 = time.thread_time()
        cpu["heavy"] += c1 - c0
        cpu["light"] += c2 - c1
    with open(sys.argv[1], "w") as f:
        json.dump({"cpu": cpu, "rounds": ROUNDS, "unit": UNIT}, f)


if __name__ == "__main__":
    main()
