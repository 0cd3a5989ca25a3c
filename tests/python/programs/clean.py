"""Works without leaking: objects come and go, re's cache and a bounded lru_cache fill up."""
import functools
import re
import time


@functools.lru_cache(maxsize=32)
def square(n):
    return n * n


class Item:
    def __init__(self, n):
        self.n = n
        self.payload = "x" * (n % 500)


total = 0
for step in range(40):
    batch = [Item(n) for n in range(2000)]
    total += sum(len(item.payload) for item in batch) + square(step % 50)
    total += len(re.findall(r"x{%d}" % (step % 7 + 1), batch[step].payload))
    del batch
    time.sleep(0.05)
print("total", total)
