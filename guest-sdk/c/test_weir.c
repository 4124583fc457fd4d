/* The C SDK's own tests, natively: `make -C guest-sdk/c test`. Messages are the Rust SDK's
 * (guest-sdk/src/config.rs, schema.rs, batch.rs), checked word for word. */
#include "weir.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failed, passed;

#define CHECK(cond)                                                                                                    \
    do {                                                                                                               \
        if (cond) passed++;                                                                                            \
        else {                                                                                                         \
            failed++;                                                                                                  \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);                                    \
        }                                                                                                              \
    } while (0)

#define CHECK_MSG(err, want)                                                                                           \
    do {                                                                                                               \
        if ((err).message && !strcmp((err).message, want)) passed++;                                                   \
        else {                                                                                                         \
            failed++;                                                                                                  \
            fprintf(stderr, "%s:%d: message `%s`, wanted `%s`\n", __FILE__, __LINE__,                                   \
                    (err).message ? (err).message : "(none)", want);                                                   \
        }                                                                                                              \
        weir_error_clear(&(err));                                                                                      \
    } while (0)

static int parse(const char *raw, weir_config *c, weir_error *e) { return weir_config_parse(raw, strlen(raw), c, e); }

static void config_tests(void) {
    weir_error e = {NULL, -1};
    weir_config c;
    CHECK(parse(" tax_rate = 0.25 ,region=eu\n\n  limit=3 ,", &c, &e) == 0);
    CHECK(!strcmp(weir_config_get(&c, "tax_rate"), "0.25") && !strcmp(weir_config_get(&c, "region"), "eu"));
    int64_t limit;
    CHECK(weir_config_i64(&c, "limit", 0, &limit, &e) == 0 && limit == 3);
    CHECK(weir_config_get(&c, "nope") == NULL);
    weir_config_free(&c);

    CHECK(parse("a=1,oops", &c, &e) != 0);
    CHECK_MSG(e, "config entry `oops` is not `key=value`");
    CHECK(parse("=1", &c, &e) != 0);
    CHECK_MSG(e, "config entry `=1` has an empty key");
    CHECK(parse("a=1,a=2", &c, &e) != 0);
    CHECK_MSG(e, "config key `a` is given twice");

    CHECK(parse("tax_rate=abc,flag=yes,n=12x,big=99999999999,expr=a=b", &c, &e) == 0);
    double d;
    CHECK(weir_config_f64(&c, "tax_rate", 0.2, &d, &e) != 0);
    CHECK_MSG(e, "config key `tax_rate`: `abc` is not a number");
    bool b;
    CHECK(weir_config_bool(&c, "flag", false, &b, &e) != 0);
    CHECK_MSG(e, "config key `flag`: `yes` is not `true` or `false`");
    CHECK(weir_config_i64(&c, "n", 0, &limit, &e) != 0);
    CHECK_MSG(e, "config key `n`: `12x` is not an integer");
    int32_t i32;
    CHECK(weir_config_i32(&c, "big", 0, &i32, &e) != 0);
    CHECK_MSG(e, "config key `big`: `99999999999` is not a 32-bit integer");
    CHECK(weir_config_i64(&c, "big", 0, &limit, &e) == 0 && limit == 99999999999LL);
    CHECK(!strcmp(weir_config_get(&c, "expr"), "a=b"));
    const char *v;
    CHECK(weir_config_require(&c, "other", &v, &e) != 0);
    CHECK_MSG(e, "config key `other` is required");
    static const char *const known[] = {"tax_rate", "flag"};
    CHECK(weir_config_reject_unknown(&c, known, 2, &e) != 0);
    CHECK_MSG(e, "unknown config key `n` (known keys: tax_rate, flag)");
    weir_config_free(&c);

    /* Rust's float syntax: these parse, hex floats and bare dots do not. */
    const char *good[] = {"0.2", "1e-3", "-inf", "+infinity", "NaN", "1.", ".5", "7"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        char raw[32];
        snprintf(raw, sizeof raw, "x=%s", good[i]);
        CHECK(parse(raw, &c, &e) == 0 && weir_config_f64(&c, "x", 0, &d, &e) == 0);
        weir_config_free(&c);
    }
    CHECK(parse("x=1e-3", &c, &e) == 0 && weir_config_f64(&c, "x", 0, &d, &e) == 0 && d == 1e-3);
    weir_config_free(&c);
    const char *bad[] = {"0x10", ".", "e5", "1e", "1.5.2", " ", "inf2"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char raw[32];
        snprintf(raw, sizeof raw, "x=%s", bad[i]);
        CHECK(parse(raw, &c, &e) == 0);
        CHECK(weir_config_f64(&c, "x", 0, &d, &e) != 0 || !strcmp(bad[i], " "));
        weir_error_clear(&e);
        weir_config_free(&c);
    }
    CHECK(parse("", &c, &e) == 0 && weir_config_f64(&c, "tax_rate", 0.2, &d, &e) == 0 && d == 0.2);
    weir_config_free(&c);
}

