/* Tests for config.h: YAML option files checked against a schema. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <scalene/scalene.h>

static const scalene_config_key_t schema[] = {
    {"outfile", SCALENE_CONFIG_STRING},
    {"cpu-only", SCALENE_CONFIG_BOOL},
    {"cpu-sampling-rate", SCALENE_CONFIG_FLOAT},
    {"malloc-threshold", SCALENE_CONFIG_INT},
    {"profile-only", SCALENE_CONFIG_LIST},
    {"program_path", SCALENE_CONFIG_STRING}, /* canonical with '_' */
};
#define N_KEYS (sizeof schema / sizeof schema[0])

static scalene_config_t *parse_ok(const char *text) {
  scalene_config_t *c = (scalene_config_t *)1;
  scalene_error_t err;
  int rc = scalene_config_parse(text, strlen(text), "t.yaml", schema, N_KEYS, &c, &err);
  if (rc != 0) fprintf(stderr, "unexpected error for <<%s>>: %s\n", text, err.text);
  assert_int_equal(rc, 0);
  assert_non_null(c);
  return c;
}

/* Parses text, expects code at line:column with message msg (NULL: any). */
static void parse_fails(const char *text, int code, int line, int column, const char *msg) {
  scalene_config_t *c = (scalene_config_t *)1;
  scalene_error_t err;
  int rc = scalene_config_parse(text, strlen(text), "t.yaml", schema, N_KEYS, &c, &err);
  if (rc != code || err.line != line || err.column != column ||
      (msg != NULL && strcmp(err.text, msg) != 0))
    fprintf(stderr, "for <<%s>>: %s %d:%d %s\n", text, scalene_err_name(rc), err.line,
            err.column, err.text);
  assert_int_equal(rc, code);
  assert_null(c);
  assert_string_equal(err.source, "t.yaml");
  assert_int_equal(err.line, line);
  assert_int_equal(err.column, column);
  if (msg != NULL) assert_string_equal(err.text, msg);
  assert_null(strchr(err.text, '\n'));
  assert_true(err.text[0] != '\0');
}

/* The single value of a one-key document "key: text". */
static scalene_config_t *one(const char *key, const char *text) {
  char doc[512];
  snprintf(doc, sizeof doc, "%s: %s\n", key, text);
  scalene_config_t *c = parse_ok(doc);
  assert_int_equal(scalene_config_count(c), 1);
  return c;
}

static void one_fails(const char *key, const char *text, const char *msg) {
  char doc[512];
  snprintf(doc, sizeof doc, "%s: %s\n", key, text);
  parse_fails(doc, SCALENE_EFORMAT, 1, (int)strlen(key) + 3, msg);
}

/* ------------------------------------------------------------ the good file */

static void test_all_types(void **state) {
  (void)state;
  const char *text = "# scalene.yaml\n"
                     "outfile: prof.json\n"
                     "cpu-only: true\n"
                     "cpu-sampling-rate: 0.005\n"
                     "malloc-threshold: 250\n"
                     "profile-only: [mypkg, tools]\n"
                     "program-path:   src\n";
  scalene_config_t *c = parse_ok(text);
  assert_int_equal(scalene_config_count(c), 6);
  const scalene_config_value_t *v = scalene_config_get(c, 0);
  assert_ptr_equal(v->name, schema[0].name);
  assert_int_equal(v->type, SCALENE_CONFIG_STRING);
  assert_string_equal(v->string, "prof.json");
  assert_null(v->items);
  assert_int_equal(v->line, 2);
  assert_int_equal(v->column, 10);
  v = scalene_config_get(c, 1);
  assert_ptr_equal(v->name, schema[1].name);
  assert_int_equal(v->type, SCALENE_CONFIG_BOOL);
  assert_int_equal(v->boolean, 1);
  assert_null(v->string);
  assert_int_equal(v->line, 3);
  assert_int_equal(v->column, 11);
  v = scalene_config_get(c, 2);
  assert_int_equal(v->type, SCALENE_CONFIG_FLOAT);
  assert_true(v->number == 0.005);
  assert_null(v->string);
  v = scalene_config_get(c, 3);
  assert_int_equal(v->type, SCALENE_CONFIG_INT);
  assert_int_equal(v->integer, 250);
  assert_true(v->number == 250.0);
  v = scalene_config_get(c, 4);
  assert_int_equal(v->type, SCALENE_CONFIG_LIST);
  assert_int_equal(v->n_items, 2);
  assert_string_equal(v->items[0], "mypkg");
  assert_string_equal(v->items[1], "tools");
  assert_null(v->string);
  assert_int_equal(v->line, 6);
  assert_int_equal(v->column, 15);
  v = scalene_config_get(c, 5);
  /* The schema's spelling, whatever the file wrote. */
  assert_ptr_equal(v->name, schema[5].name);
  assert_string_equal(v->name, "program_path");
  assert_string_equal(v->string, "src");
  assert_int_equal(v->line, 7);
  assert_int_equal(v->column, 17);
  assert_null(scalene_config_get(c, 6));
  assert_null(scalene_config_get(c, (size_t)-1));
  scalene_config_free(c);
}

