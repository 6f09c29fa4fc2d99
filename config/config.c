/* lfs_config_load: assembles the effective configuration from its layers -- built-in
 * defaults, the config file, GIFTLESS_CONFIG_STR, then environment overrides (env.c) -- in
 * the order giftless's _compose_config applies them, so a giftless deployment's file and
 * environment produce the same tree here. Parsing is yaml.c's; this file owns reading the
 * file (bounded), the recursive merge and the errors that name each source.
 *
 * It also remembers which leaves of the tree still hold a value of the defaults that no
 * layer wrote (the "leftovers"). giftless's storages swallow keyword options they do not
 * read, so its default storage_options.path rides along harmlessly into an Azure or GCS
 * section after the merge; lfsgate's sections refuse unknown keys, and must keep refusing
 * the user's typos while letting such a leftover pass with a warning. The list is one
 * process-wide value because the consumers only see their own sub-mapping
 * (lfs_config_check_keys(obj, path, ...)); it is keyed by the mapping's address (each entry
 * holds a reference, so the address cannot be reused) and the leaf value, so a tree built
 * by other means, or a leaf changed after loading, is never mistaken for a leftover. */
#include "config/config_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"

/* Leftovers of the last lfs_config_load: a list of [mapping, value, key] (main thread);
 * lfs_config_is_leftover appends `true` to an entry once it has been reported. */
static json_t *default_leftovers;

const char *lfs_config_getenv(const char *name)
{
    return getenv(name);
}

/* Appends [mapping, value, key] for every leaf (any value but a mapping) under `tree`. */
static int collect_leaves(json_t *tree, json_t *leaves)
{
    const char *key;
    json_t *value;
    json_object_foreach(tree, key, value)
    {
        if (json_is_object(value)
                ? collect_leaves(value, leaves)
                : json_array_append_new(leaves, json_pack("[OOs]", tree, value, key)))
            return -1;
    }
    return 0;
}

void lfs_config_leaf_written(json_t *leaves, const json_t *mapping, const char *key)
{
    for (size_t i = 0; leaves != NULL && i < json_array_size(leaves); i++) {
        json_t *e = json_array_get(leaves, i);
        if (json_array_get(e, 0) == mapping &&
            strcmp(json_string_value(json_array_get(e, 2)), key) == 0) {
            json_array_remove(leaves, i);
            return;
        }
    }
}

bool lfs_config_is_leftover(const json_t *mapping, const char *key, bool *first)
{
    for (size_t i = 0; i < json_array_size(default_leftovers); i++) {
        json_t *e = json_array_get(default_leftovers, i);
        if (json_array_get(e, 0) == mapping &&
            strcmp(json_string_value(json_array_get(e, 2)), key) == 0 &&
            json_object_get(mapping, key) == json_array_get(e, 1)) {
            /* a 4th member marks it reported: a reader may check its keys more than once */
            *first = json_array_size(e) == 3;
            if (*first)
                json_array_append_new(e, json_true());
            return true;
        }
    }
    return false;
}

/* Merges src into dst: mappings recursively, later wins per key, anything else replaces
 * (a list is replaced whole, and an explicit null replaces too, as figcan's
 * _recursive_merge does). dst takes references to src's values. Every key written is
 * dropped from `leaves`, even when the new value equals the default (true, null).
 *
 * Unlike figcan, no mapping is closed here: giftless refuses a key that its defaults lack
 * in a mapping not marked Extensible (PRE_AUTHORIZED_ACTION_PROVIDER and its options, the
 * top level), but lfsgate's own sections (SERVER, CORS) and options (leeway, issuer, ...)
 * live there, so each section's reader refuses the keys it does not know instead
 * (lfs_config_check_keys), naming the path as giftless's KeyError does not. */
static int merge_into(json_t *dst, json_t *src, json_t *leaves)
{
    const char *key;
    json_t *value;
    json_object_foreach(src, key, value)
    {
        json_t *old = json_object_get(dst, key);
        if (json_is_object(old) && json_is_object(value)) {
            if (merge_into(old, value, leaves))
                return -1;
        } else {
            lfs_config_leaf_written(leaves, dst, key);
            if (json_object_set(dst, key, value))
                return -1;
        }
    }
    return 0;
}

/* Parses one layer and merges it into tree. An empty document counts as an empty mapping
 * (an empty or all-comment file is a valid "no settings" file). */
