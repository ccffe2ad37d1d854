"""Benchmark: allocation-heavy pure Python, pystone-like (~1 s plain).

Many small, short-lived objects: class instances, lists, dicts, tuples
and strings, some kept in a bounded pool so that the heap also grows and
shrinks, the rest freed at once."""
import os
import sys

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 240_000


class Record:
    def __init__(self, ident, name, value):
        self.ident = ident
        self.name = name
        self.value = value
        self.tags = []

    def child(self, k):
        r = Record(self.ident * 2 + k, self.name + str(k), self.value + k)
        r.tags.append(self.name)
        return r


def main(rounds):
    pool = []
    total = 0
    for i in range(rounds):
        r = Record(i, "rec%d" % (i & 1023), i * 0.5)
        kids = [r.child(k) for k in range(3)]
        d = {"id": r.ident, "name": r.name, "kids": kids, "pair": (i, -i)}
        total += len(d["name"]) + sum(k.ident & 7 for k in d["kids"])
        s = "-".join([r.name, kids[0].name, str(i)])
        total += len(s.upper())
        pool.append(d)
        if len(pool) > 5000:
            del pool[:2500]
    return total


if __name__ == "__main__":
    for _ in range(int(os.environ.get("BENCH_REPEAT", "1"))):  # bench/run.py --repeat
        print(main(ROUNDS))
