"""Leaks native memory: blocks from libc's malloc (through ctypes), filled so that they count in
RSS, never freed, and never seen by Python's allocators."""
import ctypes
import ctypes.util
import sys
import time

libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
BLOCK = 512 * 1024
steps = int(sys.argv[1]) if len(sys.argv) > 1 else 40
for _ in range(steps):
    for _ in range(4):
        libc.memset(libc.malloc(BLOCK), 1, BLOCK)  # the pointer is dropped: a C-level leak
    time.sleep(0.05)
print("leaked %d MiB natively" % (steps * 4 * BLOCK >> 20))