static void test_order_and_spellings(void **state) {
  (void)state;
  /* File order, not schema order; '_' and '-' alike in the file. */
  scalene_config_t *c = parse_ok("cpu_sampling_rate: 1\n"
                                 "program_path: a\n"
                                 "cpu_only: no\n");
  assert_int_equal(scalene_config_count(c), 3);
  assert_string_equal(scalene_config_get(c, 0)->name, "cpu-sampling-rate");
  assert_string_equal(scalene_config_get(c, 1)->name, "program_path");
  assert_string_equal(scalene_config_get(c, 2)->name, "cpu-only");
  assert_int_equal(scalene_config_get(c, 2)->boolean, 0);
  scalene_config_free(c);
  /* A quoted key is the same key. */
  c = parse_ok("\"cpu-only\": yes\n'outfile': x\n");
  assert_int_equal(scalene_config_count(c), 2);
  assert_int_equal(scalene_config_find(c, "cpu-only")->boolean, 1);
  assert_string_equal(scalene_config_find(c, "outfile")->string, "x");
  scalene_config_free(c);
  /* JSON is YAML. */
  c = parse_ok("{\"outfile\": \"p.json\", \"cpu_only\": true, \"profile-only\": [\"a\"]}");
  assert_int_equal(scalene_config_count(c), 3);
  assert_int_equal(scalene_config_find(c, "profile_only")->n_items, 1);
  scalene_config_free(c);
  /* Explicit !!map on the top level, "..." at the end, a %YAML directive. */
  c = parse_ok("%YAML 1.1\n--- !!map\noutfile: x\n...\n");
  assert_int_equal(scalene_config_count(c), 1);
  scalene_config_free(c);
  /* Key case matters. */
  parse_fails("OutFile: x\n", SCALENE_EFORMAT, 1, 1, "unknown key \"OutFile\"");
}

static void test_find(void **state) {
  (void)state;
  scalene_config_t *c = parse_ok("cpu_only: on\nprogram-path: here\n");
  const scalene_config_value_t *v = scalene_config_find(c, "cpu-only");
  assert_non_null(v);
  assert_ptr_equal(v, scalene_config_find(c, "cpu_only"));
  assert_ptr_equal(v, scalene_config_get(c, 0));
  assert_ptr_equal(scalene_config_find(c, "program-path"), scalene_config_get(c, 1));
  assert_ptr_equal(scalene_config_find(c, "program_path"), scalene_config_get(c, 1));
  assert_null(scalene_config_find(c, "outfile")); /* in the schema, not in the file */
  assert_null(scalene_config_find(c, "nothing"));
  assert_null(scalene_config_find(c, "cpu-onl"));
  assert_null(scalene_config_find(c, "cpu-only-"));
  assert_null(scalene_config_find(c, ""));
  assert_null(scalene_config_find(c, NULL));
  assert_null(scalene_config_find(NULL, "cpu-only"));
  assert_int_equal(scalene_config_count(NULL), 0);
  assert_null(scalene_config_get(NULL, 0));
  scalene_config_free(c);
  scalene_config_free(NULL);
}

/* ------------------------------------------------------------ scalars */

static void test_bool(void **state) {
  (void)state;
  static const char *const yes[] = {"true", "True", "TRUE", "yes", "Yes",
                                    "YES",  "on",   "On",   "ON",  "!!bool true"};
  static const char *const no[] = {"false", "False", "FALSE", "no", "No",
                                   "NO",    "off",   "Off",   "OFF", "!!bool no"};
  for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
    scalene_config_t *c = one("cpu-only", yes[i]);
    assert_int_equal(scalene_config_get(c, 0)->boolean, 1);
    scalene_config_free(c);
    c = one("cpu_only", no[i]);
    assert_int_equal(scalene_config_get(c, 0)->boolean, 0);
    scalene_config_free(c);
  }
  one_fails("cpu-only", "tRue", "\"cpu-only\" must be a bool (true or false), not \"tRue\"");
  one_fails("cpu-only", "y", "\"cpu-only\" must be a bool (true or false), not \"y\"");
  one_fails("cpu-only", "1", "\"cpu-only\" must be a bool (true or false), not \"1\"");
  /* libyaml places an empty value right after the ':'. */
  parse_fails("cpu-only:\n", SCALENE_EFORMAT, 1, 10,
              "\"cpu-only\" must be a bool (true or false), not an empty value");
  /* Quoted scalars are strings. */
  one_fails("cpu-only", "\"true\"",
            "\"cpu-only\" must be a bool (true or false), not the quoted string \"true\"");
  one_fails("cpu_only", "'yes'",
            "\"cpu_only\" must be a bool (true or false), not the quoted string \"yes\"");
  one_fails("cpu-only", "!!str true",
            "\"cpu-only\" must be a bool (true or false), not !!str \"true\"");
  one_fails("cpu-only", "!!int 1", "\"cpu-only\" must be a bool (true or false), not !!int \"1\"");
  one_fails("cpu-only", "!!bool maybe",
            "\"cpu-only\" must be a bool (true or false), not !!bool \"maybe\"");
  parse_fails("cpu-only: |\n  true\n", SCALENE_EFORMAT, 1, 11,
              "\"cpu-only\" must be a bool (true or false), not the block string \"true\\n\"");
}

