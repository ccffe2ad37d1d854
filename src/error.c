/* libscaleneprof: error.h */
#include <stdio.h>
#include <string.h>

#include "internal.h"

static const struct {
  int code;
  const char *name;
  const char *text;
} errors[] = {
    {SCALENE_OK, "SCALENE_OK", "success"},
    {SCALENE_EINVAL, "SCALENE_EINVAL", "invalid argument"},
    {SCALENE_ENOMEM, "SCALENE_ENOMEM", "out of memory"},
    {SCALENE_EBUSY, "SCALENE_EBUSY", "resource busy"},
    {SCALENE_ESTATE, "SCALENE_ESTATE", "operation not valid in this state"},
    {SCALENE_ENOTSUP, "SCALENE_ENOTSUP", "not supported"},
    {SCALENE_EIO, "SCALENE_EIO", "input/output error"},
    {SCALENE_ENOENT, "SCALENE_ENOENT", "no such file"},
    {SCALENE_EPARSE, "SCALENE_EPARSE", "malformed input"},
    {SCALENE_EFORMAT, "SCALENE_EFORMAT", "not a profile"},
    {SCALENE_ESYS, "SCALENE_ESYS", "system call failed"},
};

const char *scalene_strerror(int code) {
  for (size_t i = 0; i < sizeof errors / sizeof errors[0]; i++)
    if (errors[i].code == code) return errors[i].text;
  return "unknown error";
}

const char *scalene_err_name(int code) {
  for (size_t i = 0; i < sizeof errors / sizeof errors[0]; i++)
    if (errors[i].code == code) return errors[i].name;
  return "SCALENE_UNKNOWN";
}

char *scalene_error_format(const scalene_error_t *err, char *buf, unsigned long n) {
  if (buf == NULL || n == 0) return buf;
  buf[0] = '\0';
  if (err == NULL) return buf;
  if (err->source[0] != '\0' && err->line > 0 && err->column > 0)
    snprintf(buf, n, "%s:%d:%d: %s", err->source, err->line, err->column, err->text);
  else if (err->source[0] != '\0' && err->line > 0)
    snprintf(buf, n, "%s:%d: %s", err->source, err->line, err->text);
  else if (err->source[0] != '\0')
    snprintf(buf, n, "%s: %s", err->source, err->text);
  else
    snprintf(buf, n, "%s", err->text);
  return buf;
}

void scalene__error_set(scalene_error_t *err, const char *source, int line, int column,
                        long offset, const char *fmt, ...) {
  if (err == NULL) return;
  memset(err, 0, sizeof *err);
  if (source != NULL) snprintf(err->source, sizeof err->source, "%s", source);
  err->line = line;
  err->column = column;
  err->offset = offset;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err->text, sizeof err->text, fmt, ap);
  va_end(ap);
}
