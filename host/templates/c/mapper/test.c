/* {{name}}'s own test, natively (no host, no Wasm): `make test`. */
#include "weir.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

int main(void) {
    weir_error err = {NULL, -1};
    weir_config config;
    assert(weir_config_parse("", 0, &config, &err) == 0);
    assert(weir_init(&config, &err) == 0);

    /* Input: user (string), amount (double) with a null. */
    weir_builder user, amount;
    weir_builder_init(&user, WEIR_UTF8, 4);
    weir_builder_init(&amount, WEIR_FLOAT64, 4);
    const char *users[] = {"alice", "bob", "carol", "dave"};
    for (int i = 0; i < 4; i++) weir_push_str(&user, users[i]);
    weir_push_f64(&amount, 50.0);
    weir_push_f64(&amount, 100.0);
    weir_push_null(&amount);
    weir_push_f64(&amount, 250.5);
    weir_owned_batch input;
    weir_owned_init(&input, 4);
    assert(weir_owned_add(&input, "user", &user, &err) == 0);
    assert(weir_owned_add(&input, "amount", &amount, &err) == 0);

    /* The schema: the input's columns, then `size`. */
    weir_schema in = {0}, out_schema = {0};
    assert(weir_schema_add(&in, "user", WEIR_UTF8, true, &err) == 0);
    assert(weir_schema_add(&in, "amount", WEIR_FLOAT64, true, &err) == 0);
    assert(weir_output_schema(&in, &out_schema, &err) == 0);
    assert(out_schema.len == 3 && !strcmp(out_schema.fields[2].name, "size") && !out_schema.fields[2].nullable);

    weir_output out;
    weir_output_init(&out, &input.batch);
    assert(weir_map_batch(&input.batch, &out, &err) == 0);
    assert(out.len == 3 && out.columns[0].input == 0 && out.columns[1].input == 1);
    const char *want[] = {"small", "big", "small", "big"};
    weir_column size = {"size", WEIR_UTF8, out.columns[2].data.len, NULL, out.columns[2].data.offsets,
                        out.columns[2].data.data, out.columns[2].data.validity};
    assert(size.len == 4 && size.validity == NULL);
    for (size_t i = 0; i < 4; i++) {
        size_t n;
        const uint8_t *v = weir_bytes(&size, i, &n);
        assert(n == strlen(want[i]) && !memcmp(v, want[i], n));
    }

    /* A batch without `amount` is refused, naming the column. */
    weir_schema bad = {0};
    assert(weir_schema_add(&bad, "user", WEIR_UTF8, true, &err) == 0);
    weir_schema ignored = {0};
    assert(weir_output_schema(&bad, &ignored, &err) != 0);
    assert(strstr(err.message, "no column `amount`"));

    weir_output_free(&out);
    weir_owned_free(&input);
    weir_schema_free(&in), weir_schema_free(&out_schema), weir_schema_free(&bad);
    weir_config_free(&config);
    weir_error_clear(&err);
    printf("1 passed, 0 failed\n");
    return 0;
}
