/* weir_wasm.c — the glue between the bindings `wit-bindgen c` generates for a plugin's world and
 * the plain-C SDK (weir.h). `weir plugin build` compiles it with -DWEIR_WORLD_MAPPER,
 * -DWEIR_WORLD_STATEFUL or -DWEIR_WORLD_BATCH_SINK and the bindings' directory on the include
 * path; it is never part of a native build.
 *
 * Ownership, as the bindings define it: the arguments of an export belong to the callee (freed
 * here once the call is done); what an export returns is freed by the bindings' post-return
 * with free(), list by list, but only lists of length > 0, so empty lists are returned as NULL.
 * Input batches reach the plugin as views of the received lists: no copy. */
#include "weir.h"

#include <stdlib.h>
#include <string.h>

#if defined(WEIR_WORLD_MAPPER)
#include "mapper.h"
typedef mapper_string_t wstring;
#define wstring_free mapper_string_free
#elif defined(WEIR_WORLD_STATEFUL)
#include "stateful.h"
typedef stateful_string_t wstring;
#define wstring_free stateful_string_free
#elif defined(WEIR_WORLD_BATCH_SINK)
#include "batch_sink.h"
typedef batch_sink_string_t wstring;
#define wstring_free batch_sink_string_free
#else
#error "weir_wasm.c needs WEIR_WORLD_MAPPER, WEIR_WORLD_STATEFUL or WEIR_WORLD_BATCH_SINK (weir plugin build sets it)"
#endif

void weir__schema_push(weir_schema *s, const char *name, size_t name_len, weir_type type, bool nullable);

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) abort();
    return p;
}

static char *dup_n(const uint8_t *s, size_t n) {
    char *d = xmalloc(n + 1);
    if (n) memcpy(d, s, n);
    d[n] = 0;
    return d;
}

/* A returned list: the buffer as is, or NULL (freed here) when empty. */
#define RETURN_LIST(list, buf, n)                                                                                      \
    do {                                                                                                               \
        (list).len = (n);                                                                                              \
        if ((n) == 0) {                                                                                                \
            free(buf);                                                                                                 \
            (list).ptr = NULL;                                                                                         \
        } else {                                                                                                       \
            (list).ptr = (void *)(buf);                                                                                \
        }                                                                                                              \
    } while (0)

/* A returned string (copied). */
static void string_out(wstring *s, const char *msg) {
    size_t n = msg ? strlen(msg) : 0;
    s->len = n;
    s->ptr = n ? (uint8_t *)dup_n((const uint8_t *)msg, n) : NULL;
}

static void error_string(wstring *out, weir_error *e) {
    string_out(out, e->message ? e->message : "the plugin failed without a message (weir_fail was not called)");
    weir_error_clear(e);
}

static int config_init(wstring *raw, weir_error *e) {
    weir_config c;
    int rc = weir_config_parse((const char *)raw->ptr, raw->len, &c, e);
    wstring_free(raw);
    if (rc) return rc;
    rc = weir_init(&c, e);
    weir_config_free(&c);
    return rc;
}

/* ---------------------------------------------------------------- batches and schemas */

