//! The memory cap of one plugin instance, for the whole store: every linear memory and every
//! table the component's core instances create count against one `max_memory` budget, and the
//! number of instances, memories and tables is capped too. wasmtime's own `StoreLimits` caps each
//! memory separately and leaves table elements unlimited, so a component with several memories
//! (or one that grows a table) could take several times its budget.

use wasmtime::ResourceLimiter;

/// What a table element costs against the budget: a function reference is one pointer in the
/// host's table storage.
pub const TABLE_ELEMENT_BYTES: usize = std::mem::size_of::<usize>();

/// How many core instances, memories and tables one plugin store may create: far below
/// wasmtime's default of 10,000 each, and enough for the components this repository builds
/// (Rust through `wasm32-wasip2`, and componentize-py's CPython, the largest: every e2e test
/// runs under these caps).
pub const MAX_INSTANCES: usize = 64;
pub const MAX_MEMORIES: usize = 8;
pub const MAX_TABLES: usize = 32;

/// The budget and what is in use. Held in the store's data; wasmtime asks it before every
/// memory or table is created or grown.
#[derive(Debug)]
pub struct StoreBudget {
    max_bytes: usize,
    used_bytes: usize,
    /// The growth last allowed, taken back if wasmtime then fails to grow.
    last_grant: usize,
}

impl StoreBudget {
    pub fn new(max_bytes: usize) -> StoreBudget {
        StoreBudget { max_bytes, used_bytes: 0, last_grant: 0 }
    }

    /// Bytes of memories and tables the instance holds now.
    pub fn used_bytes(&self) -> usize {
        self.used_bytes
    }

    fn grow(&mut self, what: &str, more: usize) -> wasmtime::Result<bool> {
        match self.used_bytes.checked_add(more) {
            Some(total) if total <= self.max_bytes => {
                self.used_bytes = total;
                self.last_grant = more;
                Ok(true)
            }
            _ => Err(wasmtime::Error::new(MemoryLimitHit {
                limit: self.max_bytes,
                used: self.used_bytes,
                asked: more,
                what: what.to_string(),
            })),
        }
    }

    fn grow_failed(&mut self) {
        self.used_bytes -= self.last_grant.min(self.used_bytes);
        self.last_grant = 0;
    }
}

/// The trap raised when an instance would pass its budget; `classify_abort` recognises it.
#[derive(Debug)]
pub struct MemoryLimitHit {
    pub limit: usize,
    pub used: usize,
    pub asked: usize,
    pub what: String,
}

impl std::fmt::Display for MemoryLimitHit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "growing a {} by {} bytes would pass the instance's memory limit of {} MiB ({} bytes of memories and tables in use)",
            self.what,
            self.asked,
            self.limit >> 20,
            self.used
        )
    }
}

impl std::error::Error for MemoryLimitHit {}

/// The trap that stops a batch-sink plugin whose emits pass `max_emit_bytes` (one call, all
/// outputs together); `classify_abort` names the limit.
#[derive(Debug)]
pub struct EmitLimitHit {
    pub max_bytes: usize,
}

impl std::fmt::Display for EmitLimitHit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "emitted more than {} MiB in one call", self.max_bytes >> 20)
    }
}

impl std::error::Error for EmitLimitHit {}

impl ResourceLimiter for StoreBudget {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        self.grow("memory", desired.saturating_sub(current))
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.grow_failed();
        Ok(())
    }

    fn table_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        self.grow("table", desired.saturating_sub(current).saturating_mul(TABLE_ELEMENT_BYTES))
    }

    fn table_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.grow_failed();
        Ok(())
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::{Config, Engine, Instance, Module, Store};

    fn engine() -> Engine {
        Engine::new(Config::new().wasm_multi_memory(true)).unwrap()
    }

    fn store(engine: &Engine, max: usize) -> Store<StoreBudget> {
        let mut store = Store::new(engine, StoreBudget::new(max));
        store.limiter(|b| b);
        store
    }

    /// A core module of `sections` (id, content), hand-encoded: the host has no WAT parser.
    fn module(sections: &[(u8, Vec<u8>)]) -> Vec<u8> {
        let mut m = b"\0asm\x01\0\0\0".to_vec();
        for (id, content) in sections {
            m.push(*id);
            m.push(u8::try_from(content.len()).unwrap());
            m.extend_from_slice(content);
        }
        m
    }

    /// `n` memories of `pages` pages each (`pages` < 128).
    fn memories(n: u8, pages: u8) -> Vec<u8> {
        let mut content = vec![n];
        for _ in 0..n {
            content.extend_from_slice(&[0x00, pages]);
        }
        module(&[(5, content)])
    }

    #[test]
    fn all_memories_of_a_store_share_one_budget() {
        // Two memories of 40 pages (2.5 MiB) each: one fits a 4 MiB budget, both do not, although
        // each alone is under it (wasmtime's per-memory cap would have let both in).
        let engine = engine();
        let module = Module::new(&engine, memories(2, 40)).unwrap();
        let mut s = store(&engine, 4 << 20);
        let err = Instance::new(&mut s, &module, &[]).unwrap_err();
        let hit = format!("{err:?}");
        assert!(hit.contains("memory limit of 4 MiB"), "{hit}");
        let mut s = store(&engine, 6 << 20);
        Instance::new(&mut s, &module, &[]).unwrap();
        assert_eq!(s.data().used_bytes(), 80 * 65536);
    }

    #[test]
    fn table_elements_count_against_the_budget() {
        // (table 0 funcref) (func (export "grow") (result i32)
        //    (table.grow 0 (ref.null func) (i32.const 1000000)))
        // A million more elements is 8 MB of host memory: past a 4 MiB budget.
        let engine = engine();
        let wasm = module(&[
            (1, vec![0x01, 0x60, 0x00, 0x01, 0x7f]),
            (3, vec![0x01, 0x00]),
            (4, vec![0x01, 0x70, 0x00, 0x00]),
            (7, vec![0x01, 0x04, b'g', b'r', b'o', b'w', 0x00, 0x00]),
            (10, vec![0x01, 0x0b, 0x00, 0xd0, 0x70, 0x41, 0xc0, 0x84, 0x3d, 0xfc, 0x0f, 0x00, 0x0b]),
        ]);
        let module = Module::new(&engine, wasm).unwrap();
        let mut s = store(&engine, 4 << 20);
        let instance = Instance::new(&mut s, &module, &[]).unwrap();
        let grow = instance.get_typed_func::<(), i32>(&mut s, "grow").unwrap();
        let err = grow.call(&mut s, ()).unwrap_err();
        assert!(format!("{err:?}").contains("growing a table by 8000000 bytes"), "{err:?}");
        // Under a larger budget the same growth is allowed.
        let mut s = store(&engine, 16 << 20);
        let instance = Instance::new(&mut s, &module, &[]).unwrap();
        let grow = instance.get_typed_func::<(), i32>(&mut s, "grow").unwrap();
        assert_eq!(grow.call(&mut s, ()).unwrap(), 0, "table.grow returns the old size");
    }

    #[test]
    fn more_memories_than_allowed_are_refused() {
        let engine = engine();
        let module = Module::new(&engine, memories(MAX_MEMORIES as u8 + 1, 0)).unwrap();
        let mut s = store(&engine, 1 << 30);
        assert!(Instance::new(&mut s, &module, &[]).is_err());
        let module = Module::new(&engine, memories(MAX_MEMORIES as u8, 0)).unwrap();
        let mut s = store(&engine, 1 << 30);
        Instance::new(&mut s, &module, &[]).unwrap();
    }
}