static void test_int(void **state) {
  (void)state;
  static const struct {
    const char *text;
    int64_t value;
  } good[] = {
      {"0", 0},
      {"-0", 0},
      {"+7", 7},
      {"007", 7},
      {"123456789", 123456789},
      {"9223372036854775807", INT64_MAX},
      {"-9223372036854775808", INT64_MIN},
      {"!!int 42", 42},
  };
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    scalene_config_t *c = one("malloc-threshold", good[i].text);
    const scalene_config_value_t *v = scalene_config_get(c, 0);
    assert_int_equal(v->type, SCALENE_CONFIG_INT);
    assert_true(v->integer == good[i].value);
    assert_true(v->number == (double)good[i].value);
    scalene_config_free(c);
  }
  static const char *const bad[] = {"0x10", "1_000", "1e3", "1.0", "+-1", "++1", "12a",
                                    "one",  "+",     "1-",  ".5",  "~"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char msg[128];
    snprintf(msg, sizeof msg, "\"malloc-threshold\" must be an integer, not \"%s\"", bad[i]);
    one_fails("malloc-threshold", bad[i], msg);
  }
  one_fails("malloc-threshold", "9223372036854775808",
            "\"malloc-threshold\" must be an integer from -2**63 to 2**63-1, not "
            "\"9223372036854775808\"");
  one_fails("malloc-threshold", "-9223372036854775809",
            "\"malloc-threshold\" must be an integer from -2**63 to 2**63-1, not "
            "\"-9223372036854775809\"");
  one_fails("malloc-threshold", "99999999999999999999999",
            "\"malloc-threshold\" must be an integer from -2**63 to 2**63-1, not "
            "\"99999999999999999999999\"");
  one_fails("malloc-threshold", "\"5\"",
            "\"malloc-threshold\" must be an integer, not the quoted string \"5\"");
  one_fails("malloc-threshold", "!!float 5",
            "\"malloc-threshold\" must be an integer, not !!float \"5\"");
  one_fails("malloc-threshold", "true", "\"malloc-threshold\" must be an integer, not \"true\"");
}

static void test_float(void **state) {
  (void)state;
  static const struct {
    const char *text;
    double value;
  } good[] = {
      {"0.005", 0.005}, {"5", 5.0},        {"-1", -1.0},       {".5", 0.5},
      {"1.", 1.0},      {"1e-3", 1e-3},    {"+2.5E+2", 250.0}, {"-0.0", 0.0},
      {"!!int 3", 3.0}, {"!!float 4", 4.0}, {"1e-400", 0.0},
      {"12345678901234567890", 12345678901234567890.0},
  };
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    scalene_config_t *c = one("cpu-sampling-rate", good[i].text);
    const scalene_config_value_t *v = scalene_config_get(c, 0);
    assert_int_equal(v->type, SCALENE_CONFIG_FLOAT);
    if (v->number != good[i].value) fail_msg("%s gave %g", good[i].text, v->number);
    scalene_config_free(c);
  }
  static const char *const bad[] = {".inf", "-.inf", ".nan", ".NaN", "inf",  "nan",  "1,5",
                                    "0x1p3", "1e",   "e5",   ".",    "1.2.3", "fast", "1 e5",
                                    "0x10"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char msg[128];
    snprintf(msg, sizeof msg, "\"cpu-sampling-rate\" must be a number, not \"%s\"", bad[i]);
    one_fails("cpu-sampling-rate", bad[i], msg);
  }
  one_fails("cpu-sampling-rate", "1e999",
            "\"cpu-sampling-rate\" must be a finite number, not \"1e999\"");
  one_fails("cpu-sampling-rate", "-1e400",
            "\"cpu-sampling-rate\" must be a finite number, not \"-1e400\"");
  one_fails("cpu-sampling-rate", "'0.5'",
            "\"cpu-sampling-rate\" must be a number, not the quoted string \"0.5\"");
  one_fails("cpu-sampling-rate", "!!int 0.5",
            "\"cpu-sampling-rate\" must be a number, not !!int \"0.5\"");
  one_fails("cpu-sampling-rate", "!!bool 1", "\"cpu-sampling-rate\" must be a number, not !!bool \"1\"");
  parse_fails("cpu-sampling-rate:\n", SCALENE_EFORMAT, 1, 19,
              "\"cpu-sampling-rate\" must be a number, not an empty value");
}

