/* Typed getters over the merged tree. Consumers validate their own sections with these, so
 * every error names the exact key path ("TRANSFER_ADAPTERS.basic.options.path") the operator
 * must fix. Values from environment overrides arrive as strings, which is why integers,
 * sizes and booleans are also accepted in string form. Messages never quote string values
 * of string getters: those may be secrets (keys, connection strings). */
#include "config/config_internal.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"

/* Big enough for any realistic key path; a longer one is truncated in the message only. */
#define PATH_MAX_LEN 256

const char *lfs_config_path(char *buf, size_t size, const char *parent, const char *key)
{
    if (size == 0)
        return buf;
    if (key == NULL)
        key = "";
    if (parent == NULL || *parent == '\0') {
        snprintf(buf, size, "%s", key);
    } else if (*key == '\0') {
        if (parent != buf)
            snprintf(buf, size, "%s", parent);
    } else if (parent == buf) {
        /* appending in place: snprintf with overlapping source and destination is undefined */
        size_t len = strnlen(buf, size);
        if (len < size)
            snprintf(buf + len, size - len, ".%s", key);
    } else {
        snprintf(buf, size, "%s.%s", parent, key);
    }
    return buf;
}

const char *lfs_config_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "mapping";
    case JSON_ARRAY: return "list";
    case JSON_STRING: return "string";
    case JSON_INTEGER: return "integer";
    case JSON_REAL: return "float";
    case JSON_TRUE:
    case JSON_FALSE: return "boolean";
    default: return "null";
    }
}

