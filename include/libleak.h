/* libleak: memory-leak analysis for CPython.  The umbrella header: include this one.
 *
 * Conventions: public names start with leak_; functions return 0 or a negative LEAK_E* code
 * (leak_strerror() says what it means); opaque types come with _new/_free, and _free accepts NULL;
 * options structs are initialised with their LEAK_..._OPTIONS_INIT macro.  The headers do not need
 * Python.h: a host calls these after it has initialised its interpreter. */
#ifndef LIBLEAK_H
#define LIBLEAK_H

#include "libleak/version.h"
#include "libleak/errors.h"
#include "libleak/faults.h"
#include "libleak/tracer.h"
#include "libleak/snapshot.h"
#include "libleak/heap.h"
#include "libleak/refs.h"
#include "libleak/deepsize.h"
#include "libleak/classtrack.h"

#endif
