import time

def grow():
    keep = []
    for i in range(60):
        keep.append(bytearray(4 * 1024 * 1024))
    return keep

def churn():
    for i in range(200):
        x = [0] * 500000
        del x

def main():
    k = grow()
    churn()
    total = 0
    for i in range(300000):
        total += i
    print(len(k), total)

main()