/* A view of a received batch (names copied, values not). */
static int batch_from_wit(const weir_plugin_types_batch_t *in, weir_batch *out, weir_error *e) {
    size_t n = in->num_rows;
    out->num_rows = n;
    out->num_columns = in->columns.len;
    out->columns = xmalloc(in->columns.len * sizeof(weir_column));
    for (size_t i = 0; i < in->columns.len; i++) {
        const weir_plugin_types_column_t *c = &in->columns.ptr[i];
        weir_column *o = &out->columns[i];
        memset(o, 0, sizeof *o);
        o->name = dup_n(c->name.ptr, c->name.len);
        o->type = (weir_type)c->data.values.tag;
        o->len = n;
        size_t got;
        switch (c->data.values.tag) {
        case WEIR_PLUGIN_TYPES_COLUMN_VALUES_UTF8:
        case WEIR_PLUGIN_TYPES_COLUMN_VALUES_BINARY: {
            const weir_plugin_types_var_len_t *v = c->data.values.tag == WEIR_PLUGIN_TYPES_COLUMN_VALUES_UTF8
                                                       ? &c->data.values.val.utf8
                                                       : &c->data.values.val.binary;
            o->offsets = v->offsets.ptr;
            o->data = v->data.ptr;
            got = v->offsets.len ? v->offsets.len - 1 : 0;
            if (n && (v->offsets.len != n + 1 || v->offsets.ptr[n] > v->data.len)) got = (size_t)-1;
            break;
        }
        case WEIR_PLUGIN_TYPES_COLUMN_VALUES_BOOLEAN:
            o->values = c->data.values.val.boolean.ptr, got = c->data.values.val.boolean.len;
            break;
        case WEIR_PLUGIN_TYPES_COLUMN_VALUES_INT32:
            o->values = c->data.values.val.int32.ptr, got = c->data.values.val.int32.len;
            break;
        case WEIR_PLUGIN_TYPES_COLUMN_VALUES_INT64:
            o->values = c->data.values.val.int64.ptr, got = c->data.values.val.int64.len;
            break;
        case WEIR_PLUGIN_TYPES_COLUMN_VALUES_FLOAT64:
            o->values = c->data.values.val.float64.ptr, got = c->data.values.val.float64.len;
            break;
        default:
            o->values = c->data.values.val.timestamp.ptr, got = c->data.values.val.timestamp.len;
            break;
        }
        if (c->data.validity.is_some) {
            o->validity = c->data.validity.val.ptr;
            if (c->data.validity.val.len != n) got = (size_t)-1;
        }
        if (got != n) {
            out->num_columns = i + 1;
            return weir_fail(e, "the host sent malformed data: column `%s` does not have %zu values", o->name, n);
        }
    }
    return 0;
}

static void batch_view_free(weir_batch *b) {
    for (size_t i = 0; i < b->num_columns; i++) free((void *)b->columns[i].name);
    free(b->columns);
    memset(b, 0, sizeof *b);
}

__attribute__((unused)) static void schema_from_wit(const weir_plugin_types_schema_t *in, weir_schema *out) {
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < in->len; i++)
        weir__schema_push(out, (const char *)in->ptr[i].name.ptr, in->ptr[i].name.len, (weir_type)in->ptr[i].data_type,
                          in->ptr[i].nullable);
}

/* Moves `s` into a returned schema. */
__attribute__((unused)) static void schema_to_wit(weir_schema *s, weir_plugin_types_schema_t *out) {
    weir_plugin_types_field_t *f = xmalloc(s->len * sizeof *f);
    for (size_t i = 0; i < s->len; i++) {
        size_t n = strlen(s->fields[i].name);
        f[i].name.len = n;
        f[i].name.ptr = n ? (uint8_t *)s->fields[i].name : NULL;
        if (!n) free(s->fields[i].name);
        f[i].data_type = (weir_plugin_types_data_type_t)s->fields[i].type;
        f[i].nullable = s->fields[i].nullable;
    }
    RETURN_LIST(*out, f, s->len);
    free(s->fields);
    memset(s, 0, sizeof *s);
}

/* Moves a builder's buffers into returned column data. */
__attribute__((unused)) static void column_to_wit(weir_builder *b, weir_plugin_types_column_data_t *d) {
    memset(d, 0, sizeof *d);
    d->values.tag = (uint8_t)b->type;
    size_t n = b->len;
    switch (b->type) {
    case WEIR_UTF8:
    case WEIR_BINARY: {
        weir_plugin_types_var_len_t *v = b->type == WEIR_UTF8 ? &d->values.val.utf8 : &d->values.val.binary;
        RETURN_LIST(v->offsets, b->offsets, n + 1);
        RETURN_LIST(v->data, b->data, b->data_len);
        free(b->values);
        break;
    }
    case WEIR_BOOLEAN: RETURN_LIST(d->values.val.boolean, b->values, n); break;
    case WEIR_INT32: RETURN_LIST(d->values.val.int32, b->values, n); break;
    case WEIR_INT64: RETURN_LIST(d->values.val.int64, b->values, n); break;
    case WEIR_FLOAT64: RETURN_LIST(d->values.val.float64, b->values, n); break;
    case WEIR_TIMESTAMP: RETURN_LIST(d->values.val.timestamp, b->values, n); break;
    }
    if (b->type != WEIR_UTF8 && b->type != WEIR_BINARY) free(b->offsets), free(b->data);
    if (b->validity) {
        d->validity.is_some = true;
        RETURN_LIST(d->validity.val, b->validity, n);
    }
    memset(b, 0, sizeof *b);
}

