"""sessionize, in Python: the same logic as plugins/sessionize (Rust), byte-identical output.

A stateful plugin (flatMapGroupsWithState with an event-time timeout): per key, events closer
than `gap_minutes` (config, default 30) form a session; a session is written once it closes, as
the key columns, then session_start, session_end (last event + gap), events (int64) and total
(float64, the sum of `amount`, a null amount counting as 0.0).

State per key: the open session (start, last, events, total), packed as struct "<qqqd" (start and
last in microseconds). Per group:
- timed out (no rows): write the open session and remove the state (called without rows for
  another reason: set the timeout again);
- otherwise, the group's rows ordered by event_time (a stable sort: ties keep arrival order); a
  null event_time fails the batch naming that row. For each event t: when a session is open and
  t > last + gap, write it and open {t, t, 1, amount}; when one is open, extend it (start = min,
  last = max, events + 1, total + amount); else open {t, t, 1, amount}. Then store the session and
  set the event-time timeout to last + gap (session_end and the timeout saturate at the largest
  timestamp, as Rust's saturating_add does).
"""
import weir_guest as w

WORLD = "stateful"

US_PER_MINUTE = 60_000_000
I64_MAX = 2**63 - 1


class Sessionize(w.StatefulProcessor):
    STATE_STRUCT = "<qqqd"  # start µs, last µs, events, total

    def __init__(self, config: w.Config):
        config.reject_unknown(["gap_minutes"])
        minutes = config.get_i64("gap_minutes", 30)
        if minutes < 0:
            raise w.PluginError(f"config key `gap_minutes` must be 0 or more, not {minutes}")
        if minutes * US_PER_MINUTE > I64_MAX:
            raise w.PluginError(f"config key `gap_minutes`: {minutes} is too large")
        self.gap = minutes * US_PER_MINUTE

    def output_schema(self, key: w.Schema, input: w.Schema) -> w.Schema:
        input.require("event_time", w.DataType.TIMESTAMP)
        input.require("amount", w.DataType.FLOAT64)
        out = w.Schema(key)
        for name, dt in (("session_start", w.DataType.TIMESTAMP), ("session_end", w.DataType.TIMESTAMP),
                         ("events", w.DataType.INT64), ("total", w.DataType.FLOAT64)):
            try:
                out = out.try_with(w.Field(name, dt, False))
            except w.PluginError as e:
                raise w.PluginError(f"{e} (a key column has that name)")
        return out

    def process_group(self, group: w.Group, state: w.GroupState, out: w.GroupOutput) -> None:
        gap = self.gap
        rows = group.rows
        if len(rows) == 0:
            if state.has_timed_out:
                # The watermark passed the session's end: it can get no more events.
                if state.exists:
                    start, last, events, total = state.get()
                    out.append_keyed(start, min(last + gap, I64_MAX), events, total)
                state.remove()
            elif state.exists:
                # Called without rows for another reason: the timeout must be set again.
                state.set_timeout_timestamp(min(state.get()[1] + gap, I64_MAX))
            return
        times = rows.timestamps("event_time")
        amounts = rows.f64s("amount")
        ts = times.values
        if times.validity is not None:
            for i, ok in enumerate(times.validity):
                if not ok:
                    raise rows.error_at(i, "`event_time` is null: a session event needs a time")
        am = amounts.values
        if amounts.validity is not None:
            am = [a if ok else 0.0 for a, ok in zip(am, amounts.validity)]
        n = len(ts)
        # sorted() is stable: rows with equal event times keep their arrival order.
        order = sorted(range(n), key=ts.__getitem__) if n > 1 else range(n)

        if state.exists:
            start, last, events, total = state.get()
            is_open = True
        else:
            start = last = events = 0
            total = 0.0
            is_open = False
        key = group.key
        for i in order:
            t = ts[i]
            a = am[i]
            if is_open:
                if t > last + gap:
                    out.append(*key, start, min(last + gap, I64_MAX), events, total)
                    start, last, events, total = t, t, 1, a
                else:
                    if t < start:
                        start = t
                    if t > last:
                        last = t
                    events += 1
                    total += a
            else:
                start, last, events, total = t, t, 1, a
                is_open = True
        state.update((start, last, events, total))
        state.set_timeout_timestamp(min(last + gap, I64_MAX))


WitWorld = w.export_stateful(Sessionize)
