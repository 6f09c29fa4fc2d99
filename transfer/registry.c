/* The transfer adapter registry and what adapters share: reading TRANSFER_ADAPTERS, the
 * storage options every storage-backed adapter takes, and actions whose hrefs point back at
 * this server (streaming upload/download, verify). */
#include "transfer/transfer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/plugin.h"
#include "common/util.h"
#include "config/config.h"

extern const struct lfs_transfer_ops lfs_transfer_basic_streaming_ops;

static const struct lfs_transfer_ops *const adapters[] = {
    &lfs_transfer_basic_streaming_ops,
};

#define NADAPTERS (sizeof(adapters) / sizeof(adapters[0]))

/* giftless's default action_lifetime for the basic adapters. */
#define DEFAULT_ACTION_LIFETIME 900

int lfs_transfer_set_create(const json_t *map, const char *path, struct lfs_transfer_set *out,
                            struct lfs_error *err)
{
    *out = (struct lfs_transfer_set){0};
    if (!json_is_object(map) || json_object_size(map) == 0)
        return lfs_error_set(err, 500,
                             "config: %s: expected a mapping of transfer names to adapters, "
                             "e.g. {basic: {factory: giftless.transfer.basic_streaming:factory}}",
                             path);
    size_t n = json_object_size(map);
    out->names = calloc(n, sizeof(*out->names));
    out->adapters = calloc(n, sizeof(*out->adapters));
    if (out->names == NULL || out->adapters == NULL) {
        lfs_transfer_set_destroy(out);
        return lfs_error_set(err, 500, "out of memory");
    }
    const char *name;
    json_t *entry;
    json_object_foreach((json_t *)map, name, entry)
    {
        char epath[256], opath[256];
        const char *factory;
        const json_t *options;
        static const char *const keys[] = {"factory", "options", NULL};
        lfs_config_path(epath, sizeof(epath), path, name);
        if (!json_is_object(entry)) {
            lfs_error_set(err, 500, "config: %s: expected a mapping with \"factory\" and \"options\"",
                          epath);
            goto fail;
        }
        if (lfs_config_check_keys(entry, epath, keys, err) < 0 ||
            lfs_config_get_string(entry, epath, "factory", NULL, &factory, err) < 0 ||
            lfs_config_get_object(entry, epath, "options", &options, err) < 0)
            goto fail;
        if (factory == NULL) {
            lfs_error_set(err, 500, "config: %s.factory: required key is missing", epath);
            goto fail;
        }
        const struct lfs_transfer_ops *ops =
            lfs_plugin_find((const void *const *)adapters, NADAPTERS, factory);
        if (ops == NULL) {
            char names[512];
            lfs_error_set(err, 500, "config: %s.factory: unknown transfer adapter \"%s\"; valid: %s",
                          epath, factory,
                          lfs_plugin_list((const void *const *)adapters, NADAPTERS, names,
                                          sizeof(names)));
            goto fail;
        }
        lfs_config_path(opath, sizeof(opath), epath, "options");
        if (ops->create(options, opath, &out->adapters[out->count], err) < 0)
            goto fail;
        out->names[out->count] = strdup(name);
        out->count++;
        if (out->names[out->count - 1] == NULL) {
            lfs_error_set(err, 500, "out of memory");
            goto fail;
        }
    }
    return 0;
fail:
    lfs_transfer_set_destroy(out);
    return -1;
}

void lfs_transfer_set_destroy(struct lfs_transfer_set *set)
{
    for (size_t i = 0; i < set->count; i++) {
        set->adapters[i]->ops->destroy(set->adapters[i]);
        free(set->names[i]);
    }
    free(set->adapters);
    free(set->names);
    *set = (struct lfs_transfer_set){0};
}

struct lfs_transfer *lfs_transfer_set_get(const struct lfs_transfer_set *set, const char *name)
{
    for (size_t i = 0; i < set->count; i++)
        if (strcmp(set->names[i], name) == 0)
            return set->adapters[i];
    return NULL;
}

