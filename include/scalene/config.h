/* libscaleneprof: option files in YAML (libyaml), checked against a schema.
 *
 * A config file is one YAML document whose top level is a mapping from
 * option names to values: a scalar, or (for SCALENE_CONFIG_LIST) a scalar
 * or a sequence of scalars.
 *
 *     # scalene.yaml
 *     outfile: prof.json
 *     cpu-only: true
 *     cpu-sampling-rate: 0.005
 *     profile-only: [mypkg, tools]
 *
 * The caller gives the schema: each key's canonical name and type.  A key
 * in the file matches a schema name when the two are equal with '-' and
 * '_' taken as the same character ("cpu_only" is "cpu-only"); the value
 * keeps the schema's spelling.  Everything that is not exactly a mapping of
 * known keys to values of their types is an error whose scalene_error_t
 * names the file (source), the line and the column (1-based) of the
 * offending key or value, and a one-line text:
 *   - a YAML syntax error (libyaml's problem and position);
 *   - a document that is empty or whose top level is not a mapping, or a
 *     second document;
 *   - an unknown key, a key given twice, a key that is not a scalar of
 *     type string (quoted or not: "outfile": is the key outfile);
 *   - a value of the wrong type, an alias or anchor, a tag other than the
 *     core schema's (!!bool, !!int, !!float, !!str; !!seq and !!map on
 *     collections), a nested mapping, a sequence for a type other than
 *     LIST, a sequence holding non-scalars, a scalar holding a NUL ("\0").
 * A quoted scalar is a string: "true" is not a bool and "10" not an int,
 * so a STRING key takes any scalar, quoted or not, as written (an empty
 * plain scalar, `key:`, is "").
 *
 * Scalars of each type (the YAML 1.2 core schema, plus the YAML 1.1 words
 * people write):
 *   BOOL   true/false, True/False, TRUE/FALSE, yes/no, on/off (any of
 *          those cases);
 *   INT    decimal digits with an optional sign, within int64 (no 0x, no
 *          underscores, no exponent);
 *   FLOAT  an INT, or a decimal number with an optional exponent (strtod's
 *          decimal form), finite; .inf/.nan are refused;
 *   STRING any scalar;
 *   LIST   a scalar (one item, as written) or a flow or block sequence of
 *          scalars (each as written).
 *
 * The functions here allocate and may take locks: never call them from a
 * signal handler or allocation hook.  A loaded scalene_config_t is
 * immutable, so it may be read from several threads at once. */
#ifndef SCALENE_CONFIG_H
#define SCALENE_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <scalene/error.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum scalene_config_type {
  SCALENE_CONFIG_BOOL = 1,
  SCALENE_CONFIG_INT = 2,
  SCALENE_CONFIG_FLOAT = 3,
  SCALENE_CONFIG_STRING = 4,
  SCALENE_CONFIG_LIST = 5
} scalene_config_type_t;

/* One key of a schema. */
typedef struct scalene_config_key {
  const char *name;           /* canonical name, e.g. "cpu-sampling-rate" */
  scalene_config_type_t type;
} scalene_config_key_t;

/* One value of a loaded file.  Strings are owned by the config and live as
 * long as it does. */
typedef struct scalene_config_value {
  const char *name;           /* the schema's name (its own pointer) */
  scalene_config_type_t type; /* the schema's type */
  int boolean;                /* BOOL: 0 or 1 */
  int64_t integer;            /* INT */
  double number;              /* FLOAT (and INT, converted) */
  const char *string;         /* STRING: the scalar as written; NULL otherwise */
  const char *const *items;   /* LIST: n_items strings; NULL otherwise */
  size_t n_items;
  int line;                   /* where the value starts in the file, 1-based */
  int column;
} scalene_config_value_t;

typedef struct scalene_config scalene_config_t;

/* Reads the YAML file at path and checks it against schema (n_keys keys
 * with distinct canonical names, none NULL).  On success *out owns the
 * values, in the file's order.  Errors: SCALENE_EINVAL (a NULL argument, a
 * bad schema), SCALENE_ENOENT (no such file), SCALENE_EIO (unreadable: a
 * directory, a permission), SCALENE_EPARSE (YAML syntax), SCALENE_EFORMAT
 * (valid YAML that breaks the rules above), SCALENE_ENOMEM; err gets the
 * file, position and text, *out is NULL. */
SCALENE_API int scalene_config_load(const char *path, const scalene_config_key_t *schema,
                                    size_t n_keys, scalene_config_t **out,
                                    scalene_error_t *err);

/* The same for YAML text of len bytes in memory; `name` is what errors
 * name as their source (may be NULL: "<string>"). */
SCALENE_API int scalene_config_parse(const char *text, size_t len, const char *name,
                                     const scalene_config_key_t *schema, size_t n_keys,
                                     scalene_config_t **out, scalene_error_t *err);

/* The number of values, and value i (0 <= i < count, else NULL). */
SCALENE_API size_t scalene_config_count(const scalene_config_t *c);
SCALENE_API const scalene_config_value_t *scalene_config_get(const scalene_config_t *c,
                                                             size_t i);

/* The value of the key named `name` (either spelling), or NULL. */
SCALENE_API const scalene_config_value_t *scalene_config_find(const scalene_config_t *c,
                                                              const char *name);

/* Frees c and its strings; NULL is a no-op. */
SCALENE_API void scalene_config_free(scalene_config_t *c);

#ifdef __cplusplus
}
#endif

#endif /* SCALENE_CONFIG_H */
