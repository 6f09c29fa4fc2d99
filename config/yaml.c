/* YAML text -> jansson tree (lfs_config_parse_yaml). It walks libyaml's event stream rather
 * than libyaml's document API so that nesting depth, node count and alias expansion are
 * bounded while parsing, before a hostile document can cost stack or memory, and so that
 * duplicate keys are reported at the line where they occur. Plain scalars are typed the way
 * PyYAML's SafeLoader (YAML 1.1 resolver) types them, because giftless reads its config with
 * yaml.safe_load and a giftless file must mean the same thing here. */
#include "config/config_internal.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#define YAML_TAG(name) "tag:yaml.org,2002:" name

struct yaml_anchor {
    json_t *value; /* NULL while the anchored collection is still open */
    char *text;    /* a scalar's text, so an alias can serve as a mapping key; else NULL */
    size_t nodes;  /* nodes one alias to it adds */
    int height;    /* nesting levels one alias to it adds (0 for a scalar) */
};

struct yaml_frame {
    json_t *value;          /* the open mapping (object) or sequence (array) */
    yaml_mark_t start_mark; /* where it opened, for errors about it as a whole */
    char *key;              /* mapping: key read, value not yet; NULL when expecting a key */
    yaml_mark_t key_mark;
    bool key_is_merge;   /* that key is YAML 1.1's merge key "<<" */
    json_t *merges;      /* mapping: mappings to merge in at its end, highest priority last */
    long anchor;         /* index into anchors, -1 if the collection has no anchor */
    size_t nodes_before; /* ctx->nodes when it opened */
    int child_height;    /* largest height among its children */
};

struct yaml_ctx {
    const char *source;
    struct lfs_error *err;
    struct yaml_frame frames[LFS_CONFIG_MAX_DEPTH];
    int depth; /* open collections */
    struct yaml_anchor *anchors;
    size_t n_anchors, cap_anchors;
    /* anchor name -> index into anchors; a jansson object because its hash table is seeded,
     * so a document cannot make anchor lookups quadratic */
    json_t *anchor_index;
    size_t nodes; /* nodes produced so far, alias copies included */
    json_t *root;
    int documents;
};

static int yaml_fail(struct yaml_ctx *ctx, yaml_mark_t mark, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int yaml_fail(struct yaml_ctx *ctx, yaml_mark_t mark, const char *fmt, ...)
{
    char problem[LFS_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(problem, sizeof(problem), fmt, ap);
    va_end(ap);
    return lfs_error_set(ctx->err, 500, "%s: line %zu, column %zu: %s", ctx->source, mark.line + 1,
                         mark.column + 1, problem);
}

/* ---- scalar resolution (PyYAML resolver.py / constructor.py, YAML 1.1) ---- */

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool equals_any(const char *s, size_t n, const char *const *words)
{
    for (; *words != NULL; words++)
        if (strlen(*words) == n && memcmp(s, *words, n) == 0)
            return true;
    return false;
}

static const char *const yaml_null_words[] = {"~", "null", "Null", "NULL", NULL};
static const char *const yaml_true_words[] = {"yes",  "Yes", "YES", "true", "True",
                                              "TRUE", "on",  "On",  "ON",   NULL};
static const char *const yaml_false_words[] = {"no",    "No",  "NO",  "false", "False",
                                               "FALSE", "off", "Off", "OFF",   NULL};

/* One sexagesimal segment after ':' in "1:30" or "1:30:15.5": one digit, or two digits
 * of which the first is 0-5 (regex ":[0-5]?[0-9]"). Advances *i past it. */
static bool match_sexagesimal_segment(const char *s, size_t n, size_t *i, unsigned *value)
{
    size_t start = *i, k = start;
    while (k < n && is_digit(s[k]))
        k++;
    if (k - start == 1)
        *value = (unsigned)(s[start] - '0');
    else if (k - start == 2 && s[start] <= '5')
        *value = (unsigned)(s[start] - '0') * 10 + (unsigned)(s[start + 1] - '0');
    else
        return false;
    *i = k;
    return true;
}

static void skip_digits_underscores(const char *s, size_t n, size_t *i)
{
    while (*i < n && (is_digit(s[*i]) || s[*i] == '_'))
        (*i)++;
}

/* Optional "[eE][-+][0-9]+" (PyYAML requires the exponent's sign), then end of text. */
static bool match_exponent_then_end(const char *s, size_t n, size_t i)
{
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i >= n || (s[i] != '+' && s[i] != '-'))
            return false;
        i++;
        if (i >= n || !is_digit(s[i]))
            return false;
        while (i < n && is_digit(s[i]))
            i++;
    }
    return i == n;
}

