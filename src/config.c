/* libscaleneprof: config.h -- option files in YAML, checked against a schema.
 *
 * The file is read through libyaml's event parser, never by hand: one pass
 * over the events of the stream checks the shape the header describes (one
 * document, a top-level mapping of known keys to scalars or sequences of
 * scalars) and converts each value to its key's type.  Every refusal names
 * the offending key or value by its position: libyaml's marks are 0-based
 * and count characters (a BOM not included), ours are 1-based; err->offset
 * is the byte offset in the file.
 *
 * Not for signal handlers or allocation hooks: everything here allocates. */
#include "internal.h" /* first: config.h sets _GNU_SOURCE */

#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include <scalene/config.h>

/* The largest config file read: anything bigger is not an options file. */
#define CONFIG_READ_MAX ((off_t)1 << 24)

/* Scalars quoted in messages are cut to this many bytes. */
#define QUOTE_MAX 48

#define TAG_PREFIX "tag:yaml.org,2002:"

struct scalene_config {
  scalene_config_value_t *values;
  size_t n, cap;
};

/* ------------------------------------------------------------ names */

/* Whether a key of len bytes matches a schema name, '-' and '_' alike. */
static int name_matches(const char *key, size_t len, const char *name) {
  size_t i = 0;
  for (; i < len && name[i] != '\0'; i++) {
    char a = key[i] == '_' ? '-' : key[i];
    char b = name[i] == '_' ? '-' : name[i];
    if (a != b) return 0;
  }
  return i == len && name[i] == '\0';
}

static const char *type_wanted(scalene_config_type_t type) {
  switch (type) {
  case SCALENE_CONFIG_BOOL: return "a bool (true or false)";
  case SCALENE_CONFIG_INT: return "an integer";
  case SCALENE_CONFIG_FLOAT: return "a number";
  case SCALENE_CONFIG_STRING: return "a string";
  case SCALENE_CONFIG_LIST: return "a string or a list of strings";
  }
  return "a value";
}

/* ------------------------------------------------------------ the loader */

typedef struct loader {
  yaml_parser_t parser;
  const char *source;        /* what errors name */
  const unsigned char *text; /* the input, for byte offsets */
  size_t len;
  const scalene_config_key_t *schema;
  size_t n_keys;
  size_t *seen;              /* per schema key: the 1-based line of its key, or 0 */
  scalene_config_t *c;
  scalene_error_t *err;
} loader_t;

/* The byte offset of the character at libyaml's index (which counts
 * characters after a UTF-8 BOM), or -1 when the input is not UTF-8 (libyaml
 * converted UTF-16 and its indices do not map onto our bytes). */
static long byte_offset(const loader_t *L, size_t index) {
  const unsigned char *t = L->text;
  size_t n = L->len, i = 0;
  if (n >= 2 && ((t[0] == 0xFE && t[1] == 0xFF) || (t[0] == 0xFF && t[1] == 0xFE))) return -1;
  if (n >= 3 && t[0] == 0xEF && t[1] == 0xBB && t[2] == 0xBF) i = 3;
  for (size_t chars = 0; i < n; i++) {
    if ((t[i] & 0xC0) == 0x80) continue; /* a continuation byte */
    if (chars++ == index) break;
  }
  return (long)i;
}

static void fail_at(loader_t *L, const yaml_mark_t *m, const char *fmt, ...)
    SCALENE_PRINTF(3, 4);