static void test_string(void **state) {
  (void)state;
  static const struct {
    const char *text, *value;
  } good[] = {
      {"prof.json", "prof.json"},
      {"\"true\"", "true"},
      {"true", "true"},          /* as written, not a bool */
      {"5", "5"},
      {"0.50", "0.50"},
      {"~", "~"},
      {"null", "null"},
      {"", ""},
      {"''", ""},
      {"'it''s'", "it's"},
      {"\"tab\\there\"", "tab\there"},
      {"!!int 5", "5"},
      {"!!str yes", "yes"},
      {"a b  c", "a b  c"},
      {"/tmp/x y.json", "/tmp/x y.json"},
      {"\"\\u00e9t\\u00e9\"", "\xc3\xa9t\xc3\xa9"},
  };
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    scalene_config_t *c = one("outfile", good[i].text);
    const scalene_config_value_t *v = scalene_config_get(c, 0);
    assert_int_equal(v->type, SCALENE_CONFIG_STRING);
    assert_string_equal(v->string, good[i].value);
    assert_null(v->items);
    scalene_config_free(c);
  }
  /* Block scalars and folded plain scalars, as YAML reads them. */
  scalene_config_t *c = parse_ok("outfile: |\n  a\n  b\nprogram-path: >-\n  x\n  y\n");
  assert_string_equal(scalene_config_find(c, "outfile")->string, "a\nb\n");
  assert_int_equal(scalene_config_find(c, "outfile")->line, 1);
  assert_string_equal(scalene_config_find(c, "program-path")->string, "x y");
  scalene_config_free(c);
  c = parse_ok("outfile: one\n  two\n");
  assert_string_equal(scalene_config_get(c, 0)->string, "one two");
  scalene_config_free(c);
  one_fails("outfile", "[a, b]", "\"outfile\" must be a string, not a list");
  one_fails("outfile", "{a: b}", "\"outfile\" must be a string, not a mapping");
  parse_fails("outfile:\n  a: b\n", SCALENE_EFORMAT, 2, 3,
              "\"outfile\" must be a string, not a mapping");
  parse_fails("outfile:\n  - a\n", SCALENE_EFORMAT, 2, 3, "\"outfile\" must be a string, not a list");
  /* A NUL cannot be a C string. */
  one_fails("outfile", "\"a\\0b\"", "\"outfile\": a NUL character is not allowed");
}

static void test_list(void **state) {
  (void)state;
  /* A scalar is one item, as written. */
  scalene_config_t *c = one("profile-only", "mypkg,tools");
  const scalene_config_value_t *v = scalene_config_get(c, 0);
  assert_int_equal(v->type, SCALENE_CONFIG_LIST);
  assert_int_equal(v->n_items, 1);
  assert_string_equal(v->items[0], "mypkg,tools");
  assert_null(v->string);
  scalene_config_free(c);
  c = one("profile-only", "42");
  assert_string_equal(scalene_config_get(c, 0)->items[0], "42");
  scalene_config_free(c);
  /* Flow. */
  c = one("profile_only", "[a, \"b c\", 'true', 5, '']");
  v = scalene_config_get(c, 0);
  assert_int_equal(v->n_items, 5);
  assert_string_equal(v->items[0], "a");
  assert_string_equal(v->items[1], "b c");
  assert_string_equal(v->items[2], "true");
  assert_string_equal(v->items[3], "5");
  assert_string_equal(v->items[4], "");
  scalene_config_free(c);
  /* Block, indented or not, with the value's position at the first '-'. */
  c = parse_ok("profile-only:\n  - mypkg\n  - !!str tools\nprogram-path: x\n");
  v = scalene_config_get(c, 0);
  assert_int_equal(v->n_items, 2);
  assert_string_equal(v->items[0], "mypkg");
  assert_string_equal(v->items[1], "tools");
  assert_int_equal(v->line, 2);
  assert_int_equal(v->column, 3);
  scalene_config_free(c);
  c = parse_ok("profile-only:\n- a\n- b\n- c\n");
  assert_int_equal(scalene_config_get(c, 0)->n_items, 3);
  assert_string_equal(scalene_config_get(c, 0)->items[2], "c");
  scalene_config_free(c);
  /* Empty. */
  c = one("profile-only", "[]");
  v = scalene_config_get(c, 0);
  assert_int_equal(v->n_items, 0);
  assert_non_null(v->items);
  scalene_config_free(c);
  c = one("profile-only", "!!seq [x]");
  assert_int_equal(scalene_config_get(c, 0)->n_items, 1);
  scalene_config_free(c);
  /* Many items (the item array grows). */
  char doc[2048] = "profile-only: [";
  for (int i = 0; i < 100; i++) snprintf(doc + strlen(doc), sizeof doc - strlen(doc), "i%d, ", i);
  strcat(doc, "end]\n");
  c = parse_ok(doc);
  assert_int_equal(scalene_config_get(c, 0)->n_items, 101);
  assert_string_equal(scalene_config_get(c, 0)->items[99], "i99");
  scalene_config_free(c);
  /* Refused. */
  parse_fails("profile-only: [a, [b]]\n", SCALENE_EFORMAT, 1, 19,
              "\"profile-only\": list items must be strings, not a list");
  parse_fails("profile-only:\n  - a\n  - {b: c}\n", SCALENE_EFORMAT, 3, 5,
              "\"profile-only\": list items must be strings, not a mapping");
  parse_fails("profile-only:\n  - a\n  - k: v\n", SCALENE_EFORMAT, 3, 5,
              "\"profile-only\": list items must be strings, not a mapping");
  parse_fails("outfile: &x a\nprofile-only: [*x]\n", SCALENE_EFORMAT, 1, 10,
              "\"outfile\": anchors (&x) are not allowed");
  parse_fails("profile-only: [a, *x]\n", SCALENE_EFORMAT, 1, 19,
              "\"profile-only\": aliases (*x) are not allowed");
  parse_fails("profile-only: [a, &y b]\n", SCALENE_EFORMAT, 1, 19,
              "\"profile-only\": anchors (&y) are not allowed");
  parse_fails("profile-only: [a, !foo b]\n", SCALENE_EFORMAT, 1, 19, NULL);
  parse_fails("profile-only: [a, \"b\\0\"]\n", SCALENE_EFORMAT, 1, 19,
              "\"profile-only\": a NUL character is not allowed");
  one_fails("profile-only", "{a: b}",
            "\"profile-only\" must be a string or a list of strings, not a mapping");
  one_fails("profile-only", "&a [x]", "\"profile-only\": anchors (&a) are not allowed");
  one_fails("profile-only", "!!set [x]",
            "\"profile-only\": tag !!set is not allowed (a list takes !!seq)");
}