static int merge_text(json_t *tree, json_t *leaves, const char *text, size_t len,
                      const char *source, struct lfs_error *err)
{
    json_t *layer;
    int rc = 0;
    if (lfs_config_parse_yaml(text, len, source, &layer, err))
        return lfs_error_prefix(err, "config: ");
    if (json_is_object(layer)) {
        if (merge_into(tree, layer, leaves))
            rc = lfs_error_set(err, 500, "config: %s: out of memory", source);
    } else if (!json_is_null(layer)) {
        rc = lfs_error_set(err, 500, "config: %s: top level must be a mapping, got %s", source,
                           lfs_config_type_name(layer));
    }
    json_decref(layer);
    return rc;
}

/* Reads a whole file, stopping one byte past LFS_CONFIG_MAX_TEXT so that a huge file (or a
 * device, or a pipe that never ends) is refused without being read. */
static int read_file(const char *path, char **out, size_t *out_len, struct lfs_error *err)
{
    size_t len = 0, cap = 0;
    char *buf = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC), e = 0;
    *out = NULL;
    if (fd < 0)
        return lfs_error_set(err, 500, "config: cannot read \"%s\": %s", path, strerror(errno));
    while (len <= LFS_CONFIG_MAX_TEXT) {
        ssize_t n;
        if (len == cap) {
            char *grown;
            cap = cap ? cap * 2 : 64 * 1024;
            if (cap > LFS_CONFIG_MAX_TEXT + 1)
                cap = LFS_CONFIG_MAX_TEXT + 1;
            if ((grown = realloc(buf, cap)) == NULL) {
                e = ENOMEM;
                break;
            }
            buf = grown;
        }
        n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            e = errno;
            break;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    if (e != 0) {
        free(buf);
        return lfs_error_set(err, 500, "config: cannot read \"%s\": %s", path, strerror(e));
    }
    if (len > LFS_CONFIG_MAX_TEXT) {
        free(buf);
        return lfs_error_set(err, 500, "config: \"%s\" is larger than %u bytes", path,
                             LFS_CONFIG_MAX_TEXT);
    }
    *out = buf;
    *out_len = len;
    return 0;
}

static const char *nonempty(const char *s)
{
    return s != NULL && *s != '\0' ? s : NULL;
}

int lfs_config_load(const json_t *defaults, const char *file,
                    const char *(*getenv_fn)(const char *), json_t **out,
                    struct lfs_config_origin *origin, struct lfs_error *err)
{
    struct lfs_config_origin local;
    json_t *tree, *leaves;
    const char *str;
    *out = NULL;
    if (getenv_fn == NULL)
        getenv_fn = lfs_config_getenv;
    if (origin == NULL)
        origin = &local;
    memset(origin, 0, sizeof(*origin));
    if (defaults != NULL && !json_is_object(defaults))
        return lfs_error_set(err, 500, "config: defaults: top level must be a mapping, got %s",
                             lfs_config_type_name(defaults));
    tree = defaults != NULL ? json_deep_copy(defaults) : json_object();
    leaves = json_array();
    if (tree == NULL || leaves == NULL || collect_leaves(tree, leaves)) {
        json_decref(tree);
        json_decref(leaves);
        return lfs_error_set(err, 500, "config: out of memory");
    }

    /* giftless only looks at a variable that is set and non-empty (environ.get(...)) */
    if (file == NULL)
        file = nonempty(getenv_fn("LFSGATE_CONFIG_FILE"));
    if (file == NULL)
        file = nonempty(getenv_fn("GIFTLESS_CONFIG_FILE"));
    if (file != NULL) {
        char *text;
        size_t len = 0;
        int rc = read_file(file, &text, &len, err);
        if (rc == 0) {
            rc = merge_text(tree, leaves, text, len, file, err);
            free(text);
        }
        if (rc)
            goto fail;
        snprintf(origin->file, sizeof(origin->file), "%s", file);
    }

    if ((str = nonempty(getenv_fn("GIFTLESS_CONFIG_STR"))) != NULL) {
        if (merge_text(tree, leaves, str, strlen(str), "GIFTLESS_CONFIG_STR", err))
            goto fail;
        origin->from_env_string = true;
    }

    if (lfs_config_apply_env(tree, leaves, getenv_fn, &origin->overrides, err))
        goto fail;
    json_decref(default_leftovers);
    default_leftovers = leaves;
    *out = tree;
    return 0;
fail:
    json_decref(leaves);
    json_decref(tree);
    return -1;
}
