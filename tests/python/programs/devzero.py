"""Reads 1 MiB from /dev/zero COUNT times and checks that every read
returned the full 1 MiB: a profiler's timer signal must not make os.read
return short.  Exits 1 with a message on the first short read.
Usage: devzero.py [COUNT]
"""
import os
import sys

COUNT = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
SIZE = 1 << 20


def main():
    fd = os.open("/dev/zero", os.O_RDONLY)
    total = 0
    for k in range(COUNT):
        data = os.read(fd, SIZE)  # @read
        if len(data) != SIZE:
            print(f"short read: read #{k} returned {len(data)} of {SIZE} bytes",
                  file=sys.stderr)
            return 1
        total += len(data)
    os.close(fd)
    print(f"{COUNT} reads of {SIZE} bytes, {total} bytes in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