/* PyYAML's float regex:
 *   [-+]?[0-9][0-9_]*\.[0-9_]*([eE][-+][0-9]+)? | \.[0-9][0-9_]*([eE][-+][0-9]+)?
 *   | [-+]?[0-9][0-9_]*(:[0-5]?[0-9])+\.[0-9_]* | [-+]?\.(inf|Inf|INF) | \.(nan|NaN|NAN)
 * *special is set for the infinity and NaN forms. */
static bool match_yaml_float(const char *s, size_t n, bool *special)
{
    static const char *const inf_words[] = {"inf", "Inf", "INF", NULL};
    static const char *const nan_words[] = {"nan", "NaN", "NAN", NULL};
    size_t i = 0;
    bool sign = n > 0 && (s[0] == '+' || s[0] == '-');
    unsigned ignored;
    *special = false;
    if (sign)
        i++;
    if (i < n && s[i] == '.') {
        if (equals_any(s + i + 1, n - i - 1, inf_words) ||
            (!sign && equals_any(s + i + 1, n - i - 1, nan_words))) {
            *special = true;
            return true;
        }
        if (sign || i + 1 >= n || !is_digit(s[i + 1]))
            return false;
        i += 2;
        skip_digits_underscores(s, n, &i);
        return match_exponent_then_end(s, n, i);
    }
    if (i >= n || !is_digit(s[i]))
        return false;
    skip_digits_underscores(s, n, &i);
    if (i < n && s[i] == '.') {
        i++;
        skip_digits_underscores(s, n, &i);
        return match_exponent_then_end(s, n, i);
    }
    if (i >= n || s[i] != ':')
        return false;
    while (i < n && s[i] == ':') {
        i++;
        if (!match_sexagesimal_segment(s, n, &i, &ignored))
            return false;
    }
    if (i >= n || s[i] != '.')
        return false;
    i++;
    skip_digits_underscores(s, n, &i);
    return i == n;
}

/* Converts a scalar already known to be a float (or, under an explicit !!float tag, any
 * decimal number) the way PyYAML's construct_yaml_float does: drop '_', honour the sign,
 * sum sexagesimal parts. Returns 0, or -1 if the text is not a finite number. */
static int yaml_float_value(const char *s, size_t n, double *out)
{
    char *clean = malloc(n + 1), *p = clean, *end;
    double value = 0, sign = 1;
    int rc = -1;
    if (clean == NULL)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (s[i] != '_')
            *p++ = s[i];
    *p = '\0';
    p = clean;
    if (*p == '-' || *p == '+')
        sign = *p++ == '-' ? -1 : 1;
    /* Only these characters: keeps strtod from accepting "inf", "nan", hex floats or
     * surrounding blanks, which PyYAML's implicit resolver never sees as floats. */
    if (*p == '\0' || p[strspn(p, "0123456789.eE+-:")] != '\0')
        goto out;
    if (strchr(p, ':') != NULL) {
        while (*p != '\0') {
            /* strtod on "30:15.5" stops at ':', which is what we want */
            double part = strtod(p, &end);
            if (end == p)
                goto out;
            value = value * 60 + part;
            p = *end == ':' ? end + 1 : end;
            if (*end != ':' && *end != '\0')
                goto out;
        }
    } else {
        /* strtod reads the C locale's '.', which is the locale lfsgate runs in (it never
         * calls setlocale) */
        value = strtod(p, &end);
        if (end == p || *end != '\0')
            goto out;
    }
    value *= sign;
    if (!isfinite(value))
        goto out;
    *out = value;
    rc = 0;
out:
    free(clean);
    return rc;
}

enum yaml_int_result { YAML_INT_OK, YAML_INT_NOMATCH, YAML_INT_RANGE };

static int digit_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static bool accumulate(unsigned long long *acc, unsigned base, unsigned digit)
{
    if (*acc > (ULLONG_MAX - digit) / base)
        return false;
    *acc = *acc * base + digit;
    return true;
}