/* Fills L->err with a message at mark m (NULL: no position). */
static void fail_at(loader_t *L, const yaml_mark_t *m, const char *fmt, ...) {
  char text[SCALENE_ERROR_TEXT_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  if (m == NULL)
    scalene__error_set(L->err, L->source, 0, 0, -1, "%s", text);
  else
    scalene__error_set(L->err, L->source, (int)m->line + 1, (int)m->column + 1,
                       byte_offset(L, m->index), "%s", text);
}

/* s (len bytes) escaped onto one line (\n, \t, \", \\, \xNN) and cut at a
 * character boundary after about QUOTE_MAX bytes, in double quotes when
 * quoted; in buf. */
static const char *escape(char *buf, size_t size, const char *s, size_t len, int quoted) {
  size_t o = 0;
  if (quoted) buf[o++] = '"';
  for (size_t i = 0; i < len; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (o >= QUOTE_MAX && (ch & 0xC0) != 0x80) {
      o += (size_t)snprintf(buf + o, size - o, "...");
      break;
    }
    if (o + 6 >= size) break;
    if ((ch == '"' && quoted) || ch == '\\') {
      buf[o++] = '\\';
      buf[o++] = (char)ch;
    } else if (ch == '\n') {
      buf[o++] = '\\';
      buf[o++] = 'n';
    } else if (ch == '\t') {
      buf[o++] = '\\';
      buf[o++] = 't';
    } else if (ch < 0x20 || ch == 0x7F) {
      o += (size_t)snprintf(buf + o, size - o, "\\x%02x", ch);
    } else {
      buf[o++] = (char)ch;
    }
  }
  if (o + 2 > size) o = size - 2;
  if (quoted) buf[o++] = '"';
  buf[o] = '\0';
  return buf;
}

static const char *quote(char *buf, size_t size, const char *s, size_t len) {
  return escape(buf, size, s, len, 1);
}

#define QBUF (QUOTE_MAX + 16)

/* How a node that is not a scalar is named in messages. */
static const char *node_kind(yaml_event_type_t type) {
  switch (type) {
  case YAML_SEQUENCE_START_EVENT: return "a list";
  case YAML_MAPPING_START_EVENT: return "a mapping";
  case YAML_ALIAS_EVENT: return "an alias";
  default: return "nothing";
  }
}

/* libyaml's own error, as SCALENE_EPARSE (or ENOMEM). */
static int parse_error(loader_t *L) {
  yaml_parser_t *p = &L->parser;
  if (p->error == YAML_MEMORY_ERROR) {
    fail_at(L, NULL, "out of memory");
    return SCALENE_ENOMEM;
  }
  const char *problem = p->problem != NULL ? p->problem : "invalid YAML";
  if (p->error == YAML_READER_ERROR) {
    /* problem_offset counts bytes of the input: the position from them
     * (UTF-8 after a BOM, as the marks count; none for UTF-16). */
    size_t off = p->problem_offset < L->len ? p->problem_offset : L->len;
    long base = byte_offset(L, 0);
    int line = base < 0 ? 0 : 1, column = base < 0 ? 0 : 1;
    for (size_t i = base < 0 ? off : (size_t)base; i < off; i++) {
      if (L->text[i] == '\n') {
        line++;
        column = 1;
      } else if ((L->text[i] & 0xC0) != 0x80) {
        column++;
      }
    }
    if (p->problem_value != -1)
      scalene__error_set(L->err, L->source, line, column, (long)off, "%s (byte 0x%02x)",
                         problem, (unsigned)p->problem_value & 0xFFu);
    else
      scalene__error_set(L->err, L->source, line, column, (long)off, "%s", problem);
    return SCALENE_EPARSE;
  }
  if (p->context != NULL)
    fail_at(L, &p->problem_mark, "%s (%s at line %zu, column %zu)", problem, p->context,
            p->context_mark.line + 1, p->context_mark.column + 1);
  else
    fail_at(L, &p->problem_mark, "%s", problem);
  return SCALENE_EPARSE;
}

static int next(loader_t *L, yaml_event_t *ev) {
  if (!yaml_parser_parse(&L->parser, ev)) return parse_error(L);
  return 0;
}

/* The properties of a node event: its anchor and tag (NULL when none). */
static void properties(const yaml_event_t *ev, const char **anchor, const char **tag) {
  *anchor = *tag = NULL;
  switch (ev->type) {
  case YAML_SCALAR_EVENT:
    *anchor = (const char *)ev->data.scalar.anchor;
    *tag = (const char *)ev->data.scalar.tag;
    break;
  case YAML_SEQUENCE_START_EVENT:
    *anchor = (const char *)ev->data.sequence_start.anchor;
    *tag = (const char *)ev->data.sequence_start.tag;
    break;
  case YAML_MAPPING_START_EVENT:
    *anchor = (const char *)ev->data.mapping_start.anchor;
    *tag = (const char *)ev->data.mapping_start.tag;
    break;
  case YAML_ALIAS_EVENT:
    *anchor = (const char *)ev->data.alias.anchor;
    break;
  default:
    break;
  }
}

/* The core schema's short name of a tag ("bool" for tag:yaml.org,2002:bool)
 * or NULL for any other tag. */
static const char *core_tag(const char *tag) {
  static const char *const core[] = {"bool", "int", "float", "str", "seq", "map"};
  if (tag == NULL || strncmp(tag, TAG_PREFIX, sizeof TAG_PREFIX - 1) != 0) return NULL;
  for (size_t i = 0; i < sizeof core / sizeof core[0]; i++)
    if (strcmp(tag + sizeof TAG_PREFIX - 1, core[i]) == 0) return core[i];
  return NULL;
}

/* A tag as written: "!!int" for the core schema's, else the whole tag. */
static const char *tag_text(char *buf, size_t size, const char *tag) {
  if (strncmp(tag, TAG_PREFIX, sizeof TAG_PREFIX - 1) == 0) {
    buf[0] = buf[1] = '!';
    escape(buf + 2, size - 2, tag + sizeof TAG_PREFIX - 1,
           strlen(tag + sizeof TAG_PREFIX - 1), 0);
    return buf;
  }
  return escape(buf, size, tag, strlen(tag), 0);
}

/* Refuses an alias, an anchor, or a tag: a collection may carry only its
 * own core tag (want: "seq" or "map"), a scalar (want NULL) any of the core
 * schema's scalar tags.  what names the node in the message ("\"outfile\"",
 * "the top level"; NULL for a key). */
static int check_properties(loader_t *L, const yaml_event_t *ev, const char *what,
                            const char *want) {
  const char *anchor, *tag;
  char q[QBUF];
  properties(ev, &anchor, &tag);
  const char *prefix = what != NULL ? what : "a key";
  if (ev->type == YAML_ALIAS_EVENT) {
    fail_at(L, &ev->start_mark, "%s: aliases (*%s) are not allowed", prefix,
            escape(q, sizeof q, anchor, strlen(anchor), 0));
    return SCALENE_EFORMAT;
  }
  if (anchor != NULL) {
    fail_at(L, &ev->start_mark, "%s: anchors (&%s) are not allowed", prefix,
            escape(q, sizeof q, anchor, strlen(anchor), 0));
    return SCALENE_EFORMAT;
  }
  if (tag == NULL) return 0;
  const char *short_tag = core_tag(tag);
  int ok;
  if (want != NULL)
    ok = short_tag != NULL && strcmp(short_tag, want) == 0;
  else
    ok = short_tag != NULL && strcmp(short_tag, "seq") != 0 && strcmp(short_tag, "map") != 0;
  if (!ok && what == NULL && short_tag != NULL) {
    fail_at(L, &ev->start_mark, "a key must be a string, not %s",
            tag_text(q, sizeof q, tag));
    return SCALENE_EFORMAT;
  }
  if (!ok) {
    fail_at(L, &ev->start_mark, "%s: tag %s is not allowed (%s)", prefix,
            tag_text(q, sizeof q, tag),
            want == NULL || strcmp(want, "str") == 0
                ? "scalars take !!bool, !!int, !!float or !!str"
                : strcmp(want, "seq") == 0 ? "a list takes !!seq" : "a mapping takes !!map");
    return SCALENE_EFORMAT;
  }
  return 0;
}

/* A scalar as messages show it: "text", the quoted string "text", !!int "5". */
static const char *describe(char *buf, size_t size, const yaml_event_t *ev) {
  char q[QBUF];
  const char *value = (const char *)ev->data.scalar.value;
  size_t len = ev->data.scalar.length;
  const char *tag = core_tag((const char *)ev->data.scalar.tag);
  quote(q, sizeof q, value, len);
  if (tag != NULL)
    snprintf(buf, size, "!!%s %s", tag, q);
  else if (ev->data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
           ev->data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE)
    snprintf(buf, size, "the quoted string %s", q);
  else if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
    snprintf(buf, size, "the block string %s", q);
  else if (len == 0)
    snprintf(buf, size, "an empty value");
  else
    snprintf(buf, size, "%s", q);
  return buf;
}

/* ------------------------------------------------------------ scalars */

static char *copy(const char *s, size_t len) {
  char *d = malloc(len + 1);
  if (d != NULL) {
    memcpy(d, s, len);
    d[len] = '\0';
  }
  return d;
}

static int parse_bool(const char *s, int *out) {
  static const char *const yes[] = {"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON"};
  static const char *const no[] = {"false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF"};
  for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
    if (strcmp(s, yes[i]) == 0) return *out = 1, 1;
    if (strcmp(s, no[i]) == 0) return *out = 0, 1;
  }
  return 0;
}

