/* Tests for error.h: codes, names, messages and the error formatter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <scalene/scalene.h>

static const int codes[] = {SCALENE_OK,     SCALENE_EINVAL, SCALENE_ENOMEM, SCALENE_EBUSY,
                            SCALENE_ESTATE, SCALENE_ENOTSUP, SCALENE_EIO,   SCALENE_ENOENT,
                            SCALENE_EPARSE, SCALENE_EFORMAT, SCALENE_ESYS};

static void test_names(void **state) {
  (void)state;
  assert_string_equal(scalene_err_name(SCALENE_OK), "SCALENE_OK");
  assert_string_equal(scalene_err_name(SCALENE_EINVAL), "SCALENE_EINVAL");
  assert_string_equal(scalene_err_name(SCALENE_EPARSE), "SCALENE_EPARSE");
  assert_string_equal(scalene_err_name(SCALENE_EFORMAT), "SCALENE_EFORMAT");
  assert_string_equal(scalene_err_name(SCALENE_ESYS), "SCALENE_ESYS");
  assert_string_equal(scalene_err_name(-1000), "SCALENE_UNKNOWN");
  assert_string_equal(scalene_err_name(1), "SCALENE_UNKNOWN");
  /* Every code has its own name. */
  size_t n = sizeof codes / sizeof codes[0];
  for (size_t i = 0; i < n; i++) {
    assert_string_not_equal(scalene_err_name(codes[i]), "SCALENE_UNKNOWN");
    for (size_t j = i + 1; j < n; j++)
      assert_string_not_equal(scalene_err_name(codes[i]), scalene_err_name(codes[j]));
  }
}

static void test_strerror(void **state) {
  (void)state;
  assert_string_equal(scalene_strerror(SCALENE_OK), "success");
  assert_string_equal(scalene_strerror(SCALENE_ENOMEM), "out of memory");
  assert_string_equal(scalene_strerror(12345), "unknown error");
  size_t n = sizeof codes / sizeof codes[0];
  for (size_t i = 0; i < n; i++) {
    assert_non_null(scalene_strerror(codes[i]));
    assert_string_not_equal(scalene_strerror(codes[i]), "unknown error");
    for (size_t j = i + 1; j < n; j++)
      assert_string_not_equal(scalene_strerror(codes[i]), scalene_strerror(codes[j]));
  }
}

static void fill(scalene_error_t *e, const char *source, int line, int column, const char *text) {
  memset(e, 0, sizeof *e);
  strcpy(e->source, source);
  e->line = line;
  e->column = column;
  e->offset = -1;
  strcpy(e->text, text);
}

static void test_format(void **state) {
  (void)state;
  scalene_error_t e;
  char buf[512];
  fill(&e, "scalene.yaml", 3, 7, "unknown key 'cpu-onyl'");
  assert_ptr_equal(scalene_error_format(&e, buf, sizeof buf), buf);
  assert_string_equal(buf, "scalene.yaml:3:7: unknown key 'cpu-onyl'");
  fill(&e, "p.json", 12, 0, "bad");
  assert_string_equal(scalene_error_format(&e, buf, sizeof buf), "p.json:12: bad");
  fill(&e, "p.json", 0, 0, "cannot open");
  assert_string_equal(scalene_error_format(&e, buf, sizeof buf), "p.json: cannot open");
  fill(&e, "", 4, 2, "no source");
  assert_string_equal(scalene_error_format(&e, buf, sizeof buf), "no source");
  /* NULL err gives an empty string. */
  strcpy(buf, "junk");
  assert_string_equal(scalene_error_format(NULL, buf, sizeof buf), "");
}

static void test_format_truncates(void **state) {
  (void)state;
  scalene_error_t e;
  char buf[8];
  memset(buf, 'x', sizeof buf);
  fill(&e, "a-long-file-name.json", 1, 1, "message");
  scalene_error_format(&e, buf, sizeof buf);
  assert_int_equal(buf[sizeof buf - 1], '\0');
  assert_string_equal(buf, "a-long-");
  /* n == 0 writes nothing. */
  buf[0] = 'q';
  scalene_error_format(&e, buf, 0);
  assert_int_equal(buf[0], 'q');
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_names),
      cmocka_unit_test(test_strerror),
      cmocka_unit_test(test_format),
      cmocka_unit_test(test_format_truncates),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
