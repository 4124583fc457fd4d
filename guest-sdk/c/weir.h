/*
 * weir.h — the C SDK for weir plugins (docs/plugins-c.md).
 *
 * Plain C11 over plain C types: a plugin written against this header compiles natively (for its
 * own tests, with weir.c) and for Wasm (with weir_wasm.c, the glue to the bindings `wit-bindgen c`
 * generates from wit/weir.wit, which `weir plugin build` compiles in). A plugin names its world
 * with one line in plugin.c, before including this header:
 *
 *     #define WEIR_WORLD "stateful"      // "mapper" (the default), "stateful" or "batch-sink"
 *
 * and defines the functions of that world (below: "What a plugin defines").
 *
 * Conventions:
 *   - Functions that can fail return 0 on success and -1 on failure, after filling the
 *     `weir_error` they were given (`weir_fail` does both: `return weir_fail(err, "...")`).
 *   - Strings given to the SDK are NUL-terminated unless a length is passed with them. Column
 *     and field names the SDK hands out are NUL-terminated.
 *   - Input batches are views of memory the SDK owns for the duration of the call: do not free
 *     or keep pointers into them past the call.
 *   - Builders (`weir_builder`) own their memory until they are handed to an output, which then
 *     owns it; `weir_builder_free` frees a builder never handed over.
 */
#ifndef WEIR_H
#define WEIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- errors */

/* A failure: a message (malloc'd, owned by the error) and, when known, the input row at fault
 * (`row` >= 0), which lets the host send that record to the dead-letter output. */
typedef struct {
    char *message;
    int64_t row;
} weir_error;