/* Decimal digits with an optional sign.  Returns 1 (an int within int64),
 * 0 (not an int) or -1 (an int out of range). */
static int parse_int(const char *s, int64_t *out) {
  const char *p = s;
  int neg = 0;
  if (*p == '+' || *p == '-') neg = *p++ == '-';
  if (*p == '\0') return 0;
  uint64_t v = 0, limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
  int range = 1;
  for (; *p != '\0'; p++) {
    if (*p < '0' || *p > '9') return 0;
    unsigned d = (unsigned)(*p - '0');
    if (v > (limit - d) / 10) range = 0;
    else v = v * 10 + d;
  }
  if (!range) return -1;
  *out = neg ? (v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v) : (int64_t)v;
  return 1;
}

/* strtod's decimal form, whole: [sign] (digits [. digits] | . digits)
 * [(e|E) [sign] digits].  Returns 1 (finite), 0 (not a number) or -1 (a
 * number out of range).  Converted in the C locale whatever the caller set. */
static int parse_float(const char *s, double *out) {
  const char *p = s;
  if (*p == '+' || *p == '-') p++;
  size_t digits = 0;
  while (*p >= '0' && *p <= '9') p++, digits++;
  if (*p == '.') {
    p++;
    while (*p >= '0' && *p <= '9') p++, digits++;
  }
  if (digits == 0) return 0;
  if (*p == 'e' || *p == 'E') {
    p++;
    if (*p == '+' || *p == '-') p++;
    if (!(*p >= '0' && *p <= '9')) return 0;
    while (*p >= '0' && *p <= '9') p++;
  }
  if (*p != '\0') return 0;
  locale_t c = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
  if (c == (locale_t)0) return 0;
  locale_t old = uselocale(c);
  errno = 0;
  double v = strtod(s, NULL);
  int e = errno;
  uselocale(old);
  freelocale(c);
  if (!isfinite(v) || (e == ERANGE && fabs(v) > 1.0)) return -1; /* overflow */
  *out = v;
  return 1;
}

