/* Transfer adapters: given the objects of a batch request, decide per object what the client
 * does (upload, download, verify actions, or an error). One const struct lfs_transfer_ops per
 * adapter, selected by name or giftless factory string from TRANSFER_ADAPTERS; the adapter's
 * config key ("basic", "multipart-basic") is the transfer name clients negotiate. */
#ifndef LFS_TRANSFER_TRANSFER_H
#define LFS_TRANSFER_TRANSFER_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "auth/auth.h"
#include "storage/storage.h"

enum lfs_operation { LFS_OP_UPLOAD, LFS_OP_DOWNLOAD };

/* One object of a batch: what the client asked, then what the adapter decided. */
struct lfs_batch_object {
    const char *oid;         /* validated: 64 lowercase hex */
    int64_t size;            /* validated: >= 0 */
    const char *filename;    /* x-filename / extra.filename, or NULL */
    const char *disposition; /* x-disposition / extra.disposition, or NULL */
    /* Result: an error (code != 0), or actions (NULL: nothing to do, e.g. already stored). */
    int error_code;
    const char *error_message; /* from the request pool or static */
    /* The "actions" object as JSON text in the request pool, e.g. {"upload":{...}}: each
     * action is written once, when the adapter decides it (lfs_batch_object_add_action). */
    const char *actions;
    size_t actions_len;
};

/* One batch request as the adapter sees it. All strings live in the request pool. */
struct lfs_batch {
    enum lfs_operation operation;
    const char *org_path;
    const char *repo;
    struct lfs_batch_object *objects;
    size_t nobjects;
    const struct lfs_identity *identity;
    /* Public URL of this repository's LFS endpoint, no trailing slash:
     * "<scheme>://<host>[:port][<prefix>]/<org_path>/<repo>.git/info/lfs". */
    const char *base_url;
    struct lfs_preauth *preauth; /* NULL: hrefs to this server carry no credentials */
    struct lfs_io io;
    time_t now;
};

/* err == NULL: every object has its result; otherwise the whole batch failed (e.g. the
 * store is unreachable) and err says why. */
typedef void (*lfs_batch_done_cb)(void *arg, const struct lfs_error *err);

enum lfs_transfer_flags {
    /* Objects go through this server: PUT/GET .../objects/storage/<oid> are served. */
    LFS_TRANSFER_SERVES_OBJECTS = 1u << 0,
};

struct lfs_transfer;

/* Begins with the members of struct lfs_plugin_names (common/plugin.h): name, aliases. */
struct lfs_transfer_ops {
    const char *name;             /* "basic_streaming", ... */
    const char *const *factories; /* giftless factory strings */
    unsigned flags;               /* enum lfs_transfer_flags */
    /* Builds the adapter (and its storage) from `options`; `path` names them in messages.
     * Main thread, at startup. */
    int (*create)(const json_t *options, const char *path, struct lfs_transfer **out,
                  struct lfs_error *err);
    void (*destroy)(struct lfs_transfer *transfer);
    /* Fills every object's result, then calls cb once. Worker threads. */
    void (*batch)(struct lfs_transfer *transfer, struct lfs_batch *batch, lfs_batch_done_cb cb,
                  void *arg);
};

/* Every adapter embeds this as its first member. */
struct lfs_transfer {
    const struct lfs_transfer_ops *ops;
    struct lfs_storage *storage; /* also serves verify (and object streaming, see flags) */
    long action_lifetime;        /* seconds an action (and its token) stays valid */
    /* verify_content: the verify action reads an upload that went straight to the store back
     * and hashes it (storage/check.c), instead of trusting its size */
    bool verify_content;
};

/* The adapters of TRANSFER_ADAPTERS, in config order, by transfer name. */
struct lfs_transfer_set {
    char **names;
    struct lfs_transfer **adapters;
    size_t count;
};

/* Builds every adapter of the TRANSFER_ADAPTERS mapping. Errors name the key path
 * ("TRANSFER_ADAPTERS.basic.options.storage_class: unknown storage ..."). Main thread. */
int lfs_transfer_set_create(const json_t *adapters, const char *path, struct lfs_transfer_set *out,
                            struct lfs_error *err);
void lfs_transfer_set_destroy(struct lfs_transfer_set *set);
/* The adapter configured under transfer name `name`, or NULL. */
struct lfs_transfer *lfs_transfer_set_get(const struct lfs_transfer_set *set, const char *name);

