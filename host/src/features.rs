//! What this binary was built with. RocksDB and Kafka are cargo features, both on by default;
//! a build without them (scripts/demo.sh's) skips compiling RocksDB's C++ and librdkafka, the
//! slowest parts of a fresh build. A job that needs a part the binary lacks is refused when it
//! is checked, naming the field and the feature.

/// Whether the Kafka source, sink and outputs (and scale-out by consumer group) are built in.
pub const KAFKA: bool = cfg!(feature = "kafka");
/// Whether the RocksDB state store is built in.
pub const ROCKSDB: bool = cfg!(feature = "rocksdb");

/// The message for a job that needs `feature`, which this binary was built without.
pub fn not_built(feature: &str) -> String {
    format!(
        "needs the `{feature}` cargo feature, and this weir binary was built without it: rebuild with \
         `cargo build --release -p weir-host --features {feature}` (`kafka` and `rocksdb` are on by \
         default; scripts/demo.sh builds without them to get to the first batch sooner)"
    )
}
