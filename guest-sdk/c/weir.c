/* weir.c — the C SDK's plain-C part (weir.h): compiled into every C plugin, natively for its
 * tests and for Wasm by `weir plugin build`. Messages match the Rust SDK's word for word. */
#include "weir.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- memory */

static void *xrealloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q) abort(); /* out of memory: trap, as Rust's allocator does */
    return q;
}

static char *xstrndup(const char *s, size_t n) {
    char *d = xrealloc(NULL, n + 1);
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

/* A growable string for messages. */
typedef struct {
    char *p;
    size_t len, cap;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->p = xrealloc(b->p, b->cap);
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}
static void sb_str(sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }
static void sb_fmt(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_fmt(sbuf *b, const char *fmt, ...) {
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < (int)sizeof tmp) {
        sb_add(b, tmp, (size_t)n);
        return;
    }
    char *big = xrealloc(NULL, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb_add(b, big, (size_t)n);
    free(big);
}
static char *sb_take(sbuf *b) { return b->p ? b->p : xstrndup("", 0); }

/* ---------------------------------------------------------------- errors */

static int vfail(weir_error *err, int64_t row, const char *fmt, va_list ap) {
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    char *m = xrealloc(NULL, (size_t)(n < 0 ? 0 : n) + 1);
    vsnprintf(m, (size_t)(n < 0 ? 0 : n) + 1, fmt, ap2);
    va_end(ap2);
    if (err) {
        free(err->message);
        err->message = m;
        err->row = row;
    } else {
        free(m);
    }
    return -1;
}

int weir_fail(weir_error *err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfail(err, -1, fmt, ap);
    va_end(ap);
    return -1;
}

int weir_fail_at(weir_error *err, int64_t row, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfail(err, row, fmt, ap);
    va_end(ap);
    return -1;
}

void weir_error_clear(weir_error *err) {
    free(err->message);
    err->message = NULL;
    err->row = -1;
}

/* ---------------------------------------------------------------- config */

static size_t count_pairs(const weir_config *c) {
    size_t n = 0;
    if (c->pairs)
        while (c->pairs[n].key) n++;
    return n;
}

static void trim(const char **s, size_t *n) {
    while (*n && (**s == ' ' || **s == '\t' || **s == '\r' || **s == '\f' || **s == '\v')) (*s)++, (*n)--;
    while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t' || (*s)[*n - 1] == '\r' || (*s)[*n - 1] == '\f' ||
                  (*s)[*n - 1] == '\v'))
        (*n)--;
}

int weir_config_parse(const char *raw, size_t raw_len, weir_config *out, weir_error *err) {
    weir_config c = {xstrndup(raw, raw_len), raw_len, xrealloc(NULL, sizeof(weir_pair))};
    c.pairs[0].key = c.pairs[0].value = NULL;
    size_t n = 0, start = 0;
    for (size_t i = 0; i <= raw_len; i++) {
        if (i < raw_len && raw[i] != ',' && raw[i] != '\n') continue;
        const char *e = raw + start;
        size_t elen = i - start;
        start = i + 1;
        trim(&e, &elen);
        if (!elen) continue;
        const char *eq = memchr(e, '=', elen);
        if (!eq) {
            weir_config_free(&c);
            return weir_fail(err, "config entry `%.*s` is not `key=value`", (int)elen, e);
        }
        const char *k = e, *v = eq + 1;
        size_t klen = (size_t)(eq - e), vlen = elen - klen - 1;
        trim(&k, &klen);
        trim(&v, &vlen);
        if (!klen) {
            weir_config_free(&c);
            return weir_fail(err, "config entry `%.*s` has an empty key", (int)elen, e);
        }
        for (size_t j = 0; j < n; j++) {
            if (strlen(c.pairs[j].key) == klen && !memcmp(c.pairs[j].key, k, klen)) {
                weir_config_free(&c);
                return weir_fail(err, "config key `%.*s` is given twice", (int)klen, k);
            }
        }
        c.pairs = xrealloc(c.pairs, (n + 2) * sizeof(weir_pair));
        c.pairs[n].key = xstrndup(k, klen);
        c.pairs[n].value = xstrndup(v, vlen);
        n++;
        c.pairs[n].key = c.pairs[n].value = NULL;
    }
    *out = c;
    return 0;
}

void weir_config_free(weir_config *c) {
    for (size_t i = 0; c->pairs && c->pairs[i].key; i++) {
        free(c->pairs[i].key);
        free(c->pairs[i].value);
    }
    free(c->pairs);
    free(c->raw);
    memset(c, 0, sizeof *c);
}