/* PyYAML's int regex and construct_yaml_int together:
 *   [-+]?0b[0-1_]+ | [-+]?0[0-7_]+ | [-+]?(0|[1-9][0-9_]*) | [-+]?0x[0-9a-fA-F_]+
 *   | [-+]?[1-9][0-9_]*(:[0-5]?[0-9])+
 * so "0755" is octal, "0o17" is a string (YAML 1.2 syntax, not 1.1) and "1:30" is 90. */
static enum yaml_int_result yaml_int_value(const char *s, size_t n, long long *out)
{
    size_t i = 0, digits = 0;
    bool negative = false, overflow = false;
    unsigned base = 10;
    unsigned long long acc = 0;
    if (i < n && (s[i] == '+' || s[i] == '-'))
        negative = s[i++] == '-';
    if (i >= n)
        return YAML_INT_NOMATCH;
    if (s[i] == '0' && i + 1 == n) {
        *out = 0;
        return YAML_INT_OK;
    }
    if (s[i] == '0' && s[i + 1] == 'b') {
        base = 2;
        i += 2;
    } else if (s[i] == '0' && s[i + 1] == 'x') {
        base = 16;
        i += 2;
    } else if (s[i] == '0') {
        base = 8;
        i += 1;
    } else if (s[i] < '1' || s[i] > '9') {
        return YAML_INT_NOMATCH;
    }
    for (; i < n && s[i] != ':'; i++) {
        int d = digit_value(s[i]);
        if (s[i] == '_')
            continue;
        if (d < 0 || (unsigned)d >= base)
            return YAML_INT_NOMATCH;
        if (!accumulate(&acc, base, (unsigned)d))
            overflow = true;
        digits++;
    }
    /* "0x" or "0b_" match nothing in PyYAML either (its int() would fail); octal "0_" is 0 */
    if (digits == 0 && base != 8)
        return YAML_INT_NOMATCH;
    if (i < n) {
        if (base != 10)
            return YAML_INT_NOMATCH;
        while (i < n) {
            unsigned segment;
            if (s[i] != ':')
                return YAML_INT_NOMATCH;
            i++;
            if (!match_sexagesimal_segment(s, n, &i, &segment))
                return YAML_INT_NOMATCH;
            if (!accumulate(&acc, 60, segment))
                overflow = true;
        }
    }
    if (overflow || acc > (unsigned long long)LLONG_MAX + (negative ? 1u : 0u))
        return YAML_INT_RANGE;
    if (negative)
        *out = acc == (unsigned long long)LLONG_MAX + 1u ? LLONG_MIN : -(long long)acc;
    else
        *out = (long long)acc;
    return YAML_INT_OK;
}

static int make_int(struct yaml_ctx *ctx, yaml_mark_t mark, const char *s, size_t n, json_t **out)
{
    long long value;
    switch (yaml_int_value(s, n, &value)) {
    case YAML_INT_OK: *out = json_integer(value); return 0;
    case YAML_INT_RANGE:
        return yaml_fail(ctx, mark, "integer \"%.*s\" is out of range", (int)(n > 64 ? 64 : n), s);
    default: return yaml_fail(ctx, mark, "invalid integer \"%.*s\"", (int)(n > 64 ? 64 : n), s);
    }
}

static int make_float(struct yaml_ctx *ctx, yaml_mark_t mark, const char *s, size_t n, bool special,
                      json_t **out)
{
    double value;
    /* JSON has no infinity or NaN: refuse rather than silently change the value's type */
    if (special)
        return yaml_fail(ctx, mark, "\"%.*s\": infinity and NaN are not supported", (int)n, s);
    if (yaml_float_value(s, n, &value) != 0)
        return yaml_fail(ctx, mark, "invalid or out-of-range float \"%.*s\"",
                         (int)(n > 64 ? 64 : n), s);
    *out = json_real(value);
    return 0;
}

