/* libscaleneprof: error codes.
 *
 * Every function that can fail returns 0 on success or one of the negative
 * SCALENE_E* codes below (libuv's convention).  Parsers and functions whose
 * failure a user must be able to act on also fill a caller-owned
 * scalene_error_t with a one-line message and, for parsers, the position of
 * the fault (jansson's json_error_t). */
#ifndef SCALENE_ERROR_H
#define SCALENE_ERROR_H

#include <scalene/version.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum scalene_errcode {
  SCALENE_OK = 0,
  SCALENE_EINVAL = -1,    /* an argument or option is invalid */
  SCALENE_ENOMEM = -2,    /* out of memory */
  SCALENE_EBUSY = -3,     /* a resource is taken: a signal already has a handler, a sampler runs */
  SCALENE_ESTATE = -4,    /* the call does not fit the object's state (stop before start) */
  SCALENE_ENOTSUP = -5,   /* not supported on this system or build */
  SCALENE_EIO = -6,       /* reading or writing a file failed */
  SCALENE_ENOENT = -7,    /* a file does not exist */
  SCALENE_EPARSE = -8,    /* malformed input (JSON, YAML) */
  SCALENE_EFORMAT = -9,   /* well-formed input that is not what was expected (not a profile) */
  SCALENE_ESYS = -10      /* a system call failed; errno tells which way */
} scalene_errcode_t;

/* A human-readable sentence for an error code ("invalid argument").  Unknown
 * codes give "unknown error".  Static storage; thread-safe. */
SCALENE_API const char *scalene_strerror(int code);

/* The code's symbolic name ("SCALENE_EINVAL"), or "SCALENE_UNKNOWN".  Static
 * storage; thread-safe. */
SCALENE_API const char *scalene_err_name(int code);

#define SCALENE_ERROR_SOURCE_MAX 256
#define SCALENE_ERROR_TEXT_MAX 256

/* Where and why something failed.  Filled by functions that take a
 * `scalene_error_t *err` (which may be NULL).  line and column are 1-based,
 * 0 when they do not apply; offset is the byte offset, -1 when unknown.
 * text is one line without a trailing newline, not including source. */
typedef struct scalene_error {
  char source[SCALENE_ERROR_SOURCE_MAX]; /* file name, or "" */
  int line;
  int column;
  long offset;
  char text[SCALENE_ERROR_TEXT_MAX];
} scalene_error_t;

/* Formats err as "source:line:column: text" (leaving out the parts that are
 * empty or 0) into buf of size n, always NUL-terminated.  Returns buf. */
SCALENE_API char *scalene_error_format(const scalene_error_t *err, char *buf, unsigned long n);

#ifdef __cplusplus
}
#endif
#endif /* SCALENE_ERROR_H */
