"""Leaks NumPy arrays into a module-level list: the arrays' data are buffers NumPy reports to the
tracer (an extension buffer domain)."""
import time

import numpy

time.sleep(0.5)  # numpy's import is done before the first sample points that count
HISTORY = []
for step in range(40):
    HISTORY.append(numpy.ones(64 * 1024))  # 512 KiB of data per step, kept forever
    time.sleep(0.05)
print("kept %d arrays" % len(HISTORY))
