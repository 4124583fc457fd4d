/* {{name}}: a weir batch-sink (foreachBatch) plugin in C (docs/plugins-c.md).
 *
 * Each batch's rows with `amount` >= 100.0 go to the output `big`, the others (and null
 * amounts) to `small`, with all their columns; both are emitted even when empty. */
#define WEIR_WORLD "batch-sink"
#include "weir.h"

#include <stdlib.h>

int weir_init(const weir_config *config, weir_error *err) {
    (void)config, (void)err; /* no config: the string is ignored */
    return 0;
}

int weir_write_batch(uint64_t batch_id, const weir_batch *input, weir_error *err) {
    (void)batch_id;
    const weir_column *amount = weir_batch_column(input, "amount", WEIR_FLOAT64, err);
    if (!amount) return -1;
    size_t n = input->num_rows, nbig = 0, nsmall = 0;
    uint32_t *big = malloc((n + 1) * sizeof *big), *small = malloc((n + 1) * sizeof *small);
    if (!big || !small) abort();
    for (size_t i = 0; i < n; i++) {
        if (!weir_is_null(amount, i) && weir_f64s(amount)[i] >= 100.0) big[nbig++] = (uint32_t)i;
        else small[nsmall++] = (uint32_t)i;
    }
    weir_owned_batch b, s;
    weir_batch_take(input, big, nbig, &b);
    weir_batch_take(input, small, nsmall, &s);
    free(big), free(small);
    int rc = weir_emit("big", &b.batch, err) || weir_emit("small", &s.batch, err) ? -1 : 0;
    weir_owned_free(&b), weir_owned_free(&s);
    return rc;
}