/* ------------------------------------------------------------ values */

static int push(loader_t *L, const scalene_config_key_t *key, const yaml_event_t *at,
                scalene_config_value_t **out) {
  scalene_config_t *c = L->c;
  if (c->n == c->cap) {
    size_t cap = c->cap ? 2 * c->cap : 8;
    scalene_config_value_t *v = realloc(c->values, cap * sizeof *v);
    if (v == NULL) {
      fail_at(L, NULL, "out of memory");
      return SCALENE_ENOMEM;
    }
    c->values = v;
    c->cap = cap;
  }
  scalene_config_value_t *v = &c->values[c->n++];
  memset(v, 0, sizeof *v);
  v->name = key->name;
  v->type = key->type;
  v->line = (int)at->start_mark.line + 1;
  v->column = (int)at->start_mark.column + 1;
  *out = v;
  return 0;
}

/* Refuses a scalar that holds a NUL (a "\0" escape): C strings cannot. */
static int check_nul(loader_t *L, const yaml_event_t *ev, const char *what) {
  if (memchr(ev->data.scalar.value, '\0', ev->data.scalar.length) == NULL) return 0;
  fail_at(L, &ev->start_mark, "%s%sa NUL character is not allowed", what ? what : "",
          what ? ": " : "");
  return SCALENE_EFORMAT;
}