/* ------------------------------------------------------------ errors */

static void test_keys(void **state) {
  (void)state;
  parse_fails("outfile: x\ncpu_onlyy: true\n", SCALENE_EFORMAT, 2, 1,
              "unknown key \"cpu_onlyy\"");
  parse_fails("outfile: a\ncpu-only: true\n  \noutfile: b\n", SCALENE_EFORMAT, 4, 1,
              "\"outfile\" is given twice (first at line 1)");
  parse_fails("cpu-only: yes\nx: 1\n", SCALENE_EFORMAT, 2, 1, "unknown key \"x\"");
  /* The two spellings are one key. */
  parse_fails("  cpu-only: yes\n  cpu_only: no\n", SCALENE_EFORMAT, 2, 3,
              "\"cpu_only\" is given twice (first at line 1)");
  /* Flow mapping: the position is the key's. */
  parse_fails("{outfile: a, profile-only: b, outfile: c}", SCALENE_EFORMAT, 1, 31,
              "\"outfile\" is given twice (first at line 1)");
  parse_fails("[a]: 1\n", SCALENE_EFORMAT, 1, 1, "a key must be a string, not a list");
  parse_fails("? {a: b}\n: 1\n", SCALENE_EFORMAT, 1, 3, "a key must be a string, not a mapping");
  parse_fails("outfile: &k x\n*k : 1\n", SCALENE_EFORMAT, 1, 10, NULL);
  parse_fails("*k : 1\n", SCALENE_EFORMAT, 1, 1, "a key must be a string, not an alias");
  parse_fails("&k outfile: 1\n", SCALENE_EFORMAT, 1, 1, "a key: anchors (&k) are not allowed");
  parse_fails("!!int 5: 1\n", SCALENE_EFORMAT, 1, 1, "a key must be a string, not !!int");
  parse_fails("!foo outfile: 1\n", SCALENE_EFORMAT, 1, 1,
              "a key: tag !foo is not allowed (scalars take !!bool, !!int, !!float or !!str)");
  parse_fails("\"\": 1\n", SCALENE_EFORMAT, 1, 1, "unknown key \"\"");
  parse_fails("?\n: 1\n", SCALENE_EFORMAT, 1, 2, "unknown key \"\"");
  parse_fails("\"a\\0b\": 1\n", SCALENE_EFORMAT, 1, 1, "a key: a NUL character is not allowed");
  /* Long and multi-line keys stay short and on one line. */
  parse_fails("\"line one\\nline two and a key much longer than anyone would ever write\": 1\n",
              SCALENE_EFORMAT, 1, 1,
              "unknown key \"line one\\nline two and a key much longer than a...\"");
}

static void test_values(void **state) {
  (void)state;
  one_fails("cpu-sampling-rate", "fast", "\"cpu-sampling-rate\" must be a number, not \"fast\"");
  one_fails("outfile", "!foo x",
            "\"outfile\": tag !foo is not allowed (scalars take !!bool, !!int, !!float or !!str)");
  one_fails("outfile", "!!binary aGk=",
            "\"outfile\": tag !!binary is not allowed (scalars take !!bool, !!int, !!float or "
            "!!str)");
  one_fails("outfile", "! x", NULL);
  one_fails("outfile", "!!map {}", NULL);
  one_fails("cpu-only", "!!seq [x]", "\"cpu-only\" must be a bool (true or false), not a list");
  one_fails("outfile", "&a x", "\"outfile\": anchors (&a) are not allowed");
  parse_fails("outfile: &a x\nprogram-path: *a\n", SCALENE_EFORMAT, 1, 10, NULL);
  parse_fails("program-path: *a\n", SCALENE_EFORMAT, 1, 15,
              "\"program-path\": aliases (*a) are not allowed");
  /* A long value in a message is cut and kept on one line. */
  parse_fails("cpu-only: \"a\\tb\\nc \\\" \\\\ \\x01 0123456789012345678901234567890123456789\"\n",
              SCALENE_EFORMAT, 1, 11,
              "\"cpu-only\" must be a bool (true or false), not the quoted string "
              "\"a\\tb\\nc \\\" \\\\ \\x01 0123456789012345678901234567...\"");
}