const char *weir_config_get(const weir_config *c, const char *key) {
    for (size_t i = 0; c->pairs && c->pairs[i].key; i++)
        if (!strcmp(c->pairs[i].key, key)) return c->pairs[i].value;
    return NULL;
}

int weir_config_require(const weir_config *c, const char *key, const char **out, weir_error *err) {
    const char *v = weir_config_get(c, key);
    if (!v) return weir_fail(err, "config key `%s` is required", key);
    *out = v;
    return 0;
}

static bool ieq(const char *a, const char *b) {
    for (; *a && *b; a++, b++) {
        char x = *a >= 'A' && *a <= 'Z' ? *a + 32 : *a, y = *b;
        if (x != y) return false;
    }
    return !*a && !*b;
}

/* Rust's f64 grammar: [+-] (inf | infinity | nan, any case) or digits [. digits] [e [+-] digits],
 * with at least one digit before the exponent. */
static bool parse_rust_f64(const char *s, double *out) {
    const char *p = s;
    bool neg = false;
    if (*p == '+' || *p == '-') neg = *p++ == '-';
    if (ieq(p, "inf") || ieq(p, "infinity")) {
        *out = neg ? -INFINITY : INFINITY;
        return true;
    }
    if (ieq(p, "nan")) {
        *out = NAN;
        return true;
    }
    size_t digits = 0;
    while (*p >= '0' && *p <= '9') p++, digits++;
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9') p++, digits++;
    }
    if (!digits) return false;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-') p++;
        if (!(*p >= '0' && *p <= '9')) return false;
        while (*p >= '0' && *p <= '9') p++;
    }
    if (*p) return false;
    *out = strtod(s, NULL);
    return true;
}

