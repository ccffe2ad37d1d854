/* libscaleneprof: the umbrella header.  Include this one.
 *
 *   version.h  version macros and scalene_version()
 *   error.h    error codes and scalene_error_t
 *   config.h   option files in YAML, checked against a schema
 *   stats.h    the profile: per-line, per-function and per-file records
 *   sampler.h  the CPU sampler
 *   heap.h     the heap sampler (malloc and friends)
 *   memcpy.h   the memcpy sampler (memcpy, strcpy and friends)
 *   output.h   JSON (write atomically, read back) and the terminal table
 *
 * Link with `pkg-config --cflags --libs scaleneprof`. */
#ifndef SCALENE_SCALENE_H
#define SCALENE_SCALENE_H

#include <scalene/version.h>
#include <scalene/error.h>
#include <scalene/config.h>
#include <scalene/stats.h>
#include <scalene/sampler.h>
#include <scalene/heap.h>
#include <scalene/memcpy.h>
#include <scalene/output.h>

#endif /* SCALENE_SCALENE_H */