#define BATCH_ERROR(err, e)                                                                                            \
    do {                                                                                                               \
        string_out(&(err)->message, (e).message ? (e).message : "the plugin failed without a message");               \
        (err)->row.is_some = (e).row >= 0;                                                                             \
        (err)->row.val = (e).row >= 0 ? (uint32_t)(e).row : 0;                                                         \
        weir_error_clear(&(e));                                                                                        \
    } while (0)

/* ---------------------------------------------------------------- mapper */
#if defined(WEIR_WORLD_MAPPER)

bool exports_mapper_init(mapper_string_t *config, mapper_string_t *err) {
    weir_error e = {NULL, -1};
    if (config_init(config, &e)) {
        error_string(err, &e);
        return false;
    }
    return true;
}

bool exports_mapper_output_schema(mapper_schema_t *input, mapper_schema_t *ret, mapper_string_t *err) {
    weir_error e = {NULL, -1};
    weir_schema in, out = {0};
    schema_from_wit(input, &in);
    mapper_schema_free(input);
    int rc = weir_output_schema(&in, &out, &e);
    weir_schema_free(&in);
    if (rc) {
        weir_schema_free(&out);
        error_string(err, &e);
        return false;
    }
    schema_to_wit(&out, ret);
    return true;
}

bool exports_mapper_map_batch(mapper_batch_t *input, mapper_output_batch_t *ret, mapper_batch_error_t *err) {
    weir_error e = {NULL, -1};
    weir_batch in;
    weir_output out;
    int rc = batch_from_wit(input, &in, &e);
    if (rc == 0) {
        weir_output_init(&out, &in);
        rc = weir_map_batch(&in, &out, &e);
        if (rc) weir_output_free(&out);
    }
    if (rc) {
        batch_view_free(&in);
        mapper_batch_free(input);
        BATCH_ERROR(err, e);
        return false;
    }
    ret->num_rows = (uint32_t)out.num_rows;
    ret->rows.is_some = out.rows != NULL;
    if (out.rows) RETURN_LIST(ret->rows.val, out.rows, out.num_rows);
    else ret->rows.val.ptr = NULL, ret->rows.val.len = 0;
    weir_plugin_types_output_column_t *cols = xmalloc(out.len * sizeof *cols);
    for (size_t i = 0; i < out.len; i++) {
        weir_out_column *c = &out.columns[i];
        size_t n = strlen(c->name);
        cols[i].name.len = n;
        cols[i].name.ptr = n ? (uint8_t *)c->name : NULL;
        if (!n) free(c->name);
        if (c->input >= 0) {
            cols[i].data.tag = WEIR_PLUGIN_TYPES_OUTPUT_DATA_INPUT;
            cols[i].data.val.input = (uint32_t)c->input;
        } else {
            cols[i].data.tag = WEIR_PLUGIN_TYPES_OUTPUT_DATA_COMPUTED;
            column_to_wit(&c->data, &cols[i].data.val.computed);
        }
    }
    RETURN_LIST(ret->columns, cols, out.len);
    free(out.columns);
    batch_view_free(&in);
    mapper_batch_free(input);
    return true;
}

#endif

/* ---------------------------------------------------------------- stateful */
#if defined(WEIR_WORLD_STATEFUL)

