"""libleak.heap: what grew, counted by type over the whole heap, and leak_check's verdict.

A census counts every live object per type (``module.Qualname``), untracked ones like str and
bytes included, in one pass in C.  Comparing two censuses shows what a piece of code left behind;
``leak_check`` runs a function several times and reports only what grows on every run, so one-off
caches are not blamed.

Run: ``PYTHONPATH=BUILD/pystage python3 examples/census_growth.py`` (a few seconds).
"""
# expect: ^  __main__\.Order: count=\d+ \(\+200\), size=
# expect: ^leak_check\(place_order\): leaks$
# expect: __main__\.Order +\+1\.0 
# expect: ^leak_check\(checkout\): clean$

import libleak

ORDERS = {}


class Order:
    def __init__(self, number):
        self.number = number
        self.lines = ["item-%d" % i for i in range(3)]


def place_order(number=None):
    number = len(ORDERS) if number is None else number
    ORDERS[number] = Order(number)  # never removed: the leak


def checkout():
    return sum(range(100))  # leaves nothing behind


before = libleak.census()
for n in range(200):
    place_order(n)
after = libleak.census()
print("What 200 orders left behind (the biggest changes first):")
for row in after.compare_to(before)[:4]:
    print("  " + str(row))

report = libleak.leak_check(place_order, runs=5, warmup=2)
print("leak_check(place_order): %s" % ("leaks" if report else "clean"))
print(report)
print("leak_check(checkout): %s" % ("leaks" if libleak.leak_check(checkout, runs=5, warmup=2) else "clean"))
