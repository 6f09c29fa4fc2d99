/* Environment-variable overrides, the last step of lfs_config_load, reproducing what giftless
 * does so that a giftless deployment's environment keeps its meaning here.
 *
 * What giftless does (datopian/giftless giftless/config.py, _compose_config, read at commit
 * 09de9d25 and in its current form): after merging GIFTLESS_CONFIG_FILE and
 * GIFTLESS_CONFIG_STR it removes those two variables from its copy of the environment and calls
 * figcan's Configuration.apply_flat(environ, prefix="GIFTLESS_"). figcan
 * (shoppimon/figcan figcan/figcan.py, apply_flat and _create_flat_pointers) walks the
 * configuration tree, and for every leaf -- any value that is not a mapping: string, number,
 * bool, null, or a whole list (lists are not entered) -- joins the key path with "_", prefixes
 * it, and if a variable of exactly that name exists replaces the leaf with the variable's raw
 * string value. So:
 *   - only keys already in the tree can be overridden; nothing is ever added, and a mapping is
 *     never replaced (only its leaves);
 *   - the tree decides how the name splits, which is why keys that themselves contain "_"
 *     (TRANSFER_ADAPTERS, storage_options) work: TRANSFER_ADAPTERS.basic.options.path is
 *     GIFTLESS_TRANSFER_ADAPTERS_basic_options_path, matched case-sensitively;
 *   - the value stays a string ("900", "true"): giftless does not parse it, and the typed
 *     getters of config.h accept such strings for integers, sizes and booleans;
 *   - if two leaves flatten to the same name (a.b_c and a_b.c), both are set.
 * giftless's documentation (docs/source/configuration.md, "By overriding specific options
 * using environment variables") describes a different spelling that its code does not
 * implement: prefix GIFTLESS_CONFIG_ and the key path upper-cased, e.g.
 * GIFTLESS_CONFIG_TRANSFER_ADAPTERS_BASIC_OPTIONS_STORAGE_CLASS. We accept both spellings,
 * with the same leaf-only rule; when both are set for one leaf the documented one wins.
 * GIFTLESS_CONFIG_FILE and GIFTLESS_CONFIG_STR name the config sources, never keys "FILE",
 * "STR", "CONFIG_FILE" or "CONFIG_STR", just as giftless pops them before apply_flat. */
#include "config/config_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct env_walk {
    const char *(*getenv_fn)(const char *);
    json_t *leaves; /* the defaults' leaves not yet written (config.c) */
    int applied;
    struct lfs_error *err;
    char path[LFS_CONFIG_ENV_NAME_MAX]; /* key path joined with '_' */
};

#define ENV_CODE_PREFIX "GIFTLESS_"
#define ENV_DOC_PREFIX "GIFTLESS_CONFIG_"

static bool is_reserved(const char *name)
{
    return strcmp(name, "GIFTLESS_CONFIG_FILE") == 0 || strcmp(name, "GIFTLESS_CONFIG_STR") == 0;
}

static const char *lookup(struct env_walk *w, const char *name)
{
    /* a name containing '=' cannot be a variable, and glibc's getenv would match it
     * against the "NAME=value" text of another variable */
    if (is_reserved(name) || strchr(name, '=') != NULL)
        return NULL;
    return w->getenv_fn(name);
}

static int override_leaf(struct env_walk *w, json_t *obj, void *iter)
{
    char doc_name[sizeof(ENV_DOC_PREFIX) + LFS_CONFIG_ENV_NAME_MAX];
    char code_name[sizeof(ENV_CODE_PREFIX) + LFS_CONFIG_ENV_NAME_MAX];
    const char *value, *name = doc_name;
    json_t *s;
    size_t n = strlen(ENV_DOC_PREFIX), i;
    memcpy(doc_name, ENV_DOC_PREFIX, n);
    for (i = 0; w->path[i] != '\0'; i++) {
        char c = w->path[i];
        doc_name[n + i] = (char)(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
    }
    doc_name[n + i] = '\0';
    snprintf(code_name, sizeof(code_name), "%s%s", ENV_CODE_PREFIX, w->path);
    if ((value = lookup(w, doc_name)) == NULL) {
        name = code_name;
        value = lookup(w, code_name);
    }
    if (value == NULL)
        return 0;
    if ((s = json_string(value)) == NULL)
        return lfs_error_set(w->err, 500, "config: %s: value is not valid UTF-8", name);
    lfs_config_leaf_written(w->leaves, obj, json_object_iter_key(iter));
    if (json_object_iter_set_new(obj, iter, s))
        return lfs_error_set(w->err, 500, "config: %s: out of memory", name);
    w->applied++;
    return 0;
}

static int walk(struct env_walk *w, json_t *obj, size_t len)
{
    for (void *it = json_object_iter(obj); it != NULL; it = json_object_iter_next(obj, it)) {
        const char *key = json_object_iter_key(it);
        json_t *value = json_object_iter_value(it);
        size_t sep = len > 0 ? 1 : 0, klen = strlen(key);
        int rc;
        if (len + sep + klen >= sizeof(w->path))
            continue; /* no variable could name it */
        if (sep)
            w->path[len] = '_';
        memcpy(w->path + len + sep, key, klen + 1);
        /* replacing the current member's value does not disturb the iteration */
        rc = json_is_object(value) ? walk(w, value, len + sep + klen) : override_leaf(w, obj, it);
        w->path[len] = '\0';
        if (rc)
            return rc;
    }
    return 0;
}

int lfs_config_apply_env(json_t *tree, json_t *leaves, const char *(*getenv_fn)(const char *),
                         int *applied, struct lfs_error *err)
{
    struct env_walk *w;
    int rc;
    *applied = 0;
    if (!json_is_object(tree))
        return 0;
    /* heap, not stack: walk recurses once per nesting level with this buffer shared */
    if ((w = calloc(1, sizeof(*w))) == NULL)
        return lfs_error_set(err, 500, "config: out of memory");
    w->getenv_fn = getenv_fn;
    w->leaves = leaves;
    w->err = err;
    rc = walk(w, tree, 0);
    *applied = w->applied;
    free(w);
    return rc;
}