static void test_document(void **state) {
  (void)state;
  parse_fails("", SCALENE_EFORMAT, 1, 1, "empty file: expected a mapping of options");
  parse_fails("# nothing\n\n", SCALENE_EFORMAT, 1, 1, "empty file: expected a mapping of options");
  parse_fails("---\n", SCALENE_EFORMAT, 2, 1, "empty document: expected a mapping of options");
  parse_fails("# c\n--- # x\n...\n", SCALENE_EFORMAT, 3, 1,
              "empty document: expected a mapping of options");
  parse_fails("- outfile: x\n", SCALENE_EFORMAT, 1, 1,
              "the top level must be a mapping of options, not a list");
  parse_fails("\n[a, b]\n", SCALENE_EFORMAT, 2, 1,
              "the top level must be a mapping of options, not a list");
  parse_fails("outfile\n", SCALENE_EFORMAT, 1, 1,
              "the top level must be a mapping of options, not \"outfile\"");
  parse_fails("'x'\n", SCALENE_EFORMAT, 1, 1,
              "the top level must be a mapping of options, not the quoted string \"x\"");
  parse_fails("*a\n", SCALENE_EFORMAT, 1, 1,
              "the top level must be a mapping of options, not an alias");
  parse_fails("&a {outfile: x}\n", SCALENE_EFORMAT, 1, 1,
              "the top level: anchors (&a) are not allowed");
  parse_fails("!foo {outfile: x}\n", SCALENE_EFORMAT, 1, 1,
              "the top level: tag !foo is not allowed (a mapping takes !!map)");
  parse_fails("outfile: x\n---\ncpu-only: true\n", SCALENE_EFORMAT, 2, 1,
              "a second document is not allowed: the file is one mapping of options");
  parse_fails("outfile: x\n...\n---\n", SCALENE_EFORMAT, 3, 1, NULL);
  parse_fails("--- {outfile: x}\n--- {outfile: y}\n", SCALENE_EFORMAT, 2, 1, NULL);
}

static void test_syntax(void **state) {
  (void)state;
  parse_fails("outfile: x\ncpu-only\n", SCALENE_EPARSE, 3, 1,
              "could not find expected ':' (while scanning a simple key at line 2, column 1)");
  parse_fails("outfile: \"x\n", SCALENE_EPARSE, 2, 1, NULL);
  parse_fails("profile-only: [a, b\n", SCALENE_EPARSE, 2, 1, NULL);
  parse_fails("outfile: x\n  cpu-only: y\n", SCALENE_EPARSE, 2, 11,
              "mapping values are not allowed in this context");
  parse_fails("outfile: x\n\tcpu-only: y\n", SCALENE_EPARSE, 2, 1, NULL);
  parse_fails("outfile: !<x y\n", SCALENE_EPARSE, 1, 13,
              "did not find the expected '>' (while scanning a tag at line 1, column 10)");
  /* The reader's errors: a byte offset turned into line and column. */
  parse_fails("outfile: x\ncpu-only: \"\xff\"\n", SCALENE_EPARSE, 2, 12,
              "invalid leading UTF-8 octet (byte 0xff)");
  parse_fails("outfile: \"a\x01\"\n", SCALENE_EPARSE, 1, 12, NULL);
  parse_fails("\xef\xbb\xbf" "outfile: \xc3\xa9\xff\n", SCALENE_EPARSE, 1, 11,
              "invalid leading UTF-8 octet (byte 0xff)");
  /* A syntax error after a good document is still one. */
  parse_fails("outfile: x\n--- [\n", SCALENE_EFORMAT, 2, 1, NULL);
}

static void test_positions(void **state) {
  (void)state;
  /* Columns count characters; the offset counts bytes. */
  scalene_error_t err;
  scalene_config_t *c;
  const char *text = "outfile: \xc3\xa9t\xc3\xa9\ncpu-only: \xc3\xa9\n";
  assert_int_equal(scalene_config_parse(text, strlen(text), "u.yaml", schema, N_KEYS, &c, &err),
                   SCALENE_EFORMAT);
  assert_int_equal(err.line, 2);
  assert_int_equal(err.column, 11);
  assert_int_equal(err.offset, (long)(strchr(text, '\n') + 1 + 10 - text));
  text = "outfile: \xc3\xa9t\xc3\xa9  \xc3\xa9\nnope: 1\n";
  assert_int_equal(scalene_config_parse(text, strlen(text), "u.yaml", schema, N_KEYS, &c, &err),
                   SCALENE_EFORMAT);
  assert_int_equal(err.line, 2);
  assert_int_equal(err.column, 1);
  assert_int_equal(err.offset, (long)(strchr(text, '\n') + 1 - text));
  /* A UTF-8 BOM is not a column. */
  text = "\xef\xbb\xbf" "nope: 1\n";
  assert_int_equal(scalene_config_parse(text, strlen(text), "u.yaml", schema, N_KEYS, &c, &err),
                   SCALENE_EFORMAT);
  assert_int_equal(err.line, 1);
  assert_int_equal(err.column, 1);
  assert_int_equal(err.offset, 3);
  /* UTF-16 (libyaml converts it): positions, but no byte offset. */
  static const char utf16[] = "\xff\xfe" "o\0u\0t\0f\0i\0l\0e\0:\0 \0x\0\n\0n\0o\0:\0 \0" "1\0\n\0";
  assert_int_equal(scalene_config_parse(utf16, sizeof utf16 - 1, "u.yaml", schema, N_KEYS, &c,
                                        &err),
                   SCALENE_EFORMAT);
  assert_string_equal(err.text, "unknown key \"no\"");
  assert_int_equal(err.line, 2);
  assert_int_equal(err.column, 1);
  assert_int_equal(err.offset, -1);
  /* CRLF line ends. */
  text = "outfile: x\r\ncpu-only: x\r\n";
  assert_int_equal(scalene_config_parse(text, strlen(text), "u.yaml", schema, N_KEYS, &c, &err),
                   SCALENE_EFORMAT);
  assert_int_equal(err.line, 2);
  assert_int_equal(err.column, 11);
  assert_int_equal(err.offset, 22);
  /* The formatted message. */
  text = "outfile: x\n\ncpu-only: true\n  # c\nmalloc-threshold:   lots\n";
  assert_int_equal(scalene_config_parse(text, strlen(text), "scalene.yaml", schema, N_KEYS, &c,
                                        &err),
                   SCALENE_EFORMAT);
  char buf[512];
  assert_string_equal(scalene_error_format(&err, buf, sizeof buf),
                      "scalene.yaml:5:21: \"malloc-threshold\" must be an integer, not \"lots\"");
}