/* What `output-schema` returned, between calls. */
static weir_schema declared;
static bool have_declared;

bool exports_stateful_init(stateful_string_t *config, stateful_string_t *err) {
    weir_error e = {NULL, -1};
    if (config_init(config, &e)) {
        error_string(err, &e);
        return false;
    }
    return true;
}

static int declare(const weir_schema *key, const weir_schema *input, weir_error *e) {
    weir_schema out = {0};
    if (weir_stateful_output_schema(key, input, &out, e)) {
        weir_schema_free(&out);
        return -1;
    }
    if (have_declared) weir_schema_free(&declared);
    declared = out;
    have_declared = true;
    return 0;
}

bool exports_stateful_output_schema(stateful_schema_t *key, stateful_schema_t *input, stateful_schema_t *ret,
                                    stateful_string_t *err) {
    weir_error e = {NULL, -1};
    weir_schema k, in;
    schema_from_wit(key, &k);
    schema_from_wit(input, &in);
    stateful_schema_free(key);
    stateful_schema_free(input);
    int rc = declare(&k, &in, &e);
    weir_schema_free(&k);
    weir_schema_free(&in);
    if (rc) {
        error_string(err, &e);
        return false;
    }
    weir_schema copy = weir_schema_copy(&declared);
    schema_to_wit(&copy, ret);
    return true;
}

uint32_t exports_stateful_state_version(void) { return weir_state_version(); }

bool exports_stateful_migrate_state(uint32_t from_version, stateful_list_u8_t *state, stateful_list_u8_t *ret,
                                    stateful_string_t *err) {
    weir_error e = {NULL, -1};
    uint8_t *out = NULL;
    size_t len = 0;
    int rc = weir_migrate_state(from_version, state->ptr, state->len, &out, &len, &e);
    stateful_list_u8_free(state);
    if (rc) {
        free(out);
        error_string(err, &e);
        return false;
    }
    RETURN_LIST(*ret, out, len);
    return true;
}

static weir_schema schema_of(const weir_batch *b) {
    weir_schema s = {0};
    for (size_t i = 0; i < b->num_columns; i++)
        weir__schema_push(&s, b->columns[i].name, strlen(b->columns[i].name), b->columns[i].type, true);
    return s;
}

static void timers_to_wit(weir_timer *t, size_t n, weir_plugin_stateful_types_list_timer_t *out) {
    weir_plugin_stateful_types_timer_t *w = xmalloc(n * sizeof *w);
    for (size_t i = 0; i < n; i++) {
        w[i].domain = (weir_plugin_stateful_types_time_domain_t)t[i].domain;
        w[i].at = t[i].at;
    }
    RETURN_LIST(*out, w, n);
}

