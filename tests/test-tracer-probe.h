/* The `_tprobe` module shared by the tracer tests (tests/test-tracer-probe.c). */
#ifndef LIBLEAK_TESTS_TRACER_PROBE_H
#define LIBLEAK_TESTS_TRACER_PROBE_H

/* Starts the embedded interpreter with `_tprobe` importable, imports it and `sys`, and defines
 * here(): the line number of its caller. */
void tracer_probe_start_python(void);

#endif
