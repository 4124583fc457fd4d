/* enrich-c: plugins/enrich (Rust) in C, on guest-sdk/c; must give byte-identical output.
 *
 * Every input column is passed through unchanged, first, in order; then:
 * - amount_with_tax: double = amount * (1.0 + tax_rate) (config `tax_rate`, default 0.2),
 * - user_bucket: int = FNV-1a 32-bit hash of user_id's UTF-8 bytes, modulo 16,
 * - is_large: boolean = amount >= 100.0,
 * each null where its input is null. */
#define WEIR_WORLD "mapper"
#include "weir.h"

#include <stdlib.h>

static double factor = 1.2;

int weir_init(const weir_config *config, weir_error *err) {
    static const char *const known[] = {"tax_rate"};
    double tax_rate;
    if (weir_config_reject_unknown(config, known, 1, err) || weir_config_f64(config, "tax_rate", 0.2, &tax_rate, err))
        return -1;
    factor = 1.0 + tax_rate;
    return 0;
}

int weir_output_schema(const weir_schema *input, weir_schema *out, weir_error *err) {
    if (weir_schema_require(input, "user_id", WEIR_UTF8, err) || weir_schema_require(input, "amount", WEIR_FLOAT64, err))
        return -1;
    *out = weir_schema_copy(input);
    if (weir_schema_add(out, "amount_with_tax", WEIR_FLOAT64, true, err) ||
        weir_schema_add(out, "user_bucket", WEIR_INT32, true, err) ||
        weir_schema_add(out, "is_large", WEIR_BOOLEAN, true, err))
        return -1;
    return 0;
}

/* FNV-1a, 32 bits: offset basis 2166136261, prime 16777619, wrapping arithmetic. */
static uint32_t fnv1a(const uint8_t *p, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
    return h;
}

int weir_map_batch(const weir_batch *input, weir_output *out, weir_error *err) {
    const weir_column *amount = weir_batch_column(input, "amount", WEIR_FLOAT64, err);
    const weir_column *users = amount ? weir_batch_column(input, "user_id", WEIR_UTF8, err) : NULL;
    if (!users) return -1;
    size_t n = input->num_rows;
    const double *a = weir_f64s(amount);
    weir_builder tax, bucket, large;
    weir_builder_init(&tax, WEIR_FLOAT64, n);
    weir_builder_init(&bucket, WEIR_INT32, n);
    weir_builder_init(&large, WEIR_BOOLEAN, n);
    double *t = weir_builder_resize(&tax, n);
    int32_t *b = weir_builder_resize(&bucket, n);
    bool *l = weir_builder_resize(&large, n);
    /* Branch-free loops over the raw lists; nulls come from the inputs' validity. */
    for (size_t i = 0; i < n; i++) t[i] = a[i] * factor;
    for (size_t i = 0; i < n; i++) l[i] = a[i] >= 100.0;
    for (size_t i = 0; i < n; i++) {
        size_t len;
        const uint8_t *u = weir_bytes(users, i, &len);
        b[i] = (int32_t)(fnv1a(u, len) % 16);
    }
    weir_builder_set_validity(&tax, amount->validity);
    weir_builder_set_validity(&large, amount->validity);
    weir_builder_set_validity(&bucket, users->validity);
    weir_output_pass_through_all(out);
    if (weir_output_column(out, "amount_with_tax", &tax, err) || weir_output_column(out, "user_bucket", &bucket, err) ||
        weir_output_column(out, "is_large", &large, err)) {
        weir_builder_free(&tax), weir_builder_free(&bucket), weir_builder_free(&large);
        return -1;
    }
    return 0;
}
