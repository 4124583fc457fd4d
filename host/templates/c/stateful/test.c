/* {{name}}'s own test, natively (no host, no Wasm): `make test`. */
#include "weir.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

/* One call with two keys: alice (2 rows, one null amount) with a stored state, bob (1 row). */
int main(void) {
    weir_error err = {NULL, -1};
    weir_config config;
    assert(weir_config_parse("", 0, &config, &err) == 0);
    assert(weir_init(&config, &err) == 0);

    weir_builder kb, ub, ab;
    weir_builder_init(&kb, WEIR_UTF8, 2);
    weir_push_str(&kb, "alice");
    weir_push_str(&kb, "bob");
    weir_builder_init(&ub, WEIR_UTF8, 3);
    weir_builder_init(&ab, WEIR_FLOAT64, 3);
    weir_push_str(&ub, "alice"), weir_push_f64(&ab, 10.5);
    weir_push_str(&ub, "alice"), weir_push_null(&ab);
    weir_push_str(&ub, "bob"), weir_push_f64(&ab, 200.0);
    weir_owned_batch keys, rows;
    weir_owned_init(&keys, 2);
    weir_owned_add(&keys, "user", &kb, &err);
    weir_owned_init(&rows, 3);
    weir_owned_add(&rows, "user", &ub, &err);
    weir_owned_add(&rows, "amount", &ab, &err);

    weir_schema key = {0}, input = {0}, schema = {0};
    weir_schema_add(&key, "user", WEIR_UTF8, true, &err);
    weir_schema_add(&input, "user", WEIR_UTF8, true, &err);
    weir_schema_add(&input, "amount", WEIR_FLOAT64, true, &err);
    assert(weir_stateful_output_schema(&key, &input, &schema, &err) == 0);
    assert(schema.len == 3 && !strcmp(schema.fields[1].name, "count") && !strcmp(schema.fields[2].name, "total"));

    /* alice has (1, 5.0) stored. */
    uint8_t stored[16], *p = stored;
    p = weir_put_i64(p, 1);
    p = weir_put_f64(p, 5.0);
    const uint8_t *states[] = {stored, NULL};
    const size_t lens[] = {16, 0};
    const uint32_t offsets[] = {0, 2, 3};
    weir_groups groups = {&keys.batch, &rows.batch, offsets, 2, states, lens, NULL, NULL, NULL};
    weir_batch_time time = {0, false, 0, 0};
    weir_group_state results[2];
    weir_rows out;
    assert(weir_run_groups(&time, &groups, &schema, results, &out, &err) == 0);

    assert(out.num_rows == 2);
    assert(((int64_t *)out.columns[1].values)[0] == 3 && ((double *)out.columns[2].values)[0] == 15.5);
    assert(((int64_t *)out.columns[1].values)[1] == 1 && ((double *)out.columns[2].values)[1] == 200.0);
    for (int g = 0; g < 2; g++) {
        size_t len;
        const uint8_t *s = weir_state_get(&results[g], &len);
        weir_reader r = {s, len, false};
        int64_t count = weir_get_i64(&r);
        double total = weir_get_f64(&r);
        assert(results[g].change == 1 && !r.short_read && r.left == 0);
        assert(g == 0 ? count == 3 && total == 15.5 : count == 1 && total == 200.0);
        assert(results[g].timeout == WEIR_TIMEOUT_CLEAR);
        weir_group_state_free(&results[g]);
    }

    weir_rows_free(&out);
    weir_owned_free(&keys), weir_owned_free(&rows);
    weir_schema_free(&key), weir_schema_free(&input), weir_schema_free(&schema);
    weir_config_free(&config);
    printf("1 passed, 0 failed\n");
    return 0;
}
