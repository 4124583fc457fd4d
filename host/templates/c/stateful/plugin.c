/* {{name}}: a weir stateful plugin in C (docs/plugins-c.md), keyed by `user`.
 *
 * State per key: (count, total). Each call adds the group's rows (a null amount counts 1 and
 * adds 0.0), stores the state and outputs one row: the key, `count` (bigint) and `total`
 * (double), the running totals. No timeout. */
#define WEIR_WORLD "stateful"
#include "weir.h"

int weir_init(const weir_config *config, weir_error *err) {
    (void)config, (void)err; /* no config: the string is ignored */
    return 0;
}

int weir_stateful_output_schema(const weir_schema *key, const weir_schema *input, weir_schema *out, weir_error *err) {
    if (weir_schema_require(input, "amount", WEIR_FLOAT64, err)) return -1;
    *out = weir_schema_copy(key);
    if (weir_schema_add(out, "count", WEIR_INT64, false, err) || weir_schema_add(out, "total", WEIR_FLOAT64, false, err))
        return -1;
    return 0;
}

int weir_process_group(const weir_group *g, weir_group_state *state, weir_rows *out, weir_error *err) {
    int64_t count = 0;
    double total = 0.0;
    size_t len;
    const uint8_t *stored = weir_state_get(state, &len);
    if (stored) {
        weir_reader r = {stored, len, false};
        count = weir_get_i64(&r);
        total = weir_get_f64(&r);
        if (r.short_read || r.left) return weir_fail(err, "the stored state (%zu bytes) is not (count, total)", len);
    }
    const weir_column *amount = weir_batch_column(&g->rows, "amount", WEIR_FLOAT64, err);
    if (!amount) return -1;
    for (size_t i = 0; i < g->rows.num_rows; i++) {
        count += 1;
        total += weir_is_null(amount, i) ? 0.0 : weir_f64s(amount)[i];
    }
    uint8_t buf[16], *p = buf;
    p = weir_put_i64(p, count);
    p = weir_put_f64(p, total);
    weir_state_update(state, buf, (size_t)(p - buf));
    weir_row_keys(out, g);
    weir_row_i64(out, count);
    weir_row_f64(out, total);
    return 0;
}