/* Implicit typing of a plain (unquoted, untagged) scalar. */
static int resolve_plain(struct yaml_ctx *ctx, yaml_mark_t mark, const char *s, size_t n,
                         json_t **out)
{
    bool special;
    long long ignored;
    if (n == 0 || equals_any(s, n, yaml_null_words))
        *out = json_null();
    else if (equals_any(s, n, yaml_true_words))
        *out = json_true();
    else if (equals_any(s, n, yaml_false_words))
        *out = json_false();
    else if (match_yaml_float(s, n, &special))
        return make_float(ctx, mark, s, n, special, out);
    else if (yaml_int_value(s, n, &ignored) != YAML_INT_NOMATCH)
        return make_int(ctx, mark, s, n, out);
    else
        *out = json_stringn(s, n); /* timestamps too: JSON has no date type */
    return 0;
}

static int resolve_scalar(struct yaml_ctx *ctx, const yaml_event_t *ev, json_t **out)
{
    const char *s = (const char *)ev->data.scalar.value;
    size_t n = ev->data.scalar.length;
    const char *tag = (const char *)ev->data.scalar.tag;
    yaml_mark_t mark = ev->start_mark;
    bool special;
    int rc = 0;
    *out = NULL;
    /* "\0" escapes would be cut short by every C consumer of json_string_value */
    if (memchr(s, '\0', n) != NULL)
        return yaml_fail(ctx, mark, "NUL characters are not allowed");
    if (tag == NULL) {
        if (ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
            rc = resolve_plain(ctx, mark, s, n, out);
        else
            *out = json_stringn(s, n);
    } else if (strcmp(tag, "!") == 0 || strcmp(tag, YAML_TAG("str")) == 0 ||
               strcmp(tag, YAML_TAG("timestamp")) == 0) {
        *out = json_stringn(s, n);
    } else if (strcmp(tag, YAML_TAG("null")) == 0) {
        *out = json_null(); /* PyYAML's construct_yaml_null ignores the text */
    } else if (strcmp(tag, YAML_TAG("bool")) == 0) {
        /* construct_yaml_bool: lower-cased lookup in yes/no/true/false/on/off */
        static const char *const yes[] = {"yes", "true", "on", NULL};
        static const char *const no[] = {"no", "false", "off", NULL};
        char lower[8] = "";
        for (size_t i = 0; i < n && i < sizeof(lower) - 1; i++)
            lower[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] - 'A' + 'a' : s[i]);
        if (n < sizeof(lower) && equals_any(lower, n, yes))
            *out = json_true();
        else if (n < sizeof(lower) && equals_any(lower, n, no))
            *out = json_false();
        else
            return yaml_fail(ctx, mark, "invalid boolean \"%.*s\"", (int)(n > 64 ? 64 : n), s);
    } else if (strcmp(tag, YAML_TAG("int")) == 0) {
        rc = make_int(ctx, mark, s, n, out);
    } else if (strcmp(tag, YAML_TAG("float")) == 0) {
        match_yaml_float(s, n, &special);
        rc = make_float(ctx, mark, s, n, special, out);
    } else {
        return yaml_fail(ctx, mark, "unsupported tag \"%.100s\"", tag);
    }
    if (rc == 0 && *out == NULL)
        return yaml_fail(ctx, mark, "invalid UTF-8 or out of memory");
    return rc;
}

/* ---- tree building ---- */

static struct yaml_frame *top(struct yaml_ctx *ctx)
{
    return ctx->depth > 0 ? &ctx->frames[ctx->depth - 1] : NULL;
}

static bool expecting_key(struct yaml_ctx *ctx)
{
    struct yaml_frame *f = top(ctx);
    return f != NULL && json_is_object(f->value) && f->key == NULL;
}

static int count_nodes(struct yaml_ctx *ctx, yaml_mark_t mark, size_t n)
{
    if (n > LFS_CONFIG_MAX_NODES - ctx->nodes)
        return yaml_fail(ctx, mark, "document has more than %u nodes (aliases expanded)",
                         LFS_CONFIG_MAX_NODES);
    ctx->nodes += n;
    return 0;
}