int lfs_transfer_init_common(struct lfs_transfer *transfer, const struct lfs_transfer_ops *ops,
                             const json_t *options, const char *path, const char *const *extra,
                             struct lfs_error *err)
{
    const char *keys[16] = {"storage_class", "storage_options", "action_lifetime"};
    size_t nkeys = 3;
    for (; extra != NULL && *extra != NULL && nkeys < 15; extra++)
        keys[nkeys++] = *extra;
    keys[nkeys] = NULL;
    const char *storage_class;
    const json_t *storage_options;
    long long lifetime;
    char spath[256];
    if (lfs_config_check_keys(options, path, keys, err) < 0 ||
        lfs_config_get_string(options, path, "storage_class",
                              "giftless.storage.local_storage:LocalStorage", &storage_class,
                              err) < 0 ||
        lfs_config_get_object(options, path, "storage_options", &storage_options, err) < 0 ||
        lfs_config_get_int(options, path, "action_lifetime", DEFAULT_ACTION_LIFETIME, 1,
                           7 * 24 * 3600, &lifetime, err) < 0)
        return -1;
    const struct lfs_storage_ops *sops = lfs_storage_find(storage_class);
    if (sops == NULL) {
        char names[256];
        return lfs_error_set(err, 500, "config: %s.storage_class: unknown storage \"%s\"; valid: %s",
                             path, storage_class, lfs_storage_list_names(names, sizeof(names)));
    }
    transfer->ops = ops;
    transfer->action_lifetime = (long)lifetime;
    return sops->create(storage_options, lfs_config_path(spath, sizeof(spath), path, "storage_options"),
                        &transfer->storage, err);
}

/* Appends "&name=value" (or "?name=value" first) to a growing query string. */
static void query_add(char *buf, size_t size, size_t *len, const char *name, const char *value)
{
    size_t vlen = strlen(value);
    char *enc = malloc(3 * vlen + 1);
    if (enc == NULL)
        return;
    lfs_url_encode(value, vlen, enc);
    int w = snprintf(buf + *len, size - *len, "%c%s=%s", *len == 0 ? '?' : '&', name, enc);
    free(enc);
    if (w > 0 && (size_t)w < size - *len)
        *len += (size_t)w;
}

json_t *lfs_transfer_own_action(const struct lfs_batch *batch, const struct lfs_batch_object *obj,
                                enum lfs_own_action kind, long lifetime, struct lfs_error *err)
{
    static const unsigned perms[] = {
        [LFS_OWN_UPLOAD] = LFS_PERM_WRITE,
        [LFS_OWN_DOWNLOAD] = LFS_PERM_READ,
        [LFS_OWN_VERIFY] = LFS_PERM_READ_META,
    };
    const char *token = NULL;
    if (batch->preauth != NULL &&
        batch->preauth->mint(batch->preauth->provider, batch->identity, batch->org_path,
                             batch->repo, obj->oid, perms[kind], lifetime, batch->io.pool, &token,
                             err) < 0)
        return NULL;
    char query[12288];
    size_t qlen = 0;
    query[0] = '\0';
    if (kind == LFS_OWN_DOWNLOAD) {
        if (token != NULL)
            query_add(query, sizeof(query), &qlen, "jwt", token);
        if (obj->filename != NULL)
            query_add(query, sizeof(query), &qlen, "filename", obj->filename);
        if (obj->disposition != NULL)
            query_add(query, sizeof(query), &qlen, "disposition", obj->disposition);
    }
    json_t *action = json_object();
    json_object_set_new(action, "href",
                        json_sprintf("%s/objects/storage/%s%s", batch->base_url,
                                     kind == LFS_OWN_VERIFY ? "verify" : obj->oid, query));
    if (token != NULL && kind != LFS_OWN_DOWNLOAD) {
        json_t *header = json_object();
        json_object_set_new(header, "Authorization", json_sprintf("Bearer %s", token));
        json_object_set_new(action, "header", header);
    }
    json_object_set_new(action, "expires_in", json_integer(lifetime));
    return action;
}

void lfs_batch_object_fail(struct lfs_batch_object *obj, int code, const char *message)
{
    obj->error_code = code;
    obj->error_message = message;
    if (obj->actions != NULL)
        json_decref(obj->actions);
    obj->actions = NULL;
}
