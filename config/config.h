/* Configuration: YAML (libyaml) or JSON text -> one jansson tree, merged from the built-in
 * defaults, the config file, GIFTLESS_CONFIG_STR and GIFTLESS_CONFIG_* overrides, plus typed
 * getters whose errors name the exact key path ("TRANSFER_ADAPTERS.basic.options.path").
 * Consumers (server/, auth/, storage/, transfer/) validate their own sections with the
 * getters; this module knows no schema beyond the merge rules. */
#ifndef LFS_CONFIG_CONFIG_H
#define LFS_CONFIG_CONFIG_H

#include <jansson.h>
#include <stdbool.h>

#include "common/error.h"

/* Where the effective config came from, for the startup log line. */
struct lfs_config_origin {
    char file[1024];      /* path of the file read, "" if none */
    bool from_env_string; /* GIFTLESS_CONFIG_STR was merged */
    int overrides;        /* number of GIFTLESS_CONFIG_<KEY>... variables applied */
};

/* Parses YAML (a superset of JSON) text into a new jansson value. Scalars: plain ints ->
 * integer, floats -> real, true/false/yes/no/on/off (YAML 1.1, as PyYAML) -> bool,
 * null/~/empty -> null, quoted scalars stay strings. Anchors/aliases are resolved;
 * duplicate mapping keys are an error. `source` names the text in messages ("config.yaml").
 * On a syntax error returns -1 with err "<source>: line L, column C: <problem>" (1-based).
 * Caller owns *out (json_decref). Any thread. */
int lfs_config_parse_yaml(const char *text, size_t len, const char *source, json_t **out,
                          struct lfs_error *err);

/* Builds the effective configuration:
 *   defaults (a copy is made; may be NULL)
 *   <- file: `file` if not NULL, else $LFSGATE_CONFIG_FILE, else $GIFTLESS_CONFIG_FILE
 *   <- $GIFTLESS_CONFIG_STR (YAML or JSON)
 *   <- $GIFTLESS_CONFIG_<KEY>[_<KEY>...] scalar overrides (giftless/figcan rules; also
 *      $GIFTLESS_<Key>_<key>... with the exact key case, as giftless's code reads: config/env.c)
 * Mappings merge recursively (later wins per key); any other value replaces. It records
 * which leaves still hold a default value no layer wrote, for lfs_config_check_keys.
 * `getenv_fn`
 * looks up variables (tests pass their own). Unreadable file, syntax errors and
 * a top-level value that is not a mapping are errors naming the file or variable.
 * Caller owns *out. origin may be NULL. Main thread (at startup and on reload).
 * getenv itself does not convert to `getenv_fn`'s type (it returns char *): pass
 * lfs_config_getenv, or NULL which means the same. */
int lfs_config_load(const json_t *defaults, const char *file,
                    const char *(*getenv_fn)(const char *), json_t **out,
                    struct lfs_config_origin *origin, struct lfs_error *err);

/* getenv with the signature lfs_config_load's getenv_fn expects. */
const char *lfs_config_getenv(const char *name);

/* Typed getters. `obj` is a mapping (or NULL = empty), `path` is the mapping's own key path
 * ("" at top level) used in messages as "<path>.<key>". A missing or null key yields the
 * default and returns 0; a value of the wrong type returns -1 with err
 * "config: <path>.<key>: expected <type>, got <type>" (status 500). *out strings point into
 * obj and live as long as it does. Any thread. */
int lfs_config_get_string(const json_t *obj, const char *path, const char *key, const char *def,
                          const char **out, struct lfs_error *err);
/* Integers; also accepts a string of digits, and for sizes see lfs_config_get_size. Checks
 * min <= value <= max ("expected an integer from <min> to <max>"). */
int lfs_config_get_int(const json_t *obj, const char *path, const char *key, long long def,
                       long long min, long long max, long long *out, struct lfs_error *err);
/* Booleans; also accepts the strings true/false/yes/no/on/off/1/0 (any case), as env
 * overrides arrive as strings. */
int lfs_config_get_bool(const json_t *obj, const char *path, const char *key, bool def, bool *out,
                        struct lfs_error *err);
/* Byte sizes: an integer, or a string with a unit suffix K, M, G, T (powers of 1024, an
 * optional trailing "B"/"iB", e.g. "512M", "1GiB"). */
int lfs_config_get_size(const json_t *obj, const char *path, const char *key, long long def,
                        long long min, long long max, long long *out, struct lfs_error *err);
/* A nested mapping (or NULL when missing/null); wrong type is an error. */
int lfs_config_get_object(const json_t *obj, const char *path, const char *key, const json_t **out,
                          struct lfs_error *err);

/* Fails with "config: <path>.<key>: unknown key; valid keys: a, b, c" for the first key of
 * obj not in the NULL-terminated list `allowed` (keys compared exactly). A key that the last
 * lfs_config_load left in obj from its defaults, unwritten by any layer (giftless's default
 * storage_options.path in an Azure section), is not an error: it is logged once as a
 * warning naming its path and ignored. Main thread (it reads and updates what the last
 * lfs_config_load recorded). */
int lfs_config_check_keys(const json_t *obj, const char *path, const char *const *allowed,
                          struct lfs_error *err);

/* Joins a parent path and a key into buf ("a.b" + "c" -> "a.b.c"; "" + "c" -> "c").
 * Returns buf. */
const char *lfs_config_path(char *buf, size_t size, const char *parent, const char *key);

#endif