static int add_anchor(struct yaml_ctx *ctx, yaml_mark_t mark, const char *name, long *index)
{
    if (ctx->n_anchors == ctx->cap_anchors) {
        size_t cap = ctx->cap_anchors ? ctx->cap_anchors * 2 : 16;
        struct yaml_anchor *grown = realloc(ctx->anchors, cap * sizeof(*grown));
        if (grown == NULL)
            return yaml_fail(ctx, mark, "out of memory");
        ctx->anchors = grown;
        ctx->cap_anchors = cap;
    }
    /* a later anchor of the same name replaces the earlier one for subsequent aliases, as
     * YAML specifies; the earlier entry stays in the array until the end */
    if (json_object_set_new(ctx->anchor_index, name, json_integer((json_int_t)ctx->n_anchors)))
        return yaml_fail(ctx, mark, "out of memory");
    ctx->anchors[ctx->n_anchors] = (struct yaml_anchor){0};
    *index = (long)ctx->n_anchors++;
    return 0;
}

/* Queues the value of a "<<" key. PyYAML's flatten_mapping gives explicit keys priority,
 * then later "<<" keys over earlier ones, and within a "<<: [a, b]" list earlier entries over
 * later ones; we queue lowest priority first so the mapping's end can apply them in reverse. */
static int add_merge(struct yaml_ctx *ctx, struct yaml_frame *f, json_t *v, yaml_mark_t mark)
{
    int rc = 0;
    if (f->merges == NULL && (f->merges = json_array()) == NULL)
        rc = yaml_fail(ctx, mark, "out of memory");
    else if (json_is_object(v))
        rc = json_array_append(f->merges, v) ? yaml_fail(ctx, mark, "out of memory") : 0;
    else if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v) && rc == 0; i++)
            if (!json_is_object(json_array_get(v, i)))
                rc = yaml_fail(ctx, mark, "expected a mapping or list of mappings for merging");
        for (size_t i = json_array_size(v); i > 0 && rc == 0; i--)
            if (json_array_append(f->merges, json_array_get(v, i - 1)))
                rc = yaml_fail(ctx, mark, "out of memory");
    } else {
        rc = yaml_fail(ctx, mark, "expected a mapping or list of mappings for merging");
    }
    json_decref(v);
    return rc;
}

/* Places a completed node (reference stolen) into the open collection, or makes it the
 * document root. `key_text` is the scalar text to use if the node turns out to be a mapping
 * key (NULL for collections); `height` is its nesting height. */
static int add_node(struct yaml_ctx *ctx, json_t *v, int height, const char *key_text,
                    bool plain_merge_key, yaml_mark_t mark)
{
    struct yaml_frame *f = top(ctx);
    if (v == NULL)
        return yaml_fail(ctx, mark, "out of memory");
    if (f == NULL) {
        json_decref(ctx->root);
        ctx->root = v;
        return 0;
    }
    if (json_is_array(f->value)) {
        if (json_array_append_new(f->value, v))
            return yaml_fail(ctx, mark, "out of memory");
    } else if (f->key == NULL) {
        /* keys become strings: their text as written, so "1:", "true:" and "~:" give "1",
         * "true" and "~" (PyYAML would make int/bool/None keys, which JSON cannot hold) */
        json_decref(v);
        if (key_text == NULL)
            return yaml_fail(ctx, mark, "mapping keys must be scalars");
        if (!plain_merge_key && json_object_get(f->value, key_text) != NULL)
            return yaml_fail(ctx, mark, "duplicate key \"%.200s\"", key_text);
        if ((f->key = strdup(key_text)) == NULL)
            return yaml_fail(ctx, mark, "out of memory");
        f->key_mark = mark;
        f->key_is_merge = plain_merge_key;
        return 0;
    } else {
        int rc = 0;
        if (f->key_is_merge)
            rc = add_merge(ctx, f, v, mark);
        else if (json_object_set_new(f->value, f->key, v))
            rc = yaml_fail(ctx, f->key_mark, "invalid key \"%.200s\"", f->key);
        free(f->key);
        f->key = NULL;
        if (rc)
            return rc;
    }
    if (height > f->child_height)
        f->child_height = height;
    return 0;
}

static int on_scalar(struct yaml_ctx *ctx, const yaml_event_t *ev)
{
    const char *text = (const char *)ev->data.scalar.value;
    const char *anchor = (const char *)ev->data.scalar.anchor;
    bool merge_key = ev->data.scalar.tag == NULL &&
                     ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && strcmp(text, "<<") == 0;
    json_t *v;
    long index;
    if (resolve_scalar(ctx, ev, &v) || count_nodes(ctx, ev->start_mark, 1)) {
        json_decref(v);
        return -1;
    }
    if (anchor != NULL) {
        if (add_anchor(ctx, ev->start_mark, anchor, &index)) {
            json_decref(v);
            return -1;
        }
        ctx->anchors[index].value = json_incref(v);
        ctx->anchors[index].nodes = 1;
        if ((ctx->anchors[index].text = strdup(text)) == NULL) {
            json_decref(v);
            return yaml_fail(ctx, ev->start_mark, "out of memory");
        }
    }
    return add_node(ctx, v, 0, text, merge_key, ev->start_mark);
}

