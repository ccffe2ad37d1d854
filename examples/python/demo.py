"""A small program to profile (about 2 seconds, standard library only).

    python3 -m scalene run examples/python/demo.py
    python3 -m scalene view --cli

What the profile should show: python_heavy() takes most of the time, as
Python time spread over its loop's lines; native_heavy() costs a few times
less, as native time (the key derivation runs inside OpenSSL's libcrypto);
the wait at the end of each round is system time (off the CPU); the cheap
lines of the loop barely register.  Pass a number to scale the run:
`demo.py 2` runs twice as many rounds.
"""

import hashlib
import sys
import time


def python_heavy(n):
    """Pure Python arithmetic: Python time, spread over the loop's lines."""
    total = 0
    for i in range(n):
        square = i * i
        total += square % 7
    return total


def native_heavy(iterations):
    """One call that runs in a C library (PBKDF2 in libcrypto): native time."""
    key = hashlib.pbkdf2_hmac("sha256", b"password", b"salt", iterations)
    return key[0]


def main(scale=1.0):
    rounds = max(1, int(10 * scale))
    checksum = 0
    for r in range(rounds):
        checksum += python_heavy(2_500_000)    # the hot spot
        checksum += native_heavy(100_000)      # a few times less, native
        checksum += r * 3                      # cheap
        checksum %= 1_000_003                  # cheap
        time.sleep(0.04)                       # waiting: system time
    print("demo done: %d rounds, checksum %d" % (rounds, checksum))


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 1.0)
