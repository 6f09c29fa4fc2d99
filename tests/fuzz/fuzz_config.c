/* Fuzz target: configuration loading (config/), what `lfsgate --check-config` runs first.
 * The input is up to three parts separated by a NUL byte: the config file (YAML or JSON,
 * written to a temporary file and named by LFSGATE_CONFIG_FILE), GIFTLESS_CONFIG_STR, and
 * lines NAME=VALUE of environment overrides; lfs_config_load merges them over giftless's
 * defaults. Then every typed getter runs on every key of every mapping of the result, and
 * the app is built from it as `lfsgate --check-config` does (see check_config). Property:
 * nothing crashes or leaks, and every failure comes with a message. */
#include <jansson.h>
#include <stdbool.h>
#include <string.h>
#include <ftw.h>
#include <unistd.h>

#include "common/log.h"
#include "config/config.h"
#include "fuzz.h"
#include "server/app.h"

#define MAX_VARS 16

static char file_path[96], store_dir[96];
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

/* Makes the tree safe to build in a fuzzing process: removes every key ending in "_file"
 * (the fuzzer must not make the harness read arbitrary files such as /dev/stdin) and points
 * every string "path" or "spool_dir" at store_dir, under the harness's temporary directory
 * (local storage creates its directory). Everything else is built as given. */
static void make_safe(json_t *v)
{
    const char *key;
    void *tmp;
    json_t *item;
    size_t i;
    if (json_is_array(v)) {
        json_array_foreach(v, i, item) make_safe(item);
        return;
    }
    json_object_foreach_safe(v, tmp, key, item)
    {
        size_t len = strlen(key);
        if (len >= 5 && strcmp(key + len - 5, "_file") == 0)
            json_object_del(v, key);
        else if (json_is_string(item) &&
                 (strcmp(key, "path") == 0 || strcmp(key, "spool_dir") == 0))
            json_object_set_new(v, key, json_string(store_dir));
        else
            make_safe(item);
    }
}

/* What `lfsgate --check-config` does with a loaded config: build the whole app (SERVER,
 * MIDDLEWARE with ProxyFix and CORS, CORS, AUTH_PROVIDERS, PRE_AUTHORIZED_ACTION_PROVIDER,
 * TRANSFER_ADAPTERS with their stores), then free it. */
static void check_config(const json_t *config)
{
    json_t *copy = json_deep_copy(config);
    make_safe(copy);
    struct lfs_app app;
    struct lfs_error err = {0};
    if (lfs_app_create(copy, false, NULL, &app, &err) == 0)
        lfs_app_destroy(&app);
    else
        LFS_FUZZ_CHECK(err.message[0] != '\0');
    json_decref(copy);
}

static char work_dir[64] = "/tmp/lfsgate-fuzz-config-XXXXXX";

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

static void remove_work_dir(void)
{
    nftw(work_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A private temporary directory for the file layer and the stores, removed at exit; no
 * instance metadata service is ever asked for credentials (no loop runs, and the variables
 * point any lookup at a closed loopback port). */
static void init(void)
{
    LFS_FUZZ_CHECK(mkdtemp(work_dir) != NULL);
    atexit(remove_work_dir);
    snprintf(file_path, sizeof(file_path), "%s/config.yaml", work_dir);
    snprintf(store_dir, sizeof(store_dir), "%s/store", work_dir);
    setenv("GCE_METADATA_HOST", "127.0.0.1:9", 1);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    unsetenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    unsetenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    lfs_log_set_level(LFS_LOG_ERROR); /* fuzzed configs warn all the time: keep the log readable */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (file_path[0] == '\0')
        init();
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
        check_config(config);
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