static void test_parse_args(void **state) {
  (void)state;
  scalene_config_t *c = (scalene_config_t *)1;
  scalene_error_t err;
  /* Not NUL-terminated: only len bytes are read. */
  const char text[] = "outfile: abcXYZ";
  assert_int_equal(scalene_config_parse(text, 12, NULL, schema, N_KEYS, &c, &err), 0);
  assert_string_equal(scalene_config_get(c, 0)->string, "abc");
  scalene_config_free(c);
  /* A NULL name is "<string>". */
  assert_int_equal(scalene_config_parse("x: 1", 4, NULL, schema, N_KEYS, &c, &err),
                   SCALENE_EFORMAT);
  assert_string_equal(err.source, "<string>");
  assert_null(c);
  /* err may be NULL. */
  c = (scalene_config_t *)1;
  assert_int_equal(scalene_config_parse("x: 1", 4, "n", schema, N_KEYS, &c, NULL),
                   SCALENE_EFORMAT);
  assert_null(c);
  assert_int_equal(scalene_config_parse("outfile: 1", 10, "n", schema, N_KEYS, &c, NULL), 0);
  scalene_config_free(c);
  /* NULL arguments. */
  c = (scalene_config_t *)1;
  assert_int_equal(scalene_config_parse(NULL, 0, "n", schema, N_KEYS, &c, &err), SCALENE_EINVAL);
  assert_null(c);
  assert_true(err.text[0] != '\0');
  assert_int_equal(scalene_config_parse("a: 1", 4, "n", schema, N_KEYS, NULL, &err),
                   SCALENE_EINVAL);
  c = (scalene_config_t *)1;
  assert_int_equal(scalene_config_parse("a: 1", 4, "n", NULL, 3, &c, &err), SCALENE_EINVAL);
  assert_null(c);
  /* No schema: every key is unknown. */
  assert_int_equal(scalene_config_parse("a: 1", 4, "n", NULL, 0, &c, &err), SCALENE_EFORMAT);
  assert_string_equal(err.text, "unknown key \"a\"");
  assert_int_equal(scalene_config_load(NULL, schema, N_KEYS, &c, &err), SCALENE_EINVAL);
  assert_null(c);
  assert_int_equal(scalene_config_load("x.yaml", schema, N_KEYS, NULL, &err), SCALENE_EINVAL);
  assert_int_equal(scalene_config_load(NULL, schema, N_KEYS, NULL, NULL), SCALENE_EINVAL);
}

static void test_bad_schema(void **state) {
  (void)state;
  scalene_config_t *c = (scalene_config_t *)1;
  scalene_error_t err;
  const scalene_config_key_t no_name[] = {{"a", SCALENE_CONFIG_BOOL}, {NULL, SCALENE_CONFIG_INT}};
  assert_int_equal(scalene_config_parse("a: 1", 4, "n", no_name, 2, &c, &err), SCALENE_EINVAL);
  assert_null(c);
  assert_string_equal(err.text, "schema key 1 has no name");
  const scalene_config_key_t empty_name[] = {{"", SCALENE_CONFIG_BOOL}};
  assert_int_equal(scalene_config_parse("a: 1", 4, "n", empty_name, 1, &c, &err), SCALENE_EINVAL);
  const scalene_config_key_t bad_type[] = {{"a", (scalene_config_type_t)0}};
  assert_int_equal(scalene_config_parse("a: 1", 4, "n", bad_type, 1, &c, &err), SCALENE_EINVAL);
  const scalene_config_key_t bad_type2[] = {{"a", (scalene_config_type_t)6}};
  assert_int_equal(scalene_config_parse("a: 1", 4, "n", bad_type2, 1, &c, &err), SCALENE_EINVAL);
  const scalene_config_key_t twice[] = {{"cpu-only", SCALENE_CONFIG_BOOL},
                                        {"cpu_only", SCALENE_CONFIG_BOOL}};
  assert_int_equal(scalene_config_parse("a: 1", 4, "n", twice, 2, &c, &err), SCALENE_EINVAL);
  assert_string_equal(err.text, "schema key \"cpu_only\" is there twice (as \"cpu-only\")");
  assert_int_equal(scalene_config_load("/nonexistent/x.yaml", twice, 2, &c, &err),
                   SCALENE_EINVAL);
  assert_null(c);
}

