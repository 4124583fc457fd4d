/* sessionize-c: plugins/sessionize (Rust) in C, on guest-sdk/c; must give byte-identical output.
 *
 * Splits each key's events into sessions: runs of events with no gap longer than `gap_minutes`
 * (config, default 30) between them. A session is emitted when it closes: when a later event of
 * the key comes more than the gap after its last event, or when the watermark passes its last
 * event plus the gap (the event-time timeout). Output: the key columns, then `session_start`,
 * `session_end` (last event + gap), `events` and `total` (the sum of `amount`, a null amount
 * counting as 0.0). Events of a batch are taken in `event_time` order (ties in arrival order)
 * and amounts are added in that order. */
#define WEIR_WORLD "stateful"
#include "weir.h"

#include <stdlib.h>

static int64_t gap_us;

/* The open session of a key (times in microseconds since the epoch); its state bytes are the
 * four fields, little-endian. */
typedef struct {
    int64_t start, last, events;
    double total;
} session;

static int64_t sat_add(int64_t a, int64_t b) {
    int64_t r;
    if (__builtin_add_overflow(a, b, &r)) return b > 0 ? INT64_MAX : INT64_MIN;
    return r;
}

int weir_init(const weir_config *config, weir_error *err) {
    static const char *const known[] = {"gap_minutes"};
    int64_t minutes;
    if (weir_config_reject_unknown(config, known, 1, err) || weir_config_i64(config, "gap_minutes", 30, &minutes, err))
        return -1;
    if (minutes < 0) return weir_fail(err, "config key `gap_minutes` must be 0 or more, not %lld", (long long)minutes);
    if (__builtin_mul_overflow(minutes, (int64_t)60000000, &gap_us))
        return weir_fail(err, "config key `gap_minutes`: %lld is too large", (long long)minutes);
    return 0;
}

int weir_stateful_output_schema(const weir_schema *key, const weir_schema *input, weir_schema *out, weir_error *err) {
    if (weir_schema_require(input, "event_time", WEIR_TIMESTAMP, err) ||
        weir_schema_require(input, "amount", WEIR_FLOAT64, err))
        return -1;
    static const char *const names[] = {"session_start", "session_end", "events", "total"};
    static const weir_type types[] = {WEIR_TIMESTAMP, WEIR_TIMESTAMP, WEIR_INT64, WEIR_FLOAT64};
    *out = weir_schema_copy(key);
    for (int i = 0; i < 4; i++) {
        if (weir_schema_add(out, names[i], types[i], false, err)) {
            weir_fail(err,
                      "cannot add column `%s`: the input already has a column of that name (a key column has that name)",
                      names[i]);
            return -1;
        }
    }
    return 0;
}

static void emit(const weir_group *g, const session *s, weir_rows *out) {
    weir_row_keys(out, g);
    weir_row_timestamp(out, s->start);
    weir_row_timestamp(out, sat_add(s->last, gap_us));
    weir_row_i64(out, s->events);
    weir_row_f64(out, s->total);
}

static void store(weir_group_state *state, const session *s) {
    uint8_t buf[32], *p = buf;
    p = weir_put_i64(p, s->start);
    p = weir_put_i64(p, s->last);
    p = weir_put_i64(p, s->events);
    p = weir_put_f64(p, s->total);
    weir_state_update(state, buf, (size_t)(p - buf));
}

/* The key's session, if it has one; -1 when the stored bytes are not a session. */
static int load(const weir_group_state *state, session *s, bool *open, weir_error *err) {
    size_t len;
    const uint8_t *bytes = weir_state_get(state, &len);
    *open = bytes != NULL;
    if (!bytes) return 0;
    weir_reader r = {bytes, len, false};
    s->start = weir_get_i64(&r);
    s->last = weir_get_i64(&r);
    s->events = weir_get_i64(&r);
    s->total = weir_get_f64(&r);
    if (r.short_read || r.left) return weir_fail(err, "the stored state (%zu bytes) is not a session (32 bytes)", len);
    return 0;
}

/* The order of the group's rows by time, ties in arrival order (a stable sort). */
static const int64_t *sort_times;
static int by_time(const void *a, const void *b) {
    uint32_t i = *(const uint32_t *)a, j = *(const uint32_t *)b;
    if (sort_times[i] != sort_times[j]) return sort_times[i] < sort_times[j] ? -1 : 1;
    return i < j ? -1 : i > j;
}

static uint32_t *order;
static size_t order_cap;

int weir_process_group(const weir_group *g, weir_group_state *state, weir_rows *out, weir_error *err) {
    session s;
    bool open;
    if (load(state, &s, &open, err)) return -1;
    if (g->rows.num_rows == 0) {
        if (weir_state_has_timed_out(state)) {
            /* The watermark passed the session's end: it can get no more events. */
            if (open) emit(g, &s, out);
            weir_state_remove(state);
        } else if (open) {
            /* Called without rows for another reason: the timeout must be set again. */
            weir_state_set_timeout_timestamp(state, sat_add(s.last, gap_us));
        }
        return 0;
    }
    const weir_column *times = weir_batch_column(&g->rows, "event_time", WEIR_TIMESTAMP, err);
    const weir_column *amounts = times ? weir_batch_column(&g->rows, "amount", WEIR_FLOAT64, err) : NULL;
    if (!amounts) return -1;
    size_t n = g->rows.num_rows;
    for (size_t i = 0; i < n; i++)
        if (weir_is_null(times, i)) return weir_fail_at(err, (int64_t)i, "`event_time` is null: a session event needs a time");
    const int64_t *t = weir_i64s(times);
    const double *a = weir_f64s(amounts);
    if (n > order_cap) {
        order_cap = n * 2;
        order = realloc(order, order_cap * sizeof *order);
        if (!order) abort();
    }
    for (size_t i = 0; i < n; i++) order[i] = (uint32_t)i;
    sort_times = t;
    qsort(order, n, sizeof *order, by_time);

    for (size_t k = 0; k < n; k++) {
        uint32_t i = order[k];
        int64_t time = t[i];
        double amount = weir_is_null(amounts, i) ? 0.0 : a[i];
        if (open && time > sat_add(s.last, gap_us)) {
            emit(g, &s, out);
            s = (session){time, time, 1, amount};
        } else if (open) {
            s.start = s.start < time ? s.start : time;
            s.last = s.last > time ? s.last : time;
            s.events += 1;
            s.total += amount;
        } else {
            s = (session){time, time, 1, amount};
            open = true;
        }
    }
    store(state, &s);
    weir_state_set_timeout_timestamp(state, sat_add(s.last, gap_us));
    return 0;
}
