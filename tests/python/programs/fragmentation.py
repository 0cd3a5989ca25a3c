"""Fragments pymalloc's arenas: 300,000 small strings (about 90 MB) fill many arenas, then all but
every 16th are freed.  Live bytes fall by most of what was allocated, but every arena keeps a few
survivors, so pymalloc can return almost none of them and RSS stays high."""
import time

time.sleep(0.5)  # past the first sample points
blocks = ["%08d:%s" % (i, "x" * 280) for i in range(300000)]
time.sleep(0.5)  # a sample point sees the peak
survivors = blocks[::16]
del blocks
time.sleep(1.5)  # sample points see live bytes low and RSS high
print("kept %d of 300000 strings" % len(survivors))