/* ------------------------------------------------------------ files */

static char tmpdir[64];

static int setup_dir(void **state) {
  (void)state;
  snprintf(tmpdir, sizeof tmpdir, "/tmp/test_config.XXXXXX");
  return mkdtemp(tmpdir) != NULL ? 0 : -1;
}

static int teardown_dir(void **state) {
  (void)state;
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  assert_int_equal(fputs(text, f) >= 0, 1);
  assert_int_equal(fclose(f), 0);
}

static void test_load(void **state) {
  (void)state;
  char path[128];
  snprintf(path, sizeof path, "%s/scalene.yaml", tmpdir);
  write_file(path, "outfile: prof.json\ncpu_only: true\nprofile-only:\n  - a\n  - b\n");
  scalene_config_t *c = NULL;
  scalene_error_t err;
  assert_int_equal(scalene_config_load(path, schema, N_KEYS, &c, &err), 0);
  assert_int_equal(scalene_config_count(c), 3);
  assert_string_equal(scalene_config_find(c, "outfile")->string, "prof.json");
  assert_int_equal(scalene_config_find(c, "cpu-only")->boolean, 1);
  assert_int_equal(scalene_config_find(c, "profile_only")->n_items, 2);
  scalene_config_free(c);

  /* Errors name the file. */
  write_file(path, "outfile: x\ncpu-only: maybe\n");
  c = (scalene_config_t *)1;
  assert_int_equal(scalene_config_load(path, schema, N_KEYS, &c, &err), SCALENE_EFORMAT);
  assert_null(c);
  char buf[512], want[512];
  snprintf(want, sizeof want,
           "%s:2:11: \"cpu-only\" must be a bool (true or false), not \"maybe\"", path);
  assert_string_equal(scalene_error_format(&err, buf, sizeof buf), want);
  write_file(path, "outfile: x\n  y: z\n");
  assert_int_equal(scalene_config_load(path, schema, N_KEYS, &c, &err), SCALENE_EPARSE);
  assert_string_equal(err.source, path);
  assert_int_equal(err.line, 2);
  assert_true(err.column > 0);
  write_file(path, "");
  assert_int_equal(scalene_config_load(path, schema, N_KEYS, &c, &err), SCALENE_EFORMAT);
  assert_string_equal(err.source, path);

  /* Missing file, directory. */
  char missing[160];
  snprintf(missing, sizeof missing, "%s/missing.yaml", tmpdir);
  c = (scalene_config_t *)1;
  assert_int_equal(scalene_config_load(missing, schema, N_KEYS, &c, &err), SCALENE_ENOENT);
  assert_null(c);
  assert_string_equal(err.source, missing);
  assert_int_equal(err.line, 0);
  snprintf(want, sizeof want, "%s: cannot open: %s", missing, strerror(ENOENT));
  assert_string_equal(scalene_error_format(&err, buf, sizeof buf), want);
  c = (scalene_config_t *)1;
  assert_int_equal(scalene_config_load(tmpdir, schema, N_KEYS, &c, &err), SCALENE_EIO);
  assert_null(c);
  assert_string_equal(err.source, tmpdir);
  assert_string_equal(err.text, "cannot read: is a directory");
  assert_int_equal(scalene_config_load("/dev/null", schema, N_KEYS, &c, &err), SCALENE_EIO);
  assert_string_equal(err.text, "cannot read: not a regular file");
  /* Unreadable (only when not root, who reads anything). */
  if (geteuid() != 0) {
    write_file(path, "outfile: x\n");
    assert_int_equal(chmod(path, 0), 0);
    assert_int_equal(scalene_config_load(path, schema, N_KEYS, &c, &err), SCALENE_EIO);
    assert_int_equal(chmod(path, 0600), 0);
  }
  /* A file bigger than a page, read in more than one go. */
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  for (int i = 0; i < 2000; i++) fprintf(f, "# comment line %d\n", i);
  fprintf(f, "outfile: end\n");
  assert_int_equal(fclose(f), 0);
  assert_int_equal(scalene_config_load(path, schema, N_KEYS, &c, &err), 0);
  assert_string_equal(scalene_config_get(c, 0)->string, "end");
  assert_int_equal(scalene_config_get(c, 0)->line, 2001);
  scalene_config_free(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_all_types),
      cmocka_unit_test(test_order_and_spellings),
      cmocka_unit_test(test_find),
      cmocka_unit_test(test_bool),
      cmocka_unit_test(test_int),
      cmocka_unit_test(test_float),
      cmocka_unit_test(test_string),
      cmocka_unit_test(test_list),
      cmocka_unit_test(test_keys),
      cmocka_unit_test(test_values),
      cmocka_unit_test(test_document),
      cmocka_unit_test(test_syntax),
      cmocka_unit_test(test_positions),
      cmocka_unit_test(test_parse_args),
      cmocka_unit_test(test_bad_schema),
      cmocka_unit_test(test_load),
  };
  return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
