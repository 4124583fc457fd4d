/* router-c: plugins/router (Rust) in C, on guest-sdk/c (the batch-sink world, foreachBatch).
 *
 * For each batch, the rows whose `amount` (double) is non-null and >= threshold (config,
 * default 100.0) are emitted, with all their columns, to the output `big`; the others (and null
 * amounts) to `small`; then one row to `counts`: `batch_id` (bigint) and `rows` (bigint, the
 * batch's row count). `big` and `small` are emitted even when empty. A batch without an
 * `amount` column, or with one that is not a double, fails naming the column. */
#define WEIR_WORLD "batch-sink"
#include "weir.h"

#include <stdlib.h>

static double threshold = 100.0;

int weir_init(const weir_config *config, weir_error *err) {
    static const char *const known[] = {"threshold"};
    return weir_config_reject_unknown(config, known, 1, err) || weir_config_f64(config, "threshold", 100.0, &threshold, err)
               ? -1
               : 0;
}

int weir_write_batch(uint64_t batch_id, const weir_batch *input, weir_error *err) {
    const weir_column *amount = weir_batch_column(input, "amount", WEIR_FLOAT64, err);
    if (!amount) return -1;
    size_t n = input->num_rows, nbig = 0, nsmall = 0;
    uint32_t *big = malloc((n ? n : 1) * sizeof *big), *small = malloc((n ? n : 1) * sizeof *small);
    if (!big || !small) abort();
    const double *a = weir_f64s(amount);
    for (size_t i = 0; i < n; i++) {
        if (!weir_is_null(amount, i) && a[i] >= threshold) big[nbig++] = (uint32_t)i;
        else small[nsmall++] = (uint32_t)i;
    }
    weir_owned_batch b, s, counts;
    weir_batch_take(input, big, nbig, &b);
    weir_batch_take(input, small, nsmall, &s);
    free(big);
    free(small);
    weir_builder id, rows;
    weir_builder_init(&id, WEIR_INT64, 1);
    weir_builder_init(&rows, WEIR_INT64, 1);
    weir_push_i64(&id, (int64_t)batch_id);
    weir_push_i64(&rows, (int64_t)n);
    weir_owned_init(&counts, 1);
    weir_owned_add(&counts, "batch_id", &id, NULL);
    weir_owned_add(&counts, "rows", &rows, NULL);
    int rc = weir_emit("big", &b.batch, err) || weir_emit("small", &s.batch, err) || weir_emit("counts", &counts.batch, err)
                 ? -1
                 : 0;
    weir_owned_free(&b);
    weir_owned_free(&s);
    weir_owned_free(&counts);
    return rc;
}