/* Creates an adapter of `size` bytes (a struct beginning with struct lfs_transfer) and its
 * storage from the options every storage-backed adapter shares (storage_class,
 * storage_options, action_lifetime). `extra` lists further option keys the adapter reads
 * itself (NULL-terminated, may be NULL). Fails when the storage lacks `required_caps`
 * (enum lfs_storage_caps). Main thread. */
int lfs_transfer_create_common(const struct lfs_transfer_ops *ops, size_t size,
                               const json_t *options, const char *path, const char *const *extra,
                               unsigned required_caps, struct lfs_transfer **out,
                               struct lfs_error *err);
/* Destroys an adapter made by lfs_transfer_create_common, and its storage. */
void lfs_transfer_destroy_common(struct lfs_transfer *transfer);

/* Actions whose href points back at this server. */
enum lfs_own_action {
    LFS_OWN_UPLOAD,   /* PUT <base_url>/objects/storage/<oid>, token in the header */
    LFS_OWN_DOWNLOAD, /* GET <base_url>/objects/storage/<oid>?jwt=&filename=&disposition= */
    LFS_OWN_VERIFY,   /* POST <base_url>/objects/storage/verify, token in the header */
    /* The same verify, whose token may also write the object: for multipart uploads that the
     * verify completes (storage multipart_complete). */
    LFS_OWN_VERIFY_COMMIT,
};

/* Builds one such action for obj into *out (href and header in the batch's pool), with a
 * pre-authorized token for exactly that object and action when batch->preauth is set, valid
 * for `lifetime` seconds like the action itself. Returns 0, or -1 with err. Worker threads. */
int lfs_transfer_own_action(const struct lfs_batch *batch, const struct lfs_batch_object *obj,
                            enum lfs_own_action kind, long lifetime,
                            struct lfs_storage_request *out, struct lfs_error *err);

/* Builds that action for obj (lfs_transfer_own_action, valid for the adapter's
 * action_lifetime) and adds it to obj's actions as `name`. Returns 0, or -1 with err. Worker
 * threads. */
int lfs_transfer_add_own_action(struct lfs_transfer *transfer, struct lfs_batch *batch,
                                struct lfs_batch_object *obj, const char *name,
                                enum lfs_own_action kind, struct lfs_error *err);

/* Writes the members of one action object (href, header, method, body, expires_in) into the
 * object w has open, for callers that add members of their own (multipart parts). */
struct lfs_json_writer;
void lfs_transfer_write_action(struct lfs_json_writer *w, const struct lfs_storage_request *action,
                               long expires_in);

/* Adds actions[name] = {action, expires_in} to obj's actions text (in pool). Out of memory
 * turns the object into a 500 error. Worker threads. */
void lfs_batch_object_add_action(struct lfs_batch_object *obj, h2o_mem_pool_t *pool,
                                 const char *name, const struct lfs_storage_request *action,
                                 long expires_in);

/* Adds actions[name] = json, a value already written as JSON text (multipart's "parts"). */
void lfs_batch_object_add_json(struct lfs_batch_object *obj, h2o_mem_pool_t *pool, const char *name,
                               const char *json, size_t len);

/* Builds the actions of one object that needs a transfer (upload: not stored, or stored
 * with another size; download: stored with the requested size), then calls done(done_arg,
 * NULL), or done(done_arg, err) to fail the whole batch: before returning, or later on the
 * loop thread when an action waits for a remote signer. */
typedef void (*lfs_transfer_actions_fn)(struct lfs_transfer *transfer, struct lfs_batch *batch,
                                        struct lfs_batch_object *obj, lfs_batch_done_cb done,
                                        void *done_arg);

/* An lfs_transfer_actions_fn: the object's "upload" or "download" action (as the batch's
 * operation) is a URL the storage signs (its sign operation, asynchronous in shape). */
void lfs_transfer_signed_action(struct lfs_transfer *transfer, struct lfs_batch *batch,
                                struct lfs_batch_object *obj, lfs_batch_done_cb done,
                                void *done_arg);

/* What the basic adapters share: asks the storage for every object's size at once, settles
 * the objects that need no transfer (upload: already stored with that size; download:
 * missing -> 404, other size -> 422; storage failure -> that object's error), calls
 * `actions` for the others, then cb once. Worker threads. */
void lfs_transfer_stat_batch(struct lfs_transfer *transfer, struct lfs_batch *batch,
                             lfs_transfer_actions_fn actions, lfs_batch_done_cb cb, void *arg);

/* Sets obj's error (code and message) and clears its actions. */
void lfs_batch_object_fail(struct lfs_batch_object *obj, int code, const char *message);

#endif