static int key_error(struct lfs_error *err, const char *path, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int key_error(struct lfs_error *err, const char *path, const char *key, const char *fmt, ...)
{
    char full[PATH_MAX_LEN], msg[LFS_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    lfs_config_path(full, sizeof(full), path, key);
    if (full[0] == '\0')
        return lfs_error_set(err, 500, "config: %s", msg);
    return lfs_error_set(err, 500, "config: %s: %s", full, msg);
}

/* The value at key, or NULL if obj is NULL or the key is missing or null. Fails only if obj
 * itself is not a mapping, which is a caller bug worth a clear message. */
static int lookup(const json_t *obj, const char *path, const char *key, const json_t **out,
                  struct lfs_error *err)
{
    const json_t *v;
    *out = NULL;
    if (obj == NULL)
        return 0;
    if (!json_is_object(obj))
        return key_error(err, path, NULL, "expected mapping, got %s", lfs_config_type_name(obj));
    v = json_object_get(obj, key);
    *out = json_is_null(v) ? NULL : v;
    return 0;
}

int lfs_config_get_string(const json_t *obj, const char *path, const char *key, const char *def,
                          const char **out, struct lfs_error *err)
{
    const json_t *v;
    *out = def;
    if (lookup(obj, path, key, &v, err))
        return -1;
    if (v == NULL)
        return 0;
    if (!json_is_string(v))
        return key_error(err, path, key, "expected string, got %s", lfs_config_type_name(v));
    *out = json_string_value(v);
    return 0;
}

enum parse_result { PARSE_OK, PARSE_INVALID, PARSE_RANGE };

/* "[+-]?[0-9]+" exactly, as a variable like GIFTLESS_..._ACTION_LIFETIME=900 arrives. */
static enum parse_result parse_decimal(const char *s, long long *out)
{
    const char *p = s + (*s == '+' || *s == '-');
    char *end;
    if (!isdigit((unsigned char)*p))
        return PARSE_INVALID;
    errno = 0;
    *out = strtoll(s, &end, 10);
    if (*end != '\0')
        return PARSE_INVALID;
    return errno == ERANGE ? PARSE_RANGE : PARSE_OK;
}

/* What differs between integers and sizes: how a string is read and how the value is named
 * in messages. */
struct number_kind {
    enum parse_result (*parse)(const char *s, long long *out);
    const char *name;     /* "integer", "size" */
    const char *range;    /* "an integer", "a size" */
    const char *unit;     /* "" or " bytes" */
    const char *examples; /* how a string form looks, for the invalid-string message */
};

static int get_number(const json_t *obj, const char *path, const char *key, long long def,
                      long long min, long long max, long long *out, struct lfs_error *err,
                      const struct number_kind *kind)
{
    const json_t *v;
    long long n;
    *out = def;
    if (lookup(obj, path, key, &v, err))
        return -1;
    if (v == NULL)
        return 0;
    if (json_is_integer(v)) {
        n = json_integer_value(v);
    } else if (json_is_string(v)) {
        switch (kind->parse(json_string_value(v), &n)) {
        case PARSE_OK: break;
        case PARSE_RANGE:
            return key_error(err, path, key, "expected %s from %lld to %lld%s, got \"%.64s\"",
                             kind->range, min, max, kind->unit, json_string_value(v));
        default:
            return key_error(err, path, key, "expected %s%s, got string \"%.64s\"", kind->name,
                             kind->examples, json_string_value(v));
        }
    } else {
        return key_error(err, path, key, "expected %s, got %s", kind->name,
                         lfs_config_type_name(v));
    }
    if (n < min || n > max)
        return key_error(err, path, key, "expected %s from %lld to %lld%s, got %lld", kind->range,
                         min, max, kind->unit, n);
    *out = n;
    return 0;
}

int lfs_config_get_int(const json_t *obj, const char *path, const char *key, long long def,
                       long long min, long long max, long long *out, struct lfs_error *err)
{
    static const struct number_kind kind = {parse_decimal, "integer", "an integer", "", ""};
    return get_number(obj, path, key, def, min, max, out, err, &kind);
}

int lfs_config_get_bool(const json_t *obj, const char *path, const char *key, bool def, bool *out,
                        struct lfs_error *err)
{
    static const char *const yes[] = {"true", "yes", "on", "1", NULL};
    static const char *const no[] = {"false", "no", "off", "0", NULL};
    const json_t *v;
    *out = def;
    if (lookup(obj, path, key, &v, err))
        return -1;
    if (v == NULL)
        return 0;
    if (json_is_boolean(v)) {
        *out = json_is_true(v);
        return 0;
    }
    if (!json_is_string(v))
        return key_error(err, path, key, "expected boolean, got %s", lfs_config_type_name(v));
    for (int i = 0; yes[i] != NULL; i++) {
        if (strcasecmp(json_string_value(v), yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(json_string_value(v), no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return key_error(err, path, key, "expected boolean, got string \"%.64s\"",
                     json_string_value(v));
}

/* "<digits>[ ][K|M|G|T][i][B]", units in powers of 1024, case-insensitive; "i" only after
 * a unit ("1KiB", not "1iB"). */
static enum parse_result parse_size(const char *s, long long *out)
{
    unsigned long long n = 0, mult = 1;
    bool overflow = false;
    const char *p = s;
    if (!isdigit((unsigned char)*p))
        return PARSE_INVALID;
    for (; isdigit((unsigned char)*p); p++) {
        unsigned d = (unsigned)(*p - '0');
        if (n > ((unsigned long long)LLONG_MAX - d) / 10)
            overflow = true; /* keep scanning: the suffix is still validated */
        else
            n = n * 10 + d;
    }
    /* a blank may separate the number from a unit ("1 G"), but not end the text */
    if (*p == ' ') {
        while (*p == ' ')
            p++;
        if (*p == '\0')
            return PARSE_INVALID;
    }
    switch (toupper((unsigned char)*p)) {
    case 'K': mult = 1ULL << 10; break;
    case 'M': mult = 1ULL << 20; break;
    case 'G': mult = 1ULL << 30; break;
    case 'T': mult = 1ULL << 40; break;
    default: break;
    }
    if (mult != 1) {
        p++;
        if (*p == 'i' || *p == 'I') {
            p++;
            if (*p != 'B' && *p != 'b')
                return PARSE_INVALID;
        }
    }
    if (*p == 'B' || *p == 'b')
        p++;
    if (*p != '\0')
        return PARSE_INVALID;
    if (overflow || n > (unsigned long long)LLONG_MAX / mult)
        return PARSE_RANGE;
    *out = (long long)(n * mult);
    return PARSE_OK;
}

int lfs_config_get_size(const json_t *obj, const char *path, const char *key, long long def,
                        long long min, long long max, long long *out, struct lfs_error *err)
{
    static const struct number_kind kind = {
        parse_size, "size", "a size", " bytes",
        " (bytes, or a number with a K, M, G or T suffix such as \"512M\")"};
    return get_number(obj, path, key, def, min, max, out, err, &kind);
}

int lfs_config_get_object(const json_t *obj, const char *path, const char *key, const json_t **out,
                          struct lfs_error *err)
{
    const json_t *v;
    *out = NULL;
    if (lookup(obj, path, key, &v, err))
        return -1;
    if (v == NULL)
        return 0;
    if (!json_is_object(v))
        return key_error(err, path, key, "expected mapping, got %s", lfs_config_type_name(v));
    *out = v;
    return 0;
}

int lfs_config_check_keys(const json_t *obj, const char *path, const char *const *allowed,
                          struct lfs_error *err)
{
    const char *key;
    json_t *value;
    if (obj == NULL)
        return 0;
    if (!json_is_object(obj))
        return key_error(err, path, NULL, "expected mapping, got %s", lfs_config_type_name(obj));
    /* jansson's iteration API takes a non-const object; iterating does not modify it */
    json_object_foreach((json_t *)obj, key, value)
    {
        char list[LFS_ERROR_MESSAGE_MAX] = "";
        size_t used = 0;
        bool known = false;
        for (int i = 0; allowed != NULL && allowed[i] != NULL && !known; i++)
            known = strcmp(key, allowed[i]) == 0;
        if (known)
            continue;
        bool first;
        if (lfs_config_is_leftover(obj, key, &first)) {
            /* giftless's merge carries its defaults into every section of that name, and its
             * storages ignore options they do not read: not the user's mistake */
            char full[PATH_MAX_LEN];
            if (first)
                lfs_log(LFS_LOG_WARN,
                        "config: %s: ignored: a giftless default that the merge into the "
                        "defaults keeps in this section, which does not read it",
                        lfs_config_path(full, sizeof(full), path, key));
            continue;
        }
        for (int i = 0; allowed != NULL && allowed[i] != NULL && used < sizeof(list); i++) {
            int n = snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "", allowed[i]);
            if (n < 0)
                break;
            used += (size_t)n;
        }
        return key_error(err, path, key, "unknown key; valid keys: %s", list[0] ? list : "(none)");
    }
    return 0;
}