/* A scalar value of a key whose type is not a string: plain (or with the
 * matching core tag), in the type's form. */
static int typed_scalar(loader_t *L, const scalene_config_key_t *key, const char *k,
                        const yaml_event_t *ev, scalene_config_value_t *v) {
  const char *s = (const char *)ev->data.scalar.value;
  const char *tag = core_tag((const char *)ev->data.scalar.tag);
  int plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
  char d[QBUF + 32];
  int r = 0;
  switch (key->type) {
  case SCALENE_CONFIG_BOOL:
    if (plain && (tag == NULL || strcmp(tag, "bool") == 0) && parse_bool(s, &v->boolean))
      return 0;
    break;
  case SCALENE_CONFIG_INT:
    if (plain && (tag == NULL || strcmp(tag, "int") == 0)) {
      r = parse_int(s, &v->integer);
      if (r == 1) {
        v->number = (double)v->integer;
        return 0;
      }
    }
    if (r < 0) {
      fail_at(L, &ev->start_mark,
              "%s must be an integer from -2**63 to 2**63-1, not %s", k,
              describe(d, sizeof d, ev));
      return SCALENE_EFORMAT;
    }
    break;
  case SCALENE_CONFIG_FLOAT:
    if (plain && (tag == NULL || strcmp(tag, "float") == 0 || strcmp(tag, "int") == 0)) {
      if (tag != NULL && strcmp(tag, "int") == 0) {
        r = parse_int(s, &v->integer);
        if (r == 1) {
          v->number = (double)v->integer;
          v->integer = 0;
          return 0;
        }
      } else {
        r = parse_float(s, &v->number);
        if (r == 1) return 0;
      }
    }
    if (r < 0) {
      fail_at(L, &ev->start_mark, "%s must be a finite number, not %s", k,
              describe(d, sizeof d, ev));
      return SCALENE_EFORMAT;
    }
    break;
  default:
    break;
  }
  fail_at(L, &ev->start_mark, "%s must be %s, not %s", k, type_wanted(key->type),
          describe(d, sizeof d, ev));
  return SCALENE_EFORMAT;
}

/* The items of a sequence value (its start event already read) up to its
 * end, each a scalar as written. */