static int on_alias(struct yaml_ctx *ctx, const yaml_event_t *ev)
{
    const char *name = (const char *)ev->data.alias.anchor;
    json_t *index = json_object_get(ctx->anchor_index, name);
    struct yaml_anchor *a;
    if (index == NULL)
        return yaml_fail(ctx, ev->start_mark, "undefined alias \"%.100s\"", name);
    a = &ctx->anchors[json_integer_value(index)];
    if (a->value == NULL)
        return yaml_fail(ctx, ev->start_mark, "recursive alias \"%.100s\"", name);
    if (expecting_key(ctx) && a->text == NULL)
        return yaml_fail(ctx, ev->start_mark, "mapping keys must be scalars");
    if (count_nodes(ctx, ev->start_mark, a->nodes))
        return -1;
    if (ctx->depth + a->height > LFS_CONFIG_MAX_DEPTH)
        return yaml_fail(ctx, ev->start_mark,
                         "nested deeper than %d levels (through alias \"%.100s\")",
                         LFS_CONFIG_MAX_DEPTH, name);
    /* a copy, not a shared reference: later merges and env overrides edit the tree in place
     * and must not change every place an alias points at */
    return add_node(ctx, json_deep_copy(a->value), a->height, a->text, false, ev->start_mark);
}

static int on_collection_start(struct yaml_ctx *ctx, const yaml_event_t *ev, bool mapping)
{
    const char *anchor =
        (const char *)(mapping ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor);
    const char *tag =
        (const char *)(mapping ? ev->data.mapping_start.tag : ev->data.sequence_start.tag);
    size_t nodes_before = ctx->nodes;
    struct yaml_frame *f;
    if (expecting_key(ctx))
        return yaml_fail(ctx, ev->start_mark, "mapping keys must be scalars");
    if (tag != NULL && strcmp(tag, "!") != 0 &&
        strcmp(tag, mapping ? YAML_TAG("map") : YAML_TAG("seq")) != 0)
        return yaml_fail(ctx, ev->start_mark, "unsupported tag \"%.100s\"", tag);
    if (ctx->depth >= LFS_CONFIG_MAX_DEPTH)
        return yaml_fail(ctx, ev->start_mark, "nested deeper than %d levels", LFS_CONFIG_MAX_DEPTH);
    if (count_nodes(ctx, ev->start_mark, 1))
        return -1;
    f = &ctx->frames[ctx->depth];
    *f = (struct yaml_frame){
        .start_mark = ev->start_mark, .anchor = -1, .nodes_before = nodes_before};
    if ((f->value = mapping ? json_object() : json_array()) == NULL)
        return yaml_fail(ctx, ev->start_mark, "out of memory");
    ctx->depth++;
    /* registered now with no value, so an alias inside the collection itself is caught */
    if (anchor != NULL && add_anchor(ctx, ev->start_mark, anchor, &f->anchor))
        return -1;
    return 0;
}

static int on_collection_end(struct yaml_ctx *ctx)
{
    struct yaml_frame *f = top(ctx);
    json_t *v = f->value;
    yaml_mark_t mark = f->start_mark;
    int height = f->child_height + 1;
    if (f->merges != NULL) {
        for (size_t i = json_array_size(f->merges); i > 0; i--) {
            const char *key;
            json_t *value;
            json_object_foreach(json_array_get(f->merges, i - 1), key, value)
            {
                if (json_object_get(v, key) == NULL && json_object_set(v, key, value))
                    return yaml_fail(ctx, mark, "out of memory");
            }
        }
        json_decref(f->merges);
        f->merges = NULL;
    }
    if (f->anchor >= 0) {
        struct yaml_anchor *a = &ctx->anchors[f->anchor];
        a->value = json_incref(v);
        a->nodes = ctx->nodes - f->nodes_before;
        a->height = height;
    }
    f->value = NULL;
    ctx->depth--;
    return add_node(ctx, v, height, NULL, false, mark);
}