static void schema_tests(void) {
    weir_error e = {NULL, -1};
    weir_schema s = {0};
    CHECK(weir_schema_add(&s, "user_id", WEIR_UTF8, true, &e) == 0);
    CHECK(weir_schema_add(&s, "amount", WEIR_FLOAT64, true, &e) == 0);
    CHECK(weir_schema_require(&s, "amount", WEIR_INT64, &e) != 0);
    CHECK_MSG(e, "input column `amount` must be int64 (bigint), but it is float64 (double)");
    CHECK(weir_schema_require(&s, "price", WEIR_FLOAT64, &e) != 0);
    CHECK_MSG(e, "input has no column `price` (of type float64 (double)); its columns are: user_id, amount");
    CHECK(weir_schema_add(&s, "amount", WEIR_BOOLEAN, false, &e) != 0);
    CHECK_MSG(e, "cannot add column `amount`: the input already has a column of that name");
    weir_schema c = weir_schema_copy(&s);
    CHECK(c.len == 2 && !strcmp(c.fields[1].name, "amount") && c.fields[1].type == WEIR_FLOAT64);
    weir_schema_free(&c);
    weir_schema_free(&s);
}

static void batch_tests(void) {
    weir_error e = {NULL, -1};
    weir_builder id, amount;
    weir_builder_init(&id, WEIR_UTF8, 1);
    weir_builder_init(&amount, WEIR_FLOAT64, 1);
    weir_push_str(&id, "a"), weir_push_f64(&amount, 1.5);
    weir_push_null(&id), weir_push_null(&amount);
    weir_push_str(&id, "ccc"), weir_push_f64(&amount, 3.0);
    CHECK(id.len == 3 && id.validity && !id.validity[1] && id.offsets[3] == 4);
    weir_owned_batch o;
    weir_owned_init(&o, 3);
    CHECK(weir_owned_add(&o, "id", &id, &e) == 0 && weir_owned_add(&o, "amount", &amount, &e) == 0);
    CHECK(weir_batch_column(&o.batch, "price", WEIR_FLOAT64, &e) == NULL);
    CHECK_MSG(e, "input has no column `price`; its columns are: id, amount");
    CHECK(weir_batch_column(&o.batch, "id", WEIR_FLOAT64, &e) == NULL);
    CHECK_MSG(e, "column `id` is utf8 (string), not float64 (double)");
    const weir_column *a = weir_batch_column(&o.batch, "amount", WEIR_FLOAT64, &e);
    CHECK(a && weir_is_null(a, 1) && weir_f64s(a)[2] == 3.0);

    /* take: rows 2 and 0, nulls kept. */
    uint32_t rows[] = {2, 1, 0};
    weir_owned_batch t;
    weir_batch_take(&o.batch, rows, 3, &t);
    size_t n;
    const uint8_t *v = weir_bytes(&t.batch.columns[0], 0, &n);
    CHECK(n == 3 && !memcmp(v, "ccc", 3) && weir_is_null(&t.batch.columns[0], 1));
    CHECK(weir_f64s(&t.batch.columns[1])[2] == 1.5 && weir_is_null(&t.batch.columns[1], 1));
    weir_owned_free(&t);

    /* Output: lengths and names are checked. */
    weir_output out;
    weir_output_init(&out, &o.batch);
    weir_builder short_col;
    weir_builder_init(&short_col, WEIR_INT32, 1);
    weir_push_i32(&short_col, 1);
    CHECK(weir_output_column(&out, "x", &short_col, &e) != 0);
    CHECK_MSG(e, "output column `x` has 1 values for 3 rows (one value per output row is needed)");
    weir_builder_free(&short_col);
    CHECK(weir_output_pass_through(&out, "nope", &e) != 0);
    CHECK_MSG(e, "pass_through(\"nope\"): the input has no such column; its columns are: id, amount");
    weir_output_pass_through_all(&out);
    CHECK(out.len == 2 && out.columns[1].input == 1);
    CHECK(weir_output_pass_through(&out, "id", &e) != 0);
    CHECK_MSG(e, "output column `id` is given twice");
    weir_output_free(&out);
    weir_owned_free(&o);
}

/* A stateful plugin for the run_groups test: counts rows in its state; key "bad" fails at its
 * second row; key "short" writes one value too few. */