bool exports_stateful_process_groups(stateful_batch_time_t *time, stateful_groups_t *input, stateful_stateful_output_t *ret,
                                     stateful_batch_error_t *err) {
    weir_error e = {NULL, -1};
    weir_batch keys = {0}, rows = {0};
    size_t ng = input->row_offsets.len ? input->row_offsets.len - 1 : 0;
    const uint8_t **states = xmalloc(ng * sizeof *states);
    size_t *lens = xmalloc(ng * sizeof *lens);
    const weir_timer **expired = xmalloc(ng * sizeof *expired);
    size_t *num_expired = xmalloc(ng * sizeof *num_expired);
    weir_timer *timers = NULL;
    weir_group_state *results = xmalloc(ng * sizeof *results);
    weir_rows out;
    bool have_out = false;
    int rc = batch_from_wit(&input->keys, &keys, &e);
    if (rc == 0) rc = batch_from_wit(&input->rows, &rows, &e);
    if (rc == 0 && (input->states.len != ng || input->timed_out.len != ng || input->expired_timers.len != ng ||
                    keys.num_rows != ng))
        rc = weir_fail(&e, "the host sent malformed groups: %zu groups but other lengths differ", ng);
    if (rc == 0) {
        size_t total = 0;
        for (size_t g = 0; g < ng; g++) total += input->expired_timers.ptr[g].len;
        timers = xmalloc(total * sizeof *timers);
        for (size_t g = 0, k = 0; g < ng; g++) {
            states[g] = input->states.ptr[g].is_some ? input->states.ptr[g].val.ptr : NULL;
            lens[g] = input->states.ptr[g].is_some ? input->states.ptr[g].val.len : 0;
            /* A stored state of 0 bytes is still a state. */
            if (input->states.ptr[g].is_some && !states[g]) states[g] = (const uint8_t *)"";
            expired[g] = timers + k;
            num_expired[g] = input->expired_timers.ptr[g].len;
            for (size_t i = 0; i < num_expired[g]; i++, k++) {
                timers[k].domain = (weir_time_domain)input->expired_timers.ptr[g].ptr[i].domain;
                timers[k].at = input->expired_timers.ptr[g].ptr[i].at;
            }
        }
        /* A fresh instance (after a trap) may be called without `output-schema`: ask the plugin
         * again, with the schemas the batches show (nullability unknown, so nullable). */
        if (!have_declared) {
            weir_schema k = schema_of(&keys), in = schema_of(&rows);
            rc = declare(&k, &in, &e);
            weir_schema_free(&k);
            weir_schema_free(&in);
        }
    }
    if (rc == 0) {
        weir_batch_time t = {time->batch_id, time->watermark.is_some, time->watermark.val, time->processing_time};
        weir_groups groups = {&keys,   &rows,          input->row_offsets.ptr, ng, states, lens, input->timed_out.ptr,
                              expired, num_expired};
        rc = weir_run_groups(&t, &groups, &declared, results, &out, &e);
        have_out = true;
    }
    if (rc == 0) {
        weir_plugin_stateful_types_group_result_t *r = xmalloc(ng * sizeof *r);
        for (size_t g = 0; g < ng; g++) {
            weir_group_state *s = &results[g];
            memset(&r[g], 0, sizeof r[g]);
            if (s->change == 1) {
                r[g].state.tag = WEIR_PLUGIN_STATEFUL_TYPES_STATE_UPDATE_UPDATE;
                RETURN_LIST(r[g].state.val.update, s->bytes, s->len);
                s->bytes = NULL;
            } else if (s->change == 2) {
                r[g].state.tag = WEIR_PLUGIN_STATEFUL_TYPES_STATE_UPDATE_REMOVE;
            } else {
                r[g].state.tag = WEIR_PLUGIN_STATEFUL_TYPES_STATE_UPDATE_KEEP;
            }
            r[g].timeout.tag = (uint8_t)s->timeout;
            if (s->timeout == WEIR_TIMEOUT_PROCESSING_MS) r[g].timeout.val.processing_time_ms = (uint64_t)s->timeout_value;
            if (s->timeout == WEIR_TIMEOUT_EVENT_TIME) r[g].timeout.val.event_time = s->timeout_value;
            r[g].ttl_ms.is_some = s->has_ttl;
            r[g].ttl_ms.val = s->ttl_ms;
            timers_to_wit(s->reg, s->num_reg, &r[g].register_timers);
            timers_to_wit(s->del, s->num_del, &r[g].delete_timers);
            weir_group_state_free(s);
        }
        RETURN_LIST(ret->results, r, ng);
        weir_plugin_types_column_t *cols = xmalloc(out.schema.len * sizeof *cols);
        for (size_t i = 0; i < out.schema.len; i++) {
            const char *name = out.schema.fields[i].name;
            size_t n = strlen(name);
            cols[i].name.len = n;
            cols[i].name.ptr = n ? (uint8_t *)dup_n((const uint8_t *)name, n) : NULL;
            column_to_wit(&out.columns[i], &cols[i].data);
        }
        ret->output.num_rows = (uint32_t)out.num_rows;
        RETURN_LIST(ret->output.columns, cols, out.schema.len);
    }
    if (have_out) weir_rows_free(&out);
    free(results);
    free(timers);
    free(states), free(lens), free(expired), free(num_expired);
    batch_view_free(&keys);
    batch_view_free(&rows);
    stateful_groups_free(input);
    if (rc) {
        BATCH_ERROR(err, e);
        return false;
    }
    return true;
}

