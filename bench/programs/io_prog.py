"""Benchmark: file and pipe I/O with some Python work and short sleeps
(~1.5 s plain)."""
import os
import sys
import tempfile
import time

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 20


def main(rounds):
    total = 0
    block = b"x" * 65536
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "data")
        for r in range(rounds):
            with open(path, "wb") as f:
                for _ in range(256):
                    f.write(block)
            with open(path, "rb") as f:
                while chunk := f.read(1 << 20):
                    total += len(chunk)
            fd = os.open("/dev/zero", os.O_RDONLY)
            for _ in range(200):
                total += len(os.read(fd, 1 << 20))
            os.close(fd)
            rd, wr = os.pipe()
            for i in range(2000):
                os.write(wr, b"ping")
                total += len(os.read(rd, 4))
            os.close(rd)
            os.close(wr)
            lines = [f"{i},{i * i},{r}\n" for i in range(20000)]
            total += sum(len(s) for s in lines)
            time.sleep(0.02)
    return total


if __name__ == "__main__":
    for _ in range(int(os.environ.get("BENCH_REPEAT", "1"))):  # bench/run.py --repeat
        print(main(ROUNDS))
