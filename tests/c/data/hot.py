import math


def busy(n):
    total = 0.0
    for i in range(n):
        total += math.sqrt(i) * 1.0001
    return total


def other(n):
    s = 0
    for i in range(n):
        s += i % 7
    return s


if __name__ == "__main__":
    for _ in range(15):
        busy(1_500_000)
        other(1_000_000)
