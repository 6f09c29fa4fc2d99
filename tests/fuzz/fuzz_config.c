/* Fuzz target: configuration loading (config/), what `lfsgate --check-config` runs first.
 * The input is up to three parts separated by a NUL byte: the config file (YAML or JSON,
 * written to a temporary file and named by LFSGATE_CONFIG_FILE), GIFTLESS_CONFIG_STR, and
 * lines NAME=VALUE of environment overrides; lfs_config_load merges them over giftless's
 * defaults. Then every typed getter runs on every key of every mapping of the result, and
 * the consumers that only read the tree get it: the CORS section and CorsMiddleware kwargs
 * (server/cors.c) and the auth provider chain (auth/), without the *_file options (the
 * fuzzer must not make the harness read arbitrary files such as /dev/stdin). Property:
 * nothing crashes or leaks, and every failure comes with a message. */
#include <jansson.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "auth/auth.h"
#include "config/config.h"
#include "fuzz.h"
#include "server/app.h"
#include "server/cors.h"

#define MAX_VARS 16

static char file_path[64];
static const char *var_names[MAX_VARS + 2], *var_values[MAX_VARS + 2];
static size_t nvars;

/* The harness's environment: only the variables the input set. */
static const char *fuzz_getenv(const char *name)
{
    for (size_t i = 0; i < nvars; i++)
        if (strcmp(var_names[i], name) == 0)
            return var_values[i];
    return NULL;
}

static void set_var(const char *name, const char *value)
{
    if (nvars < MAX_VARS + 2) {
        var_names[nvars] = name;
        var_values[nvars++] = value;
    }
}

/* Every getter on every key of obj and of the mappings below it; each must fail with a
 * message or succeed. */
static void walk(const json_t *obj, const char *path, int depth)
{
    const char *key, *s;
    json_t *v;
    long long n;
    bool b;
    const json_t *o;
    struct lfs_error err;
    char sub[512];
    if (!json_is_object(obj) || depth > 16)
        return;
    static const char *const some_keys[] = {"AUTH_PROVIDERS", "TRANSFER_ADAPTERS", "SERVER",
                                            "options",        "factory",           NULL};
    err = (struct lfs_error){0};
    LFS_FUZZ_CHECK(lfs_config_check_keys(obj, path, some_keys, &err) == 0 ||
                   err.message[0] != '\0');
    json_object_foreach((json_t *)obj, key, v)
    {
#define GETTER(call)                                                                               \
    do {                                                                                           \
        err = (struct lfs_error){0};                                                               \
        LFS_FUZZ_CHECK((call) == 0 || err.message[0] != '\0');                                     \
    } while (0)
        GETTER(lfs_config_get_string(obj, path, key, "default", &s, &err));
        GETTER(lfs_config_get_int(obj, path, key, 7, -100, 1LL << 40, &n, &err));
        GETTER(lfs_config_get_bool(obj, path, key, false, &b, &err));
        GETTER(lfs_config_get_size(obj, path, key, 1024, 0, 1LL << 50, &n, &err));
        GETTER(lfs_config_get_object(obj, path, key, &o, &err));
#undef GETTER
        walk(v, lfs_config_path(sub, sizeof(sub), path, key), depth + 1);
    }
}

/* Removes every key ending in "_file" from the mappings of v (see the file comment). */
static void drop_file_options(json_t *v)
{
    const char *key;
    void *tmp;
    json_t *item;
    size_t i;
    if (json_is_array(v)) {
        json_array_foreach(v, i, item) drop_file_options(item);
        return;
    }
    json_object_foreach_safe(v, tmp, key, item)
    {
        size_t len = strlen(key);
        if (len >= 5 && strcmp(key + len - 5, "_file") == 0)
            json_object_del(v, key);
        else
            drop_file_options(item);
    }
}

static void consumers(json_t *config)
{
    struct lfs_error err = {0};
    struct lfs_cors cors;
    if (lfs_cors_create(json_object_get(config, "CORS"), &cors, &err) == 0)
        lfs_cors_destroy(&cors);
    else
        LFS_FUZZ_CHECK(err.message[0] != '\0');
    size_t i;
    json_t *entry;
    json_array_foreach(json_object_get(config, "MIDDLEWARE"), i, entry)
    {
        err = (struct lfs_error){0};
        if (lfs_cors_create_middleware(json_object_get(entry, "kwargs"), "MIDDLEWARE[i].kwargs",
                                       &cors, &err) == 0)
            lfs_cors_destroy(&cors);
        else
            LFS_FUZZ_CHECK(err.message[0] != '\0');
    }
    json_t *providers = json_deep_copy(json_object_get(config, "AUTH_PROVIDERS"));
    drop_file_options(providers);
    struct lfs_auth_chain chain;
    err = (struct lfs_error){0};
    if (lfs_auth_chain_create(providers, "AUTH_PROVIDERS", &chain, &err) == 0)
        lfs_auth_chain_destroy(&chain);
    else
        LFS_FUZZ_CHECK(err.message[0] != '\0');
    json_decref(providers);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (file_path[0] == '\0') {
        snprintf(file_path, sizeof(file_path), "/tmp/lfsgate-fuzz-config-%d.yaml", (int)getpid());
    }
    struct lfs_fuzz_part parts[3];
    size_t n = lfs_fuzz_split(data, size, "", 1, parts, 3);
    FILE *f = fopen(file_path, "wb");
    LFS_FUZZ_CHECK(f != NULL);
    fwrite(parts[0].base, 1, parts[0].len, f);
    fclose(f);

    nvars = 0;
    set_var("LFSGATE_CONFIG_FILE", file_path);
    char *str = n > 1 ? lfs_fuzz_strdup(parts[1]) : NULL;
    if (str != NULL)
        set_var("GIFTLESS_CONFIG_STR", str);
    char *env = n > 2 ? lfs_fuzz_strdup(parts[2]) : NULL;
    for (char *line = env, *next; line != NULL && *line != '\0'; line = next) {
        next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        char *eq = strchr(line, '=');
        if (eq != NULL) {
            *eq = '\0';
            set_var(line, eq + 1);
        }
    }

    json_t *defaults = lfs_app_giftless_defaults();
    json_t *config = NULL;
    struct lfs_error err = {0};
    struct lfs_config_origin origin;
    if (lfs_config_load(defaults, NULL, fuzz_getenv, &config, &origin, &err) == 0) {
        LFS_FUZZ_CHECK(json_is_object(config));
        walk(config, "", 0);
        consumers(config);
        json_decref(config);
    } else {
        LFS_FUZZ_CHECK(err.message[0] != '\0');
    }
    json_decref(defaults);
    free(str);
    free(env);
    unlink(file_path);
    return 0;
}