int weir_process_group(const weir_group *g, weir_group_state *s, weir_rows *out, weir_error *err) {
    size_t len;
    const uint8_t *st = weir_state_get(s, &len);
    weir_reader r = {st, len, false};
    int64_t count = st ? weir_get_i64(&r) : 0;
    size_t klen;
    const uint8_t *key = weir_bytes(&g->keys->columns[0], g->index, &klen);
    if (klen == 3 && !memcmp(key, "bad", 3)) return weir_fail_at(err, 1, "row refused");
    count += (int64_t)g->rows.num_rows;
    uint8_t buf[8];
    weir_state_update(s, buf, (size_t)(weir_put_i64(buf, count) - buf));
    weir_state_register_timer(s, (weir_timer){WEIR_EVENT_TIME, 5});
    weir_row_keys(out, g);
    if (!(klen == 5 && !memcmp(key, "short", 5))) weir_row_i64(out, count);
    return 0;
}

static void stateful_tests(void) {
    weir_error e = {NULL, -1};
    const char *names[] = {"a", "b", "bad", "short"};
    weir_builder kb, xb;
    weir_builder_init(&kb, WEIR_UTF8, 4);
    weir_builder_init(&xb, WEIR_INT64, 6);
    for (int i = 0; i < 4; i++) weir_push_str(&kb, names[i]);
    for (int i = 0; i < 6; i++) weir_push_i64(&xb, i);
    weir_owned_batch keys, rows;
    weir_owned_init(&keys, 4);
    weir_owned_add(&keys, "k", &kb, &e);
    weir_owned_init(&rows, 6);
    weir_owned_add(&rows, "x", &xb, &e);
    weir_schema schema = {0};
    weir_schema_add(&schema, "k", WEIR_UTF8, true, &e);
    weir_schema_add(&schema, "n", WEIR_INT64, false, &e);
    uint8_t stored[8];
    weir_put_i64(stored, 10);
    const uint8_t *states[] = {stored, NULL, NULL, NULL};
    const size_t lens[] = {8, 0, 0, 0};
    const uint32_t offsets[] = {0, 2, 3, 5, 6};
    weir_batch_time time = {3, false, 0, 100};
    weir_group_state results[4];
    weir_rows out;

    /* Groups a and b only. */
    weir_groups two = {&keys.batch, &rows.batch, offsets, 2, states, lens, NULL, NULL, NULL};
    CHECK(weir_run_groups(&time, &two, &schema, results, &out, &e) == 0);
    CHECK(out.num_rows == 2 && ((int64_t *)out.columns[1].values)[0] == 12 && ((int64_t *)out.columns[1].values)[1] == 1);
    CHECK(results[0].change == 1 && results[0].num_reg == 1 && results[0].timeout == WEIR_TIMEOUT_CLEAR);
    for (int i = 0; i < 2; i++) weir_group_state_free(&results[i]);
    weir_rows_free(&out);

    /* The error of group `bad` names its row in the call (3 + 1) and the key. */
    weir_groups three = {&keys.batch, &rows.batch, offsets, 3, states, lens, NULL, NULL, NULL};
    CHECK(weir_run_groups(&time, &three, &schema, results, &out, &e) != 0);
    CHECK(e.row == 4);
    CHECK_MSG(e, "key k=\"bad\": row refused");
    weir_rows_free(&out);

    /* A row one value short fails naming the key, row and column. */
    weir_groups four = {&keys.batch, &rows.batch, offsets + 3, 1, NULL, NULL, NULL, NULL, NULL};
    weir_owned_batch key4;
    uint32_t k4 = 3;
    weir_batch_take(&keys.batch, &k4, 1, &key4);
    four.keys = &key4.batch;
    weir_groups four_rows = four;
    uint32_t offs[] = {5, 6};
    four_rows.row_offsets = offs;
    CHECK(weir_run_groups(&time, &four_rows, &schema, results, &out, &e) != 0);
    CHECK_MSG(e, "key k=\"short\": output row 0, column 1 (`n`): the row ended after 1 of the 2 columns");
    weir_rows_free(&out);
    weir_owned_free(&key4);

    /* Removing a state that never existed is no change. */
    weir_group_state s = {0};
    weir_state_remove(&s);
    CHECK(weir_state_get(&s, &(size_t){0}) == NULL);
    weir_group_state_free(&s);

    /* State bytes round-trip; a short read is flagged. */
    uint8_t buf[16], *p = buf;
    p = weir_put_i64(p, -7);
    p = weir_put_f64(p, 0.1);
    weir_reader r = {buf, (size_t)(p - buf), false};
    CHECK(weir_get_i64(&r) == -7 && weir_get_f64(&r) == 0.1 && !r.short_read && r.left == 0);
    weir_get_i64(&r);
    CHECK(r.short_read);

    weir_schema_free(&schema);
    weir_owned_free(&keys);
    weir_owned_free(&rows);
}

int main(void) {
    config_tests();
    schema_tests();
    batch_tests();
    stateful_tests();
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