/* Sets the message (printf-style) and row -1; returns -1. */
int weir_fail(weir_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Sets the message and the row at fault; returns -1. */
int weir_fail_at(weir_error *err, int64_t row, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Frees the message and resets the error. */
void weir_error_clear(weir_error *err);

/* ---------------------------------------------------------------- config */

/* The operator's `config` string, parsed as `key=value` pairs separated by `,` or newlines,
 * spaces around keys and values ignored, empty entries skipped (guest-sdk/src/config.rs). */
typedef struct {
    char *key;
    char *value;
} weir_pair;

typedef struct {
    char *raw; /* the string as the job file gave it (NUL-terminated) */
    size_t len;
    weir_pair *pairs;
} weir_config;

/* Fails naming the entry when an entry has no `=` or an empty key, or a key is given twice. */
int weir_config_parse(const char *raw, size_t raw_len, weir_config *out, weir_error *err);
void weir_config_free(weir_config *c);
/* The value of `key`, or NULL when absent. */
const char *weir_config_get(const weir_config *c, const char *key);
/* Fails ("config key `k` is required") when absent. */
int weir_config_require(const weir_config *c, const char *key, const char **out, weir_error *err);
/* `key` parsed as Rust parses it (`0.2`, `1e-3`, `-inf`), or `def` when absent. */
int weir_config_f64(const weir_config *c, const char *key, double def, double *out, weir_error *err);
int weir_config_i64(const weir_config *c, const char *key, int64_t def, int64_t *out, weir_error *err);
int weir_config_i32(const weir_config *c, const char *key, int32_t def, int32_t *out, weir_error *err);
/* `true` or `false`. */
int weir_config_bool(const weir_config *c, const char *key, bool def, bool *out, weir_error *err);
/* Fails naming the first key not among the `n` known ones, listing them. */
int weir_config_reject_unknown(const weir_config *c, const char *const *known, size_t n, weir_error *err);

/* ---------------------------------------------------------------- types and schemas */

/* The WIT `data-type`, in its order. */
typedef enum {
    WEIR_BOOLEAN = 0,
    WEIR_INT32 = 1,
    WEIR_INT64 = 2,
    WEIR_FLOAT64 = 3,
    WEIR_UTF8 = 4,
    WEIR_BINARY = 5,
    WEIR_TIMESTAMP = 6,
} weir_type;

/* "float64 (double)", "utf8 (string)", "boolean"...: as the Rust SDK prints types. */
const char *weir_type_name(weir_type t);

typedef struct {
    char *name;
    weir_type type;
    bool nullable;
} weir_field;

typedef struct {
    size_t len;
    size_t cap;
    weir_field *fields;
} weir_schema;

/* Fails "input has no column `x` (of type ...); its columns are: ..." or "input column `x` must
 * be T, but it is U". */
int weir_schema_require(const weir_schema *s, const char *name, weir_type type, weir_error *err);
/* Index of the field named `name`, or -1. */
int64_t weir_schema_index(const weir_schema *s, const char *name);
/* A deep copy (the usual start of an output schema). */
weir_schema weir_schema_copy(const weir_schema *s);
/* Appends a field; fails "cannot add column `x`: the input already has a column of that name". */
int weir_schema_add(weir_schema *s, const char *name, weir_type type, bool nullable, weir_error *err);
void weir_schema_free(weir_schema *s);

/* ---------------------------------------------------------------- batches (input, read-only) */

/* One column. Fixed-width values are in `values` (bool: one byte per value, 0 or 1; int32;
 * int64 for bigint and timestamp, microseconds since the epoch; double). Variable-length values
 * (utf8, binary) are Arrow-style: value i is data[offsets[i] .. offsets[i + 1]]. `validity` is
 * NULL when no value is null, else one entry per row, false where the value is null (the value
 * stored there is unspecified). */
typedef struct {
    const char *name;
    weir_type type;
    size_t len;
    const void *values;
    const uint32_t *offsets;
    const uint8_t *data;
    const bool *validity;
} weir_column;

typedef struct {
    size_t num_rows;
    size_t num_columns;
    weir_column *columns;
} weir_batch;

static inline bool weir_is_null(const weir_column *c, size_t i) { return c->validity && !c->validity[i]; }
static inline const double *weir_f64s(const weir_column *c) { return (const double *)c->values; }
static inline const int64_t *weir_i64s(const weir_column *c) { return (const int64_t *)c->values; }
static inline const int32_t *weir_i32s(const weir_column *c) { return (const int32_t *)c->values; }
static inline const bool *weir_bools(const weir_column *c) { return (const bool *)c->values; }
/* Value i of a utf8/binary column: its bytes (not NUL-terminated) and length. */
static inline const uint8_t *weir_bytes(const weir_column *c, size_t i, size_t *len) {
    *len = c->offsets[i + 1] - c->offsets[i];
    return c->data + c->offsets[i];
}

/* The column named `name`, or -1. */
int64_t weir_batch_index(const weir_batch *b, const char *name);
/* The column `name` of type `type`; NULL after failing "input has no column `x`; its columns
 * are: ..." or "column `x` is U, not T" (timestamp and bigint are different types). */
const weir_column *weir_batch_column(const weir_batch *b, const char *name, weir_type type, weir_error *err);

/* ---------------------------------------------------------------- builders (output columns) */

typedef struct {
    weir_type type;
    size_t len;
    size_t cap;
    void *values;
    bool *validity; /* NULL until the first null */
    uint32_t *offsets;
    uint8_t *data;
    size_t data_len;
    size_t data_cap;
} weir_builder;

void weir_builder_init(weir_builder *b, weir_type type, size_t capacity);
void weir_builder_free(weir_builder *b);
/* Makes the builder `len` values long (fixed-width types only) and returns its values, to fill
 * in a loop: `double *v = weir_builder_resize(&b, n);`. New values are zero and not null. */
void *weir_builder_resize(weir_builder *b, size_t len);
/* Sets the validity of all `len` values from `validity` (NULL: none is null). */
void weir_builder_set_validity(weir_builder *b, const bool *validity);
void weir_push_null(weir_builder *b);
void weir_push_bool(weir_builder *b, bool v);
void weir_push_i32(weir_builder *b, int32_t v);
void weir_push_i64(weir_builder *b, int64_t v); /* bigint or timestamp */
void weir_push_f64(weir_builder *b, double v);
void weir_push_bytes(weir_builder *b, const void *data, size_t len); /* utf8 or binary */
void weir_push_str(weir_builder *b, const char *s);                  /* NUL-terminated */
/* Appends value `row` of `c` (null if null); fails when the types differ. */
int weir_push_from(weir_builder *b, const weir_column *c, size_t row, weir_error *err);

/* ---------------------------------------------------------------- owned batches */

/* A batch built by the plugin (to emit, or as a test's input): columns and their memory are
 * owned by it. Its `batch` is an ordinary weir_batch view. */
typedef struct {
    weir_batch batch;
    size_t cap;
} weir_owned_batch;

void weir_owned_init(weir_owned_batch *o, size_t num_rows);
/* Adds a column from a builder (which it takes over: the builder is left empty); fails when its
 * length is not the batch's row count or the name is taken. */
int weir_owned_add(weir_owned_batch *o, const char *name, weir_builder *b, weir_error *err);
/* The rows `rows[0..n]` of `in`, all columns (a filter). */
void weir_batch_take(const weir_batch *in, const uint32_t *rows, size_t n, weir_owned_batch *out);
void weir_owned_free(weir_owned_batch *o);

/* ---------------------------------------------------------------- mapper output */

typedef struct {
    char *name;
    int64_t input; /* >= 0: the input column at this index, passed through; else computed */
    weir_builder data;
} weir_out_column;

typedef struct {
    const weir_batch *input;
    uint32_t *rows; /* NULL: output row i is input row i */
    size_t num_rows;
    size_t len;
    size_t cap;
    weir_out_column *columns;
} weir_output;

/* An empty output for `input`, of its row count (what the glue hands weir_map_batch). */
void weir_output_init(weir_output *o, const weir_batch *input);
/* Passes every input column through, in order (no copy: the host keeps them). */
void weir_output_pass_through_all(weir_output *o);
/* Passes the input column `name` through; fails when there is none. */
int weir_output_pass_through(weir_output *o, const char *name, weir_error *err);
/* Adds a computed column (taking the builder over); fails when its length is not the output's
 * row count or the name is taken. */
int weir_output_column(weir_output *o, const char *name, weir_builder *b, weir_error *err);
/* Keeps only the input rows `rows[0..n]` (a filter or flatMap): call before adding computed
 * columns, which then need n values. */
int weir_output_select(weir_output *o, const uint32_t *rows, size_t n, weir_error *err);
void weir_output_free(weir_output *o);

/* ---------------------------------------------------------------- stateful */

typedef enum { WEIR_PROCESSING_TIME = 0, WEIR_EVENT_TIME = 1 } weir_time_domain;

typedef struct {
    weir_time_domain domain;
    int64_t at; /* microseconds since the epoch */
} weir_timer;

typedef struct {
    uint64_t batch_id;
    bool has_watermark;
    int64_t watermark;       /* microseconds since the epoch, when has_watermark */
    int64_t processing_time; /* microseconds since the epoch */
} weir_batch_time;

/* One key's call. */
typedef struct {
    const weir_batch *keys; /* every group's key; this group's is row `index` */
    size_t index;
    weir_batch rows;  /* this group's rows, in arrival order (a view) */
    size_t first_row; /* where they start in the call's rows (what error rows count in) */
    bool timed_out;
    const weir_timer *expired_timers;
    size_t num_expired_timers;
    const weir_batch_time *time;
} weir_group;

typedef enum { WEIR_TIMEOUT_KEEP = 0, WEIR_TIMEOUT_CLEAR, WEIR_TIMEOUT_PROCESSING_MS, WEIR_TIMEOUT_EVENT_TIME } weir_timeout_kind;

/* The state of one key during its call. State bytes are the plugin's own format (see the
 * weir_state_put_* / weir_state_get_* helpers). As in the Rust SDK, the timeout is cleared unless
 * the call sets one. */
typedef struct {
    const uint8_t *stored;
    size_t stored_len;
    bool existed;
    bool exists;
    int change; /* 0 none, 1 updated, 2 removed */
    uint8_t *bytes;
    size_t len;
    bool timed_out;
    weir_timeout_kind timeout;
    int64_t timeout_value;
    bool has_ttl;
    uint64_t ttl_ms;
    weir_timer *reg;
    size_t num_reg;
    weir_timer *del;
    size_t num_del;
} weir_group_state;

/* The key's state bytes (after this call's update or remove), or NULL when it has none. */
const uint8_t *weir_state_get(const weir_group_state *s, size_t *len);
/* Replaces the state (the bytes are copied). */
void weir_state_update(weir_group_state *s, const void *bytes, size_t len);
void weir_state_remove(weir_group_state *s);
static inline bool weir_state_has_timed_out(const weir_group_state *s) { return s->timed_out; }
void weir_state_set_timeout_timestamp(weir_group_state *s, int64_t micros);
void weir_state_set_timeout_duration_ms(weir_group_state *s, uint64_t ms);
void weir_state_set_ttl_ms(weir_group_state *s, uint64_t ms);
void weir_state_register_timer(weir_group_state *s, weir_timer t);
void weir_state_delete_timer(weir_group_state *s, weir_timer t);

/* Little-endian fixed-width state encoding: `uint8_t buf[16]; uint8_t *p = buf;
 * p = weir_put_i64(p, n); p = weir_put_f64(p, total); weir_state_update(s, buf, p - buf);` and
 * reading back with a bounds-checked cursor. */
static inline uint8_t *weir_put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
    return p + 8;
}
static inline uint8_t *weir_put_i64(uint8_t *p, int64_t v) { return weir_put_u64(p, (uint64_t)v); }
uint8_t *weir_put_f64(uint8_t *p, double v);
typedef struct {
    const uint8_t *p;
    size_t left;
    bool short_read; /* set when a get ran past the end */
} weir_reader;
uint64_t weir_get_u64(weir_reader *r);
int64_t weir_get_i64(weir_reader *r);
double weir_get_f64(weir_reader *r);

/* The output rows of a call, of the schema `weir_output_schema` returned; written a row at a
 * time, a value per column in order. Mistakes (a wrong type, too few or too many values, a null
 * in a column that is not nullable) fail the call, naming the key, row and column. */
typedef struct {
    weir_schema schema;
    weir_builder *columns;
    size_t num_rows;
    size_t next; /* the column the next value goes to */
    char *error;
} weir_rows;

/* Starts a row with the group's key values (one per key column). */
void weir_row_keys(weir_rows *o, const weir_group *g);
void weir_row_null(weir_rows *o);
void weir_row_bool(weir_rows *o, bool v);
void weir_row_i32(weir_rows *o, int32_t v);
void weir_row_i64(weir_rows *o, int64_t v);
void weir_row_timestamp(weir_rows *o, int64_t micros);
void weir_row_f64(weir_rows *o, double v);
void weir_row_str(weir_rows *o, const char *s, size_t len);
void weir_row_binary(weir_rows *o, const void *data, size_t len);

/* A short description of a group's key ("user_id=alice"), for messages; malloc'd. */
char *weir_group_key(const weir_group *g);

/* ---------------------------------------------------------------- batch-sink */

/* Writes `b` to the job's output `output`; fails with the host's message (an output the job
 * does not declare, a type mismatch). */
int weir_emit(const char *output, const weir_batch *b, weir_error *err);

/* ---------------------------------------------------------------- what a plugin defines */

/* Every world: called once before anything else, with the parsed config. */
int weir_init(const weir_config *config, weir_error *err);

/* mapper: the output schema for `input` (fill `out`, empty on entry; weir_schema_copy first to
 * keep the input's columns), and the mapping of one batch. */
int weir_output_schema(const weir_schema *input, weir_schema *out, weir_error *err);
int weir_map_batch(const weir_batch *input, weir_output *out, weir_error *err);

/* stateful: the output schema for this key and input, and one call per key with rows, a fired
 * timeout or fired timers. `weir_state_version` and `weir_migrate_state` have defaults (weak:
 * version 1; migration refused) that a plugin may define. */
int weir_stateful_output_schema(const weir_schema *key, const weir_schema *input, weir_schema *out, weir_error *err);
int weir_process_group(const weir_group *g, weir_group_state *state, weir_rows *out, weir_error *err);
uint32_t weir_state_version(void);
int weir_migrate_state(uint32_t from_version, const uint8_t *state, size_t len, uint8_t **out, size_t *out_len,
                       weir_error *err);

/* batch-sink: one call per micro-batch; write with weir_emit. */
int weir_write_batch(uint64_t batch_id, const weir_batch *data, weir_error *err);

/* ---------------------------------------------------------------- for native tests and the glue */

/* One call's groups, as the host sends them. `row_offsets` has num_groups + 1 entries; the
 * optional arrays (NULL: none) have one entry per group: the stored state (NULL: none) and its
 * length, whether the timeout fired, the timers that fired. */
typedef struct {
    const weir_batch *keys;
    const weir_batch *rows;
    const uint32_t *row_offsets;
    size_t num_groups;
    const uint8_t *const *states;
    const size_t *state_lens;
    const bool *timed_out;
    const weir_timer *const *expired_timers;
    const size_t *num_expired_timers;
} weir_groups;

/* Runs `weir_process_group` over every group of one call, as the host would. Fills `results`
 * (caller-allocated, one per group; free each with weir_group_state_free) and `out` (rows of
 * `schema`; free with weir_rows_free). */
int weir_run_groups(const weir_batch_time *time, const weir_groups *groups, const weir_schema *schema,
                    weir_group_state *results, weir_rows *out, weir_error *err);
void weir_group_state_free(weir_group_state *s);
void weir_rows_free(weir_rows *o);

#ifdef __cplusplus
}
#endif
#endif