static bool parse_rust_int(const char *s, int64_t min, int64_t max, int64_t *out) {
    const char *p = s;
    bool neg = false;
    if (*p == '+' || *p == '-') neg = *p++ == '-';
    if (!*p) return false;
    uint64_t limit = neg ? (uint64_t)(-(min + 1)) + 1 : (uint64_t)max, v = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9') return false;
        unsigned d = (unsigned)(*p - '0');
        if (v > (limit - d) / 10) return false;
        v = v * 10 + d;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

int weir_config_f64(const weir_config *c, const char *key, double def, double *out, weir_error *err) {
    const char *v = weir_config_get(c, key);
    if (!v) {
        *out = def;
        return 0;
    }
    if (!parse_rust_f64(v, out)) return weir_fail(err, "config key `%s`: `%s` is not a number", key, v);
    return 0;
}

int weir_config_i64(const weir_config *c, const char *key, int64_t def, int64_t *out, weir_error *err) {
    const char *v = weir_config_get(c, key);
    if (!v) {
        *out = def;
        return 0;
    }
    if (!parse_rust_int(v, INT64_MIN, INT64_MAX, out)) return weir_fail(err, "config key `%s`: `%s` is not an integer", key, v);
    return 0;
}

int weir_config_i32(const weir_config *c, const char *key, int32_t def, int32_t *out, weir_error *err) {
    const char *v = weir_config_get(c, key);
    int64_t x;
    if (!v) {
        *out = def;
        return 0;
    }
    if (!parse_rust_int(v, INT32_MIN, INT32_MAX, &x))
        return weir_fail(err, "config key `%s`: `%s` is not a 32-bit integer", key, v);
    *out = (int32_t)x;
    return 0;
}

int weir_config_bool(const weir_config *c, const char *key, bool def, bool *out, weir_error *err) {
    const char *v = weir_config_get(c, key);
    if (!v) *out = def;
    else if (!strcmp(v, "true")) *out = true;
    else if (!strcmp(v, "false")) *out = false;
    else return weir_fail(err, "config key `%s`: `%s` is not `true` or `false`", key, v);
    return 0;
}

int weir_config_reject_unknown(const weir_config *c, const char *const *known, size_t n, weir_error *err) {
    for (size_t i = 0, np = count_pairs(c); i < np; i++) {
        bool ok = false;
        for (size_t j = 0; j < n && !ok; j++) ok = !strcmp(c->pairs[i].key, known[j]);
        if (ok) continue;
        sbuf b = {0};
        for (size_t j = 0; j < n; j++) {
            if (j) sb_str(&b, ", ");
            sb_str(&b, known[j]);
        }
        char *list = sb_take(&b);
        weir_fail(err, "unknown config key `%s` (known keys: %s)", c->pairs[i].key, list);
        free(list);
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- types and schemas */

const char *weir_type_name(weir_type t) {
    switch (t) {
    case WEIR_BOOLEAN: return "boolean";
    case WEIR_INT32: return "int32 (int)";
    case WEIR_INT64: return "int64 (bigint)";
    case WEIR_FLOAT64: return "float64 (double)";
    case WEIR_UTF8: return "utf8 (string)";
    case WEIR_BINARY: return "binary";
    case WEIR_TIMESTAMP: return "timestamp";
    }
    return "?";
}

static char *schema_names(const weir_schema *s) {
    if (!s->len) return xstrndup("(none)", 6);
    sbuf b = {0};
    for (size_t i = 0; i < s->len; i++) {
        if (i) sb_str(&b, ", ");
        sb_str(&b, s->fields[i].name);
    }
    return sb_take(&b);
}

int64_t weir_schema_index(const weir_schema *s, const char *name) {
    for (size_t i = 0; i < s->len; i++)
        if (!strcmp(s->fields[i].name, name)) return (int64_t)i;
    return -1;
}

int weir_schema_require(const weir_schema *s, const char *name, weir_type type, weir_error *err) {
    int64_t i = weir_schema_index(s, name);
    if (i < 0) {
        char *names = schema_names(s);
        weir_fail(err, "input has no column `%s` (of type %s); its columns are: %s", name, weir_type_name(type), names);
        free(names);
        return -1;
    }
    if (s->fields[i].type != type)
        return weir_fail(err, "input column `%s` must be %s, but it is %s", name, weir_type_name(type),
                         weir_type_name(s->fields[i].type));
    return 0;
}

static void schema_push(weir_schema *s, const char *name, size_t name_len, weir_type type, bool nullable) {
    if (s->len == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 8;
        s->fields = xrealloc(s->fields, s->cap * sizeof(weir_field));
    }
    s->fields[s->len++] = (weir_field){xstrndup(name, name_len), type, nullable};
}

weir_schema weir_schema_copy(const weir_schema *s) {
    weir_schema c = {0};
    for (size_t i = 0; i < s->len; i++)
        schema_push(&c, s->fields[i].name, strlen(s->fields[i].name), s->fields[i].type, s->fields[i].nullable);
    return c;
}

int weir_schema_add(weir_schema *s, const char *name, weir_type type, bool nullable, weir_error *err) {
    if (weir_schema_index(s, name) >= 0)
        return weir_fail(err, "cannot add column `%s`: the input already has a column of that name", name);
    schema_push(s, name, strlen(name), type, nullable);
    return 0;
}

void weir_schema_free(weir_schema *s) {
    for (size_t i = 0; i < s->len; i++) free(s->fields[i].name);
    free(s->fields);
    memset(s, 0, sizeof *s);
}

/* Used by the glue: appends a field whose name is not NUL-terminated. */
void weir__schema_push(weir_schema *s, const char *name, size_t name_len, weir_type type, bool nullable) {
    schema_push(s, name, name_len, type, nullable);
}

/* ---------------------------------------------------------------- batches */

int64_t weir_batch_index(const weir_batch *b, const char *name) {
    for (size_t i = 0; i < b->num_columns; i++)
        if (!strcmp(b->columns[i].name, name)) return (int64_t)i;
    return -1;
}

static char *batch_names(const weir_batch *b) {
    if (!b->num_columns) return xstrndup("(none)", 6);
    sbuf s = {0};
    for (size_t i = 0; i < b->num_columns; i++) {
        if (i) sb_str(&s, ", ");
        sb_str(&s, b->columns[i].name);
    }
    return sb_take(&s);
}

const weir_column *weir_batch_column(const weir_batch *b, const char *name, weir_type type, weir_error *err) {
    int64_t i = weir_batch_index(b, name);
    if (i < 0) {
        char *names = batch_names(b);
        weir_fail(err, "input has no column `%s`; its columns are: %s", name, names);
        free(names);
        return NULL;
    }
    const weir_column *c = &b->columns[i];
    if (c->type != type) {
        weir_fail(err, "column `%s` is %s, not %s", name, weir_type_name(c->type), weir_type_name(type));
        return NULL;
    }
    return c;
}

/* ---------------------------------------------------------------- builders */

static size_t width(weir_type t) {
    switch (t) {
    case WEIR_BOOLEAN: return 1;
    case WEIR_INT32: return 4;
    case WEIR_INT64:
    case WEIR_TIMESTAMP:
    case WEIR_FLOAT64: return 8;
    default: return 0; /* var-len */
    }
}

void weir_builder_init(weir_builder *b, weir_type type, size_t capacity) {
    memset(b, 0, sizeof *b);
    b->type = type;
    b->cap = capacity;
    size_t w = width(type);
    if (w) {
        b->values = xrealloc(NULL, capacity * w);
    } else {
        b->offsets = xrealloc(NULL, (capacity + 1) * sizeof(uint32_t));
        b->offsets[0] = 0;
    }
}

void weir_builder_free(weir_builder *b) {
    free(b->values);
    free(b->validity);
    free(b->offsets);
    free(b->data);
    memset(b, 0, sizeof *b);
}

static void grow(weir_builder *b, size_t need) {
    if (need <= b->cap) return;
    size_t cap = b->cap * 2 > need ? b->cap * 2 : need;
    if (cap < 16) cap = 16;
    size_t w = width(b->type);
    if (w) b->values = xrealloc(b->values, cap * w);
    else b->offsets = xrealloc(b->offsets, (cap + 1) * sizeof(uint32_t));
    if (b->validity) b->validity = xrealloc(b->validity, cap);
    b->cap = cap;
}

void *weir_builder_resize(weir_builder *b, size_t len) {
    size_t w = width(b->type);
    if (!w) return NULL;
    grow(b, len);
    if (len > b->len) {
        memset((char *)b->values + b->len * w, 0, (len - b->len) * w);
        if (b->validity) memset(b->validity + b->len, 1, len - b->len);
    }
    b->len = len;
    return b->values;
}

void weir_builder_set_validity(weir_builder *b, const bool *validity) {
    free(b->validity);
    b->validity = NULL;
    if (validity) {
        b->validity = xrealloc(NULL, b->cap ? b->cap : 1);
        memcpy(b->validity, validity, b->len);
    }
}

static void set_valid(weir_builder *b, bool valid) {
    if (!valid && !b->validity) {
        b->validity = xrealloc(NULL, b->cap ? b->cap : 1);
        memset(b->validity, 1, b->len);
    }
    if (b->validity) b->validity[b->len] = valid;
}

#define PUSH(fn, ctype)                                                                                                \
    void fn(weir_builder *b, ctype v) {                                                                                \
        grow(b, b->len + 1);                                                                                           \
        set_valid(b, true);                                                                                            \
        ((ctype *)b->values)[b->len++] = v;                                                                            \
    }
PUSH(weir_push_bool, bool)
PUSH(weir_push_i32, int32_t)
PUSH(weir_push_i64, int64_t)
PUSH(weir_push_f64, double)

void weir_push_bytes(weir_builder *b, const void *data, size_t len) {
    grow(b, b->len + 1);
    set_valid(b, true);
    if (b->data_len + len > b->data_cap) {
        b->data_cap = (b->data_len + len) * 2;
        if (b->data_cap < 64) b->data_cap = 64;
        b->data = xrealloc(b->data, b->data_cap);
    }
    if (len) memcpy(b->data + b->data_len, data, len);
    b->data_len += len;
    b->offsets[++b->len] = (uint32_t)b->data_len;
}

void weir_push_str(weir_builder *b, const char *s) { weir_push_bytes(b, s, strlen(s)); }

void weir_push_null(weir_builder *b) {
    grow(b, b->len + 1);
    set_valid(b, false);
    size_t w = width(b->type);
    if (w) {
        memset((char *)b->values + b->len * w, 0, w);
        b->len++;
    } else {
        b->offsets[b->len + 1] = (uint32_t)b->data_len;
        b->len++;
    }
}

int weir_push_from(weir_builder *b, const weir_column *c, size_t row, weir_error *err) {
    if (b->type != c->type)
        return weir_fail(err, "column `%s` is %s, not %s", c->name, weir_type_name(c->type), weir_type_name(b->type));
    if (weir_is_null(c, row)) {
        weir_push_null(b);
        return 0;
    }
    size_t w = width(c->type);
    if (w) {
        grow(b, b->len + 1);
        set_valid(b, true);
        memcpy((char *)b->values + b->len * w, (const char *)c->values + row * w, w);
        b->len++;
    } else {
        size_t n;
        const uint8_t *v = weir_bytes(c, row, &n);
        weir_push_bytes(b, v, n);
    }
    return 0;
}

/* A column view of a builder (the builder keeps the memory). */
static weir_column builder_view(const char *name, const weir_builder *b) {
    return (weir_column){name, b->type, b->len, b->values, b->offsets, b->data, b->validity};
}

/* ---------------------------------------------------------------- owned batches */

void weir_owned_init(weir_owned_batch *o, size_t num_rows) {
    memset(o, 0, sizeof *o);
    o->batch.num_rows = num_rows;
}

int weir_owned_add(weir_owned_batch *o, const char *name, weir_builder *b, weir_error *err) {
    if (b->len != o->batch.num_rows)
        return weir_fail(err, "column `%s` has %zu values for %zu rows", name, b->len, o->batch.num_rows);
    if (weir_batch_index(&o->batch, name) >= 0) return weir_fail(err, "column `%s` is given twice", name);
    if (o->batch.num_columns == o->cap) {
        o->cap = o->cap ? o->cap * 2 : 8;
        o->batch.columns = xrealloc(o->batch.columns, o->cap * sizeof(weir_column));
    }
    o->batch.columns[o->batch.num_columns++] = builder_view(xstrndup(name, strlen(name)), b);
    memset(b, 0, sizeof *b);
    return 0;
}

void weir_batch_take(const weir_batch *in, const uint32_t *rows, size_t n, weir_owned_batch *out) {
    weir_owned_init(out, n);
    for (size_t c = 0; c < in->num_columns; c++) {
        const weir_column *col = &in->columns[c];
        weir_builder b;
        weir_builder_init(&b, col->type, n);
        size_t w = width(col->type);
        if (w && !col->validity) {
            /* The common case, without per-value checks. */
            char *dst = weir_builder_resize(&b, n);
            for (size_t i = 0; i < n; i++) memcpy(dst + i * w, (const char *)col->values + (size_t)rows[i] * w, w);
        } else {
            for (size_t i = 0; i < n; i++) weir_push_from(&b, col, rows[i], NULL);
        }
        weir_owned_add(out, col->name, &b, NULL);
    }
}

void weir_owned_free(weir_owned_batch *o) {
    for (size_t i = 0; i < o->batch.num_columns; i++) {
        weir_column *c = &o->batch.columns[i];
        free((void *)c->name);
        free((void *)c->values);
        free((void *)c->offsets);
        free((void *)c->data);
        free((void *)c->validity);
    }
    free(o->batch.columns);
    memset(o, 0, sizeof *o);
}

/* ---------------------------------------------------------------- mapper output */

static bool output_has(const weir_output *o, const char *name) {
    for (size_t i = 0; i < o->len; i++)
        if (!strcmp(o->columns[i].name, name)) return true;
    return false;
}

static weir_out_column *output_push(weir_output *o, const char *name) {
    if (o->len == o->cap) {
        o->cap = o->cap ? o->cap * 2 : 16;
        o->columns = xrealloc(o->columns, o->cap * sizeof(weir_out_column));
    }
    weir_out_column *c = &o->columns[o->len++];
    memset(c, 0, sizeof *c);
    c->name = xstrndup(name, strlen(name));
    c->input = -1;
    return c;
}

void weir_output_init(weir_output *o, const weir_batch *input) {
    memset(o, 0, sizeof *o);
    o->input = input;
    o->num_rows = input->num_rows;
}

void weir_output_pass_through_all(weir_output *o) {
    for (size_t i = 0; i < o->input->num_columns; i++)
        if (!output_has(o, o->input->columns[i].name)) output_push(o, o->input->columns[i].name)->input = (int64_t)i;
}

int weir_output_pass_through(weir_output *o, const char *name, weir_error *err) {
    int64_t i = weir_batch_index(o->input, name);
    if (i < 0) {
        char *names = batch_names(o->input);
        weir_fail(err, "pass_through(\"%s\"): the input has no such column; its columns are: %s", name, names);
        free(names);
        return -1;
    }
    if (output_has(o, name)) return weir_fail(err, "output column `%s` is given twice", name);
    output_push(o, name)->input = i;
    return 0;
}

int weir_output_column(weir_output *o, const char *name, weir_builder *b, weir_error *err) {
    if (b->len != o->num_rows)
        return weir_fail(err, "output column `%s` has %zu values for %zu rows (one value per output row is needed)", name,
                         b->len, o->num_rows);
    if (output_has(o, name)) return weir_fail(err, "output column `%s` is given twice", name);
    output_push(o, name)->data = *b;
    memset(b, 0, sizeof *b);
    return 0;
}

int weir_output_select(weir_output *o, const uint32_t *rows, size_t n, weir_error *err) {
    for (size_t i = 0; i < n; i++)
        if (rows[i] >= o->input->num_rows)
            return weir_fail(err, "weir_output_select: row %u is out of range (the input has %zu rows)", rows[i],
                             o->input->num_rows);
    free(o->rows);
    o->rows = xrealloc(NULL, n * sizeof(uint32_t));
    if (n) memcpy(o->rows, rows, n * sizeof(uint32_t));
    o->num_rows = n;
    return 0;
}

void weir_output_free(weir_output *o) {
    for (size_t i = 0; i < o->len; i++) {
        free(o->columns[i].name);
        weir_builder_free(&o->columns[i].data);
    }
    free(o->columns);
    free(o->rows);
    o->columns = NULL;
    o->rows = NULL;
    o->len = o->cap = 0;
}

/* ---------------------------------------------------------------- stateful */

const uint8_t *weir_state_get(const weir_group_state *s, size_t *len) {
    if (!s->exists) {
        *len = 0;
        return NULL;
    }
    if (s->change == 1) {
        *len = s->len;
        return s->bytes ? s->bytes : (const uint8_t *)"";
    }
    *len = s->stored_len;
    return s->stored ? s->stored : (const uint8_t *)"";
}

void weir_state_update(weir_group_state *s, const void *bytes, size_t len) {
    s->bytes = xrealloc(s->bytes, len);
    if (len) memcpy(s->bytes, bytes, len);
    s->len = len;
    s->exists = true;
    s->change = 1;
}

void weir_state_remove(weir_group_state *s) {
    s->exists = false;
    s->change = 2;
}

void weir_state_set_timeout_timestamp(weir_group_state *s, int64_t micros) {
    s->timeout = WEIR_TIMEOUT_EVENT_TIME;
    s->timeout_value = micros;
}

void weir_state_set_timeout_duration_ms(weir_group_state *s, uint64_t ms) {
    s->timeout = WEIR_TIMEOUT_PROCESSING_MS;
    s->timeout_value = (int64_t)ms;
}

void weir_state_set_ttl_ms(weir_group_state *s, uint64_t ms) {
    s->has_ttl = true;
    s->ttl_ms = ms;
}

static void timers_remove(weir_timer *ts, size_t *n, weir_timer t) {
    size_t k = 0;
    for (size_t i = 0; i < *n; i++)
        if (!(ts[i].domain == t.domain && ts[i].at == t.at)) ts[k++] = ts[i];
    *n = k;
}

static void timers_add(weir_timer **ts, size_t *n, weir_timer t) {
    for (size_t i = 0; i < *n; i++)
        if ((*ts)[i].domain == t.domain && (*ts)[i].at == t.at) return;
    *ts = xrealloc(*ts, (*n + 1) * sizeof(weir_timer));
    (*ts)[(*n)++] = t;
}

void weir_state_register_timer(weir_group_state *s, weir_timer t) {
    timers_remove(s->del, &s->num_del, t);
    timers_add(&s->reg, &s->num_reg, t);
}

void weir_state_delete_timer(weir_group_state *s, weir_timer t) {
    timers_remove(s->reg, &s->num_reg, t);
    timers_add(&s->del, &s->num_del, t);
}

void weir_group_state_free(weir_group_state *s) {
    free(s->bytes);
    free(s->reg);
    free(s->del);
    memset(s, 0, sizeof *s);
}

uint8_t *weir_put_f64(uint8_t *p, double v) {
    uint64_t bits;
    memcpy(&bits, &v, 8);
    return weir_put_u64(p, bits);
}

uint64_t weir_get_u64(weir_reader *r) {
    if (r->left < 8) {
        r->short_read = true;
        r->left = 0;
        return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)r->p[i] << (8 * i);
    r->p += 8;
    r->left -= 8;
    return v;
}

int64_t weir_get_i64(weir_reader *r) { return (int64_t)weir_get_u64(r); }

double weir_get_f64(weir_reader *r) {
    uint64_t bits = weir_get_u64(r);
    double v;
    memcpy(&v, &bits, 8);
    return v;
}

/* Output rows. */

static void rows_fail(weir_rows *o, size_t col, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void rows_fail(weir_rows *o, size_t col, const char *fmt, ...) {
    if (o->error) return;
    sbuf b = {0};
    const char *name = col < o->schema.len ? o->schema.fields[col].name : "";
    sb_fmt(&b, "output row %zu, column %zu (`%s`): ", o->num_rows, col, name);
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    sb_str(&b, tmp);
    o->error = sb_take(&b);
}

void weir__rows_init(weir_rows *o, const weir_schema *schema) {
    memset(o, 0, sizeof *o);
    o->schema = weir_schema_copy(schema);
    o->columns = xrealloc(NULL, (schema->len ? schema->len : 1) * sizeof(weir_builder));
    for (size_t i = 0; i < schema->len; i++) weir_builder_init(&o->columns[i], schema->fields[i].type, 16);
}

void weir_rows_free(weir_rows *o) {
    for (size_t i = 0; i < o->schema.len; i++) weir_builder_free(&o->columns[i]);
    free(o->columns);
    free(o->error);
    weir_schema_free(&o->schema);
    memset(o, 0, sizeof *o);
}

/* The column the next value goes to, or NULL (a recorded mistake) when the row is full. */
static weir_builder *rows_next(weir_rows *o, weir_type wrote, size_t *col) {
    *col = o->next++;
    size_t n = o->schema.len;
    if (*col >= n) {
        rows_fail(o, *col, "more values than the %zu output columns", n);
        return NULL;
    }
    weir_builder *b = &o->columns[*col];
    if (b->type != wrote) {
        rows_fail(o, *col, "a %s value was written into a %s column", weir_type_name(wrote), weir_type_name(b->type));
        weir_push_null(b);
        return NULL;
    }
    return b;
}

static void rows_end_value(weir_rows *o) {
    if (o->next == o->schema.len) {
        o->num_rows++;
        o->next = 0;
    }
}

#define ROW_VALUE(fn, ctype, wtype, push)                                                                              \
    void fn(weir_rows *o, ctype v) {                                                                                   \
        size_t col;                                                                                                    \
        weir_builder *b = rows_next(o, wtype, &col);                                                                   \
        if (b) push(b, v);                                                                                             \
        rows_end_value(o);                                                                                             \
    }
ROW_VALUE(weir_row_bool, bool, WEIR_BOOLEAN, weir_push_bool)
ROW_VALUE(weir_row_i32, int32_t, WEIR_INT32, weir_push_i32)
ROW_VALUE(weir_row_i64, int64_t, WEIR_INT64, weir_push_i64)
ROW_VALUE(weir_row_timestamp, int64_t, WEIR_TIMESTAMP, weir_push_i64)
ROW_VALUE(weir_row_f64, double, WEIR_FLOAT64, weir_push_f64)

void weir_row_str(weir_rows *o, const char *s, size_t len) {
    size_t col;
    weir_builder *b = rows_next(o, WEIR_UTF8, &col);
    if (b) weir_push_bytes(b, s, len);
    rows_end_value(o);
}

void weir_row_binary(weir_rows *o, const void *data, size_t len) {
    size_t col;
    weir_builder *b = rows_next(o, WEIR_BINARY, &col);
    if (b) weir_push_bytes(b, data, len);
    rows_end_value(o);
}

void weir_row_null(weir_rows *o) {
    size_t col = o->next++;
    if (col >= o->schema.len) {
        rows_fail(o, col, "more values than the %zu output columns", o->schema.len);
    } else {
        if (!o->schema.fields[col].nullable) rows_fail(o, col, "a null was written into a column that is not nullable");
        weir_push_null(&o->columns[col]);
    }
    rows_end_value(o);
}

void weir_row_keys(weir_rows *o, const weir_group *g) {
    for (size_t k = 0; k < g->keys->num_columns; k++) {
        const weir_column *c = &g->keys->columns[k];
        size_t col = o->next++;
        if (col >= o->schema.len) {
            rows_fail(o, col, "more values than the %zu output columns", o->schema.len);
        } else if (o->columns[col].type != c->type) {
            rows_fail(o, col, "the key column `%s` is %s, but this output column is %s", c->name, weir_type_name(c->type),
                      weir_type_name(o->columns[col].type));
            weir_push_null(&o->columns[col]);
        } else {
            if (!o->schema.fields[col].nullable && weir_is_null(c, g->index))
                rows_fail(o, col, "the key column `%s` is null but this column is not nullable", c->name);
            weir_push_from(&o->columns[col], c, g->index, NULL);
        }
        rows_end_value(o);
    }
}

char *weir_group_key(const weir_group *g) {
    sbuf b = {0};
    size_t r = g->index;
    for (size_t i = 0; i < g->keys->num_columns; i++) {
        const weir_column *c = &g->keys->columns[i];
        if (i) sb_str(&b, ", ");
        sb_str(&b, c->name);
        sb_str(&b, "=");
        if (weir_is_null(c, r)) {
            sb_str(&b, "null");
            continue;
        }
        switch (c->type) {
        case WEIR_BOOLEAN: sb_str(&b, weir_bools(c)[r] ? "true" : "false"); break;
        case WEIR_INT32: sb_fmt(&b, "%d", (int)weir_i32s(c)[r]); break;
        case WEIR_INT64:
        case WEIR_TIMESTAMP: sb_fmt(&b, "%lld", (long long)weir_i64s(c)[r]); break;
        case WEIR_FLOAT64: sb_fmt(&b, "%.17g", weir_f64s(c)[r]); break;
        case WEIR_UTF8: {
            size_t n;
            const uint8_t *v = weir_bytes(c, r, &n);
            sb_str(&b, "\"");
            for (size_t j = 0; j < n; j++) {
                if (v[j] == '"' || v[j] == '\\') sb_str(&b, "\\");
                sb_add(&b, (const char *)v + j, 1);
            }
            sb_str(&b, "\"");
            break;
        }
        case WEIR_BINARY: {
            size_t n;
            const uint8_t *v = weir_bytes(c, r, &n);
            sb_str(&b, "0x");
            for (size_t j = 0; j < n; j++) sb_fmt(&b, "%02x", v[j]);
            break;
        }
        }
    }
    return sb_take(&b);
}

/* A view of rows [start, end) of `b` into `cols` (num_columns entries). */
static void slice(const weir_batch *b, size_t start, size_t end, weir_column *cols, weir_batch *out) {
    for (size_t i = 0; i < b->num_columns; i++) {
        const weir_column *c = &b->columns[i];
        size_t w = width(c->type);
        cols[i] = *c;
        cols[i].len = end - start;
        if (w) cols[i].values = (const char *)c->values + start * w;
        else cols[i].offsets = c->offsets + start;
        if (c->validity) cols[i].validity = c->validity + start;
    }
    out->num_rows = end - start;
    out->num_columns = b->num_columns;
    out->columns = cols;
}

/* Weak: a plugin of another world (or a native test of one) links without it. */
extern int weir_process_group(const weir_group *g, weir_group_state *state, weir_rows *out, weir_error *err)
    __attribute__((weak));

int weir_run_groups(const weir_batch_time *time, const weir_groups *in, const weir_schema *schema,
                    weir_group_state *results, weir_rows *out, weir_error *err) {
    weir__rows_init(out, schema);
    if (!weir_process_group) return weir_fail(err, "the plugin defines no weir_process_group (is it a stateful plugin?)");
    weir_column *cols = xrealloc(NULL, (in->rows->num_columns ? in->rows->num_columns : 1) * sizeof(weir_column));
    int rc = 0;
    size_t g = 0;
    for (; g < in->num_groups; g++) {
        size_t start = in->row_offsets[g], end = in->row_offsets[g + 1];
        if (start > end || end > in->rows->num_rows) {
            rc = weir_fail(err, "the host sent malformed groups: row offsets %zu..%zu of group %zu are out of range", start,
                           end, g);
            break;
        }
        weir_group grp = {in->keys, g, {0}, start, in->timed_out ? in->timed_out[g] : false, NULL, 0, time};
        slice(in->rows, start, end, cols, &grp.rows);
        if (in->expired_timers) {
            grp.expired_timers = in->expired_timers[g];
            grp.num_expired_timers = in->num_expired_timers[g];
        }
        weir_group_state *s = &results[g];
        memset(s, 0, sizeof *s);
        if (in->states && in->states[g]) {
            s->stored = in->states[g];
            s->stored_len = in->state_lens[g];
            s->existed = s->exists = true;
        }
        s->timed_out = grp.timed_out;
        s->timeout = WEIR_TIMEOUT_CLEAR;
        weir_error e = {NULL, -1};
        int r = weir_process_group(&grp, s, out, &e);
        if (r == 0 && out->next != 0) {
            rows_fail(out, out->next, "the row ended after %zu of the %zu columns", out->next, out->schema.len);
        }
        if (r != 0 || out->error) {
            char *key = weir_group_key(&grp);
            if (r != 0) {
                int64_t row = e.row >= 0 ? (int64_t)start + e.row : -1;
                weir_fail_at(err, row, "key %s: %s", key, e.message ? e.message : "(no message)");
            } else {
                weir_fail(err, "key %s: %s", key, out->error);
            }
            free(key);
            weir_error_clear(&e);
            rc = -1;
            g++;
            break;
        }
        /* What the host is told: an update of a state that is gone is no change; removing a
         * state that never existed is none either. */
        if (s->change == 2 && !s->existed) s->change = 0;
    }
    if (rc != 0) {
        for (size_t i = 0; i < g; i++) weir_group_state_free(&results[i]);
    }
    free(cols);
    return rc;
}

/* Defaults a plugin may override. */
__attribute__((weak)) uint32_t weir_state_version(void) { return 1; }

__attribute__((weak)) int weir_migrate_state(uint32_t from_version, const uint8_t *state, size_t len, uint8_t **out,
                                             size_t *out_len, weir_error *err) {
    (void)state, (void)len, (void)out, (void)out_len;
    return weir_fail(err, "this plugin writes state version %u and cannot read version %u (define weir_migrate_state)",
                     weir_state_version(), from_version);
}
