/* {{name}}'s own test, natively (no host, no Wasm): `make test`. weir_emit, which the host
 * provides in Wasm, records what is emitted here. */
#include "weir.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

static char emitted_to[4][16];
static size_t emitted_rows[4], emitted_cols[4], emits;
static double first_amount[4];

int weir_emit(const char *output, const weir_batch *b, weir_error *err) {
    (void)err;
    assert(emits < 4);
    snprintf(emitted_to[emits], sizeof emitted_to[emits], "%s", output);
    emitted_rows[emits] = b->num_rows;
    emitted_cols[emits] = b->num_columns;
    int64_t a = weir_batch_index(b, "amount");
    first_amount[emits] = b->num_rows && a >= 0 ? weir_f64s(&b->columns[a])[0] : -1.0;
    emits++;
    return 0;
}

int main(void) {
    weir_error err = {NULL, -1};
    weir_config config;
    assert(weir_config_parse("", 0, &config, &err) == 0);
    assert(weir_init(&config, &err) == 0);

    weir_builder ub, ab;
    weir_builder_init(&ub, WEIR_UTF8, 4);
    weir_builder_init(&ab, WEIR_FLOAT64, 4);
    weir_push_str(&ub, "alice"), weir_push_f64(&ab, 50.0);
    weir_push_str(&ub, "bob"), weir_push_f64(&ab, 150.0);
    weir_push_str(&ub, "carol"), weir_push_null(&ab);
    weir_push_str(&ub, "dave"), weir_push_f64(&ab, 100.0);
    weir_owned_batch input;
    weir_owned_init(&input, 4);
    weir_owned_add(&input, "user", &ub, &err);
    weir_owned_add(&input, "amount", &ab, &err);

    assert(weir_write_batch(7, &input.batch, &err) == 0);
    assert(emits == 2);
    assert(!strcmp(emitted_to[0], "big") && emitted_rows[0] == 2 && emitted_cols[0] == 2 && first_amount[0] == 150.0);
    assert(!strcmp(emitted_to[1], "small") && emitted_rows[1] == 2 && first_amount[1] == 50.0);

    /* Nothing big: `big` is still emitted, empty, with the columns. */
    emits = 0;
    weir_owned_batch few;
    uint32_t first = 0;
    weir_batch_take(&input.batch, &first, 1, &few);
    assert(weir_write_batch(8, &few.batch, &err) == 0);
    assert(emits == 2 && emitted_rows[0] == 0 && emitted_cols[0] == 2 && emitted_rows[1] == 1);

    weir_owned_free(&few), weir_owned_free(&input);
    weir_config_free(&config);
    printf("1 passed, 0 failed\n");
    return 0;
}
