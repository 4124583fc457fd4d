/* {{name}}: a weir mapper plugin in C (docs/plugins-c.md).
 *
 * Output: every input column, then `size` (string, not null): "big" when `amount` >= 100.0,
 * else "small" (a null amount is "small"). No config. */
#define WEIR_WORLD "mapper"
#include "weir.h"

int weir_init(const weir_config *config, weir_error *err) {
    (void)config, (void)err; /* no config: the string is ignored */
    return 0;
}

int weir_output_schema(const weir_schema *input, weir_schema *out, weir_error *err) {
    if (weir_schema_require(input, "amount", WEIR_FLOAT64, err)) return -1;
    *out = weir_schema_copy(input);
    return weir_schema_add(out, "size", WEIR_UTF8, false, err);
}

int weir_map_batch(const weir_batch *input, weir_output *out, weir_error *err) {
    const weir_column *amount = weir_batch_column(input, "amount", WEIR_FLOAT64, err);
    if (!amount) return -1;
    weir_builder size;
    weir_builder_init(&size, WEIR_UTF8, input->num_rows);
    for (size_t i = 0; i < input->num_rows; i++)
        weir_push_str(&size, !weir_is_null(amount, i) && weir_f64s(amount)[i] >= 100.0 ? "big" : "small");
    weir_output_pass_through_all(out);
    if (weir_output_column(out, "size", &size, err)) {
        weir_builder_free(&size);
        return -1;
    }
    return 0;
}
