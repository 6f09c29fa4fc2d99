/* Internals shared by the config/ sources and the config unit test: the limits that keep a
 * hostile document from exhausting stack or memory, and the environment-override step of
 * lfs_config_load. Nothing outside config/ (and its test) should include this. */
#ifndef LFS_CONFIG_INTERNAL_H
#define LFS_CONFIG_INTERNAL_H

#include "config/config.h"

/* Largest YAML text (file or GIFTLESS_CONFIG_STR) accepted; real configs are a few KiB. */
#define LFS_CONFIG_MAX_TEXT (16u * 1024u * 1024u)
/* Deepest nesting of mappings/sequences; the top-level mapping is level 1. */
#define LFS_CONFIG_MAX_DEPTH 64
/* Most nodes one document may produce, counting every copy an alias makes (billion laughs). */
#define LFS_CONFIG_MAX_NODES 1000000u
/* Longest key path considered for an environment override; longer paths cannot be named by
 * any realistic variable and are skipped. */
#define LFS_CONFIG_ENV_NAME_MAX 1024

/* Applies giftless-style environment overrides to the leaves of `tree` (a mapping) in place;
 * see env.c for the exact rule. *applied receives the number of leaves replaced, each of
 * which is dropped from `leaves` (may be NULL; see lfs_config_leaf_written).
 * Returns 0, or -1 with err set (a variable whose value is not UTF-8, out of memory). */
int lfs_config_apply_env(json_t *tree, json_t *leaves, const char *(*getenv_fn)(const char *),
                         int *applied, struct lfs_error *err);

/* A layer wrote `key` of `mapping`: drops it from `leaves`, the list of [mapping, value, key]
 * of the defaults' leaves that lfs_config_load builds (NULL: nothing to do). */
void lfs_config_leaf_written(json_t *leaves, const json_t *mapping, const char *key);

/* True when mapping[key] is a leaf that the last lfs_config_load took from the defaults
 * and no layer wrote; *first is true the first time it is asked about, so that it is
 * reported once. Main thread (lfs_config_check_keys). */
bool lfs_config_is_leftover(const json_t *mapping, const char *key, bool *first);

/* YAML-flavoured name of a value's type for messages: "mapping", "list", "string",
 * "integer", "float", "boolean", "null". */
const char *lfs_config_type_name(const json_t *v);

#endif
