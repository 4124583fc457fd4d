//! A running count of rows per key. Config: `timeout_ms` (a processing-time timeout set on
//! every call with rows; 0: none) and `ttl_ms` (the state's time-to-live; 0: none). Output per
//! call: the key, `count` (the key's count after the call) and `why` ("rows" or "timeout"; a
//! timed-out key's state is removed). Hostile on purpose by key: a key "panic" panics, a key
//! "spin" loops forever (for the error-policy tests).
//!
//! Built with COUNTER_STATE=2 it keeps its state in another format (state version 2: the count
//! times ten) and migrates version-1 state (for the hot-swap tests).

use std::time::Duration;

use weir_guest::prelude::*;

/// State version 2: the count is stored times ten.
const STATE_V2: bool = match option_env!("COUNTER_STATE") {
    Some(v) => v.len() == 1 && v.as_bytes()[0] == b'2',
    None => false,
};
const SCALE: i64 = if STATE_V2 { 10 } else { 1 };

struct Counter {
    timeout: Option<Duration>,
    ttl: Option<Duration>,
}

impl StatefulProcessor for Counter {
    type State = i64;

    fn init(config: &Config) -> Result<Self, String> {
        config.reject_unknown(&["timeout_ms", "ttl_ms"])?;
        let ms = |k: &str| -> Result<Option<Duration>, String> {
            let v = config.get_i64(k, 0)?;
            Ok((v > 0).then(|| Duration::from_millis(v as u64)))
        };
        Ok(Counter { timeout: ms("timeout_ms")?, ttl: ms("ttl_ms")? })
    }

    fn state_version(&self) -> u32 {
        if STATE_V2 {
            2
        } else {
            1
        }
    }

    fn migrate_state(&self, from_version: u32, state: Vec<u8>) -> Result<Vec<u8>, String> {
        match (self.state_version(), from_version) {
            (2, 1) => weir_guest::encode_state(&(weir_guest::decode_state::<i64>(&state)? * 10)),
            (to, from) => Err(format!("counter: no migration from state version {from} to {to}")),
        }
    }

    fn output_schema(&self, key: &Schema, _input: &Schema) -> Result<Schema, String> {
        key.try_with(Field::new("count", DataType::Int64, false))?.try_with(Field::new("why", DataType::Utf8, false))
    }

    fn process_group(
        &mut self,
        group: &Group<'_>,
        state: &mut GroupState<i64>,
        out: &mut OutputRows,
    ) -> Result<(), BatchError> {
        match group.key().str("user_id")? {
            Some("panic") => panic!("counter: asked to panic by key"),
            Some("spin") => loop {
                std::hint::black_box(0);
            },
            _ => {}
        }
        let before = state.get().copied().unwrap_or(0) / SCALE;
        if state.has_timed_out() {
            out.row().keys(group).i64(before).str("timeout");
            state.remove();
            return Ok(());
        }
        let count = before + group.num_rows() as i64;
        out.row().keys(group).i64(count).str("rows");
        state.update(count * SCALE);
        if let Some(t) = self.timeout {
            state.set_timeout_duration(t);
        }
        if let Some(t) = self.ttl {
            state.set_ttl(t);
        }
        Ok(())
    }
}

weir_guest::export_stateful!(Counter);