static int list_items(loader_t *L, const char *k, scalene_config_value_t *v) {
  char **items = NULL;
  size_t n = 0, cap = 0;
  int rc = 0;
  for (;;) {
    yaml_event_t ev;
    if ((rc = next(L, &ev)) != 0) break;
    if (ev.type == YAML_SEQUENCE_END_EVENT) {
      yaml_event_delete(&ev);
      break;
    }
    if (ev.type != YAML_SCALAR_EVENT && ev.type != YAML_ALIAS_EVENT) {
      fail_at(L, &ev.start_mark, "%s: list items must be strings, not %s", k,
              node_kind(ev.type));
      yaml_event_delete(&ev);
      rc = SCALENE_EFORMAT;
      break;
    }
    if ((rc = check_properties(L, &ev, k, NULL)) != 0 || (rc = check_nul(L, &ev, k)) != 0) {
      yaml_event_delete(&ev);
      break;
    }
    if (n + 1 >= cap) {
      size_t ncap = cap ? 2 * cap : 4;
      char **ni = realloc(items, ncap * sizeof *ni);
      if (ni == NULL) {
        yaml_event_delete(&ev);
        fail_at(L, NULL, "out of memory");
        rc = SCALENE_ENOMEM;
        break;
      }
      items = ni;
      cap = ncap;
    }
    items[n] = copy((const char *)ev.data.scalar.value, ev.data.scalar.length);
    yaml_event_delete(&ev);
    if (items[n] == NULL) {
      fail_at(L, NULL, "out of memory");
      rc = SCALENE_ENOMEM;
      break;
    }
    n++;
  }
  if (rc == 0 && items == NULL && (items = malloc(sizeof *items)) == NULL) {
    fail_at(L, NULL, "out of memory");
    rc = SCALENE_ENOMEM;
  }
  /* Owned by v even on failure, so that scalene_config_free frees them. */
  v->items = (const char *const *)items;
  v->n_items = n;
  return rc;
}

/* The value of key (k: the key as written, quoted for messages). */
static int value(loader_t *L, const scalene_config_key_t *key, const char *k) {
  yaml_event_t ev;
  int rc = next(L, &ev);
  if (rc != 0) return rc;
  const char *want = ev.type == YAML_SEQUENCE_START_EVENT ? "seq"
                     : ev.type == YAML_MAPPING_START_EVENT ? "map"
                                                          : NULL;
  if ((rc = check_properties(L, &ev, k, want)) != 0) goto out;
  if (ev.type == YAML_MAPPING_START_EVENT ||
      (ev.type == YAML_SEQUENCE_START_EVENT && key->type != SCALENE_CONFIG_LIST)) {
    fail_at(L, &ev.start_mark, "%s must be %s, not %s", k, type_wanted(key->type),
            node_kind(ev.type));
    rc = SCALENE_EFORMAT;
    goto out;
  }
  scalene_config_value_t *v;
  if ((rc = push(L, key, &ev, &v)) != 0) goto out;
  if (ev.type == YAML_SEQUENCE_START_EVENT) {
    rc = list_items(L, k, v);
    goto out;
  }
  if ((rc = check_nul(L, &ev, k)) != 0) goto out;
  const char *s = (const char *)ev.data.scalar.value;
  size_t len = ev.data.scalar.length;
  if (key->type == SCALENE_CONFIG_STRING || key->type == SCALENE_CONFIG_LIST) {
    char *str = copy(s, len);
    if (str == NULL) {
      fail_at(L, NULL, "out of memory");
      rc = SCALENE_ENOMEM;
      goto out;
    }
    if (key->type == SCALENE_CONFIG_STRING) {
      v->string = str;
    } else {
      char **items = malloc(sizeof *items);
      if (items == NULL) {
        free(str);
        fail_at(L, NULL, "out of memory");
        rc = SCALENE_ENOMEM;
        goto out;
      }
      items[0] = str;
      v->items = (const char *const *)items;
      v->n_items = 1;
    }
  } else {
    rc = typed_scalar(L, key, k, &ev, v);
  }
out:
  yaml_event_delete(&ev);
  return rc;
}