static int on_event(struct yaml_ctx *ctx, const yaml_event_t *ev, bool *done)
{
    switch (ev->type) {
    case YAML_DOCUMENT_START_EVENT:
        if (++ctx->documents > 1)
            return yaml_fail(ctx, ev->start_mark,
                             "expected a single document, but found another document");
        return 0;
    case YAML_STREAM_END_EVENT: *done = true; return 0;
    case YAML_SCALAR_EVENT: return on_scalar(ctx, ev);
    case YAML_ALIAS_EVENT: return on_alias(ctx, ev);
    case YAML_MAPPING_START_EVENT: return on_collection_start(ctx, ev, true);
    case YAML_SEQUENCE_START_EVENT: return on_collection_start(ctx, ev, false);
    case YAML_MAPPING_END_EVENT:
    case YAML_SEQUENCE_END_EVENT: return on_collection_end(ctx);
    default: return 0;
    }
}

static int parser_error(struct yaml_ctx *ctx, const yaml_parser_t *parser, const char *text)
{
    yaml_mark_t mark = parser->problem_mark;
    const char *problem = parser->problem ? parser->problem : "invalid YAML";
    switch (parser->error) {
    case YAML_MEMORY_ERROR: return lfs_error_set(ctx->err, 500, "%s: out of memory", ctx->source);
    case YAML_READER_ERROR:
        /* reader errors (bad encoding) carry a byte offset, not a mark: count lines and
         * bytes ourselves */
        mark.line = 0;
        mark.column = 0;
        for (size_t i = 0; i < parser->problem_offset; i++) {
            if (text[i] == '\n') {
                mark.line++;
                mark.column = 0;
            } else {
                mark.column++;
            }
        }
        return yaml_fail(ctx, mark, "%s", problem);
    default:
        if (parser->context != NULL)
            return yaml_fail(ctx, mark, "%s (%s at line %zu, column %zu)", problem, parser->context,
                             parser->context_mark.line + 1, parser->context_mark.column + 1);
        return yaml_fail(ctx, mark, "%s", problem);
    }
}

static void ctx_free(struct yaml_ctx *ctx)
{
    for (int i = 0; i < ctx->depth; i++) {
        json_decref(ctx->frames[i].value);
        json_decref(ctx->frames[i].merges);
        free(ctx->frames[i].key);
    }
    for (size_t i = 0; i < ctx->n_anchors; i++) {
        json_decref(ctx->anchors[i].value);
        free(ctx->anchors[i].text);
    }
    free(ctx->anchors);
    json_decref(ctx->anchor_index);
    json_decref(ctx->root);
    free(ctx);
}

int lfs_config_parse_yaml(const char *text, size_t len, const char *source, json_t **out,
                          struct lfs_error *err)
{
    struct yaml_ctx *ctx;
    yaml_parser_t parser;
    bool done = false;
    int rc = 0;
    *out = NULL;
    if (source == NULL)
        source = "<config>";
    if (text == NULL) {
        if (len != 0)
            return lfs_error_set(err, 500, "%s: no text", source);
        text = ""; /* libyaml asserts on a NULL input */
    }
    if (len > LFS_CONFIG_MAX_TEXT)
        return lfs_error_set(err, 500, "%s: larger than %u bytes", source, LFS_CONFIG_MAX_TEXT);
    if ((ctx = calloc(1, sizeof(*ctx))) == NULL)
        return lfs_error_set(err, 500, "%s: out of memory", source);
    ctx->source = source;
    ctx->err = err;
    if ((ctx->anchor_index = json_object()) == NULL || !yaml_parser_initialize(&parser)) {
        ctx_free(ctx);
        return lfs_error_set(err, 500, "%s: out of memory", source);
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    while (!done && rc == 0) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            rc = parser_error(ctx, &parser, text);
            break;
        }
        rc = on_event(ctx, &ev, &done);
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&parser);
    if (rc == 0) {
        *out = ctx->root != NULL ? ctx->root : json_null(); /* empty stream: null */
        ctx->root = NULL;
    }
    ctx_free(ctx);
    return rc;
}
