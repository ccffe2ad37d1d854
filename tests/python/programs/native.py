"""Native time on known lines: _scalenetest.spin burns a known amount of
this thread's CPU time in the extension's own machine code, once with the
GIL released and once holding it.  Writes the CPU seconds each spin used to
the JSON file named by argv[1].  Usage: native.py TRUTH.json [MS]
"""
import json
import sys

import _scalenetest as st

MS = float(sys.argv[2]) if len(sys.argv) > 2 else 600.0


def native_site(ms):
    x = sum(range(1000))  # @before
    released = st.spin(ms)  # @spin-release
    held = st.spin(ms, release_gil=False)  # @spin-hold
    y = x + 1  # @after
    return released, held, y


def main():
    released, held, _ = native_site(MS)
    with open(sys.argv[1], "w") as f:
        json.dump({"released": released, "held": held}, f)


if __name__ == "__main__":
    main()