#endif

/* ---------------------------------------------------------------- batch-sink */
#if defined(WEIR_WORLD_BATCH_SINK)

bool exports_batch_sink_init(batch_sink_string_t *config, batch_sink_string_t *err) {
    weir_error e = {NULL, -1};
    if (config_init(config, &e)) {
        error_string(err, &e);
        return false;
    }
    return true;
}

bool exports_batch_sink_write_batch(uint64_t batch_id, batch_sink_batch_t *data, batch_sink_string_t *err) {
    weir_error e = {NULL, -1};
    weir_batch b;
    int rc = batch_from_wit(data, &b, &e);
    if (rc == 0) rc = weir_write_batch(batch_id, &b, &e);
    batch_view_free(&b);
    batch_sink_batch_free(data);
    if (rc) {
        error_string(err, &e);
        return false;
    }
    return true;
}

/* The arguments of an import stay the caller's: the lists are lent, not moved. */
int weir_emit(const char *output, const weir_batch *b, weir_error *err) {
    batch_sink_string_t name = {(uint8_t *)output, strlen(output)};
    weir_plugin_types_column_t *cols = xmalloc(b->num_columns * sizeof *cols);
    for (size_t i = 0; i < b->num_columns; i++) {
        const weir_column *c = &b->columns[i];
        weir_plugin_types_column_t *w = &cols[i];
        memset(w, 0, sizeof *w);
        w->name.ptr = (uint8_t *)c->name;
        w->name.len = strlen(c->name);
        w->data.values.tag = (uint8_t)c->type;
        size_t n = b->num_rows;
        switch (c->type) {
        case WEIR_UTF8:
        case WEIR_BINARY: {
            weir_plugin_types_var_len_t *v = c->type == WEIR_UTF8 ? &w->data.values.val.utf8 : &w->data.values.val.binary;
            v->offsets.ptr = (uint32_t *)c->offsets;
            v->offsets.len = n + 1;
            v->data.ptr = (uint8_t *)c->data;
            v->data.len = c->offsets[n] - c->offsets[0];
            if (c->offsets[0] != 0) {
                /* A slice (a stateful group's rows): the host wants offsets from 0. */
                free(cols);
                return weir_fail(err, "weir_emit: column `%s` is a slice of another batch; copy it with weir_batch_take",
                                 c->name);
            }
            break;
        }
        case WEIR_BOOLEAN: w->data.values.val.boolean.ptr = (bool *)c->values, w->data.values.val.boolean.len = n; break;
        case WEIR_INT32: w->data.values.val.int32.ptr = (int32_t *)c->values, w->data.values.val.int32.len = n; break;
        case WEIR_INT64: w->data.values.val.int64.ptr = (int64_t *)c->values, w->data.values.val.int64.len = n; break;
        case WEIR_FLOAT64: w->data.values.val.float64.ptr = (double *)c->values, w->data.values.val.float64.len = n; break;
        case WEIR_TIMESTAMP:
            w->data.values.val.timestamp.ptr = (int64_t *)c->values, w->data.values.val.timestamp.len = n;
            break;
        }
        if (c->validity) {
            w->data.validity.is_some = true;
            w->data.validity.val.ptr = (bool *)c->validity;
            w->data.validity.val.len = n;
        }
    }
    weir_plugin_outputs_batch_t batch = {(uint32_t)b->num_rows, {cols, b->num_columns}};
    batch_sink_string_t e2 = {NULL, 0};
    bool ok = weir_plugin_outputs_emit(&name, &batch, &e2);
    free(cols);
    if (!ok) {
        weir_fail(err, "%.*s", (int)e2.len, (const char *)e2.ptr);
        batch_sink_string_free(&e2);
        return -1;
    }
    return 0;
}

#endif