/* One key and its value (the key's event already read). */
static int entry(loader_t *L, const yaml_event_t *kev) {
  char k[QBUF];
  if (kev->type != YAML_SCALAR_EVENT) {
    fail_at(L, &kev->start_mark, "a key must be a string, not %s", node_kind(kev->type));
    return SCALENE_EFORMAT;
  }
  int rc = check_properties(L, kev, NULL, "str");
  if (rc != 0) return rc;
  if ((rc = check_nul(L, kev, "a key")) != 0) return rc;
  const char *name = (const char *)kev->data.scalar.value;
  size_t len = kev->data.scalar.length;
  quote(k, sizeof k, name, len);
  size_t i = 0;
  while (i < L->n_keys && !name_matches(name, len, L->schema[i].name)) i++;
  if (i == L->n_keys) {
    fail_at(L, &kev->start_mark, "unknown key %s", k);
    return SCALENE_EFORMAT;
  }
  if (L->seen[i] != 0) {
    fail_at(L, &kev->start_mark, "%s is given twice (first at line %zu)", k, L->seen[i]);
    return SCALENE_EFORMAT;
  }
  L->seen[i] = kev->start_mark.line + 1;
  rc = value(L, &L->schema[i], k);
  return rc;
}

static int document(loader_t *L) {
  yaml_event_t ev;
  int rc;
  if ((rc = next(L, &ev)) != 0) return rc; /* STREAM-START */
  yaml_event_delete(&ev);
  if ((rc = next(L, &ev)) != 0) return rc;
  if (ev.type == YAML_STREAM_END_EVENT) {
    yaml_event_delete(&ev);
    scalene__error_set(L->err, L->source, 1, 1, 0, "empty file: expected a mapping of options");
    return SCALENE_EFORMAT;
  }
  yaml_event_delete(&ev); /* DOCUMENT-START */
  if ((rc = next(L, &ev)) != 0) return rc;
  if (ev.type == YAML_SCALAR_EVENT && ev.data.scalar.length == 0 &&
      ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE && ev.data.scalar.tag == NULL &&
      ev.data.scalar.anchor == NULL) {
    fail_at(L, &ev.start_mark, "empty document: expected a mapping of options");
    yaml_event_delete(&ev);
    return SCALENE_EFORMAT;
  }
  if (ev.type != YAML_MAPPING_START_EVENT) {
    char d[QBUF + 32];
    fail_at(L, &ev.start_mark, "the top level must be a mapping of options, not %s",
            ev.type == YAML_SCALAR_EVENT ? describe(d, sizeof d, &ev) : node_kind(ev.type));
    yaml_event_delete(&ev);
    return SCALENE_EFORMAT;
  }
  rc = check_properties(L, &ev, "the top level", "map");
  yaml_event_delete(&ev);
  if (rc != 0) return rc;
  for (;;) {
    if ((rc = next(L, &ev)) != 0) return rc;
    if (ev.type == YAML_MAPPING_END_EVENT) {
      yaml_event_delete(&ev);
      break;
    }
    rc = entry(L, &ev);
    yaml_event_delete(&ev);
    if (rc != 0) return rc;
  }
  if ((rc = next(L, &ev)) != 0) return rc; /* DOCUMENT-END */
  yaml_event_delete(&ev);
  if ((rc = next(L, &ev)) != 0) return rc;
  if (ev.type != YAML_STREAM_END_EVENT) {
    fail_at(L, &ev.start_mark, "a second document is not allowed: the file is one mapping of options");
    rc = SCALENE_EFORMAT;
  }
  yaml_event_delete(&ev);
  return rc;
}

/* ------------------------------------------------------------ API */

static int check_schema(const scalene_config_key_t *schema, size_t n_keys, scalene_error_t *err) {
  if (schema == NULL && n_keys > 0) {
    scalene__error_set(err, NULL, 0, 0, -1, "schema is NULL");
    return SCALENE_EINVAL;
  }
  for (size_t i = 0; i < n_keys; i++) {
    const scalene_config_key_t *k = &schema[i];
    if (k->name == NULL || k->name[0] == '\0') {
      scalene__error_set(err, NULL, 0, 0, -1, "schema key %zu has no name", i);
      return SCALENE_EINVAL;
    }
    if (k->type < SCALENE_CONFIG_BOOL || k->type > SCALENE_CONFIG_LIST) {
      scalene__error_set(err, NULL, 0, 0, -1, "schema key \"%s\" has an unknown type %d",
                         k->name, (int)k->type);
      return SCALENE_EINVAL;
    }
    for (size_t j = 0; j < i; j++)
      if (name_matches(k->name, strlen(k->name), schema[j].name)) {
        scalene__error_set(err, NULL, 0, 0, -1, "schema key \"%s\" is there twice (as \"%s\")",
                           k->name, schema[j].name);
        return SCALENE_EINVAL;
      }
  }
  return 0;
}

int scalene_config_parse(const char *text, size_t len, const char *name,
                         const scalene_config_key_t *schema, size_t n_keys,
                         scalene_config_t **out, scalene_error_t *err) {
  if (out != NULL) *out = NULL;
  if (err != NULL) memset(err, 0, sizeof *err);
  if (text == NULL || out == NULL) {
    scalene__error_set(err, name, 0, 0, -1, "%s is NULL", text == NULL ? "text" : "out");
    return SCALENE_EINVAL;
  }
  int rc = check_schema(schema, n_keys, err);
  if (rc != 0) return rc;
  loader_t L;
  memset(&L, 0, sizeof L);
  L.source = name != NULL ? name : "<string>";
  L.text = (const unsigned char *)text;
  L.len = len;
  L.schema = schema;
  L.n_keys = n_keys;
  L.err = err;
  L.c = calloc(1, sizeof *L.c);
  L.seen = calloc(n_keys ? n_keys : 1, sizeof *L.seen);
  if (L.c == NULL || L.seen == NULL || !yaml_parser_initialize(&L.parser)) {
    free(L.seen);
    free(L.c);
    scalene__error_set(err, L.source, 0, 0, -1, "out of memory");
    return SCALENE_ENOMEM;
  }
  yaml_parser_set_input_string(&L.parser, (const unsigned char *)text, len);
  rc = document(&L);
  yaml_parser_delete(&L.parser);
  free(L.seen);
  if (rc != 0) {
    scalene_config_free(L.c);
    return rc;
  }
  *out = L.c;
  return 0;
}

int scalene_config_load(const char *path, const scalene_config_key_t *schema, size_t n_keys,
                        scalene_config_t **out, scalene_error_t *err) {
  if (out != NULL) *out = NULL;
  if (err != NULL) memset(err, 0, sizeof *err);
  if (path == NULL || out == NULL) {
    scalene__error_set(err, NULL, 0, 0, -1, "%s is NULL", path == NULL ? "path" : "out");
    return SCALENE_EINVAL;
  }
  int rc = check_schema(schema, n_keys, err);
  if (rc != 0) return rc;
  char *text = NULL;
  size_t len = 0;
  if ((rc = scalene__read_file(path, CONFIG_READ_MAX, &text, &len, err)) != 0) return rc;
  rc = scalene_config_parse(text, len, path, schema, n_keys, out, err);
  free(text);
  return rc;
}

size_t scalene_config_count(const scalene_config_t *c) {
  return c != NULL ? c->n : 0;
}

const scalene_config_value_t *scalene_config_get(const scalene_config_t *c, size_t i) {
  return c != NULL && i < c->n ? &c->values[i] : NULL;
}

const scalene_config_value_t *scalene_config_find(const scalene_config_t *c, const char *name) {
  if (c == NULL || name == NULL) return NULL;
  size_t len = strlen(name);
  for (size_t i = 0; i < c->n; i++)
    if (name_matches(name, len, c->values[i].name)) return &c->values[i];
  return NULL;
}

void scalene_config_free(scalene_config_t *c) {
  if (c == NULL) return;
  for (size_t i = 0; i < c->n; i++) {
    scalene_config_value_t *v = &c->values[i];
    free((char *)v->string);
    for (size_t j = 0; j < v->n_items; j++) free((char *)v->items[j]);
    free((void *)v->items);
  }
  free(c->values);
  free(c);
}
