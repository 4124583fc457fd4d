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

#[cfg(test)]
mod tests {
    use crate::config::Job;

    /// Run in both builds (`cargo test` and `cargo test --no-default-features`, which
    /// scripts/test.sh runs too): with the feature the job loads, without it the job is refused
    /// naming the field and the feature.
    #[test]
    fn a_job_needing_a_part_the_binary_lacks_is_refused_naming_the_field() {
        let kafka = "kafka = { \"bootstrap.servers\" = \"127.0.0.1:9\" }";
        let jobs = [
            (
                format!("[source]\nformat = \"kafka\"\nsubscribe = [\"t\"]\n{kafka}\n[sink]\nformat = \"console\"\ncheckpoint = \"c\"\n"),
                "`source.format`",
                "kafka",
                super::KAFKA,
            ),
            (
                format!("[source]\nformat = \"rate\"\n[sink]\nformat = \"kafka\"\ntopic = \"t\"\n{kafka}\ncheckpoint = \"c\"\n"),
                "`sink.format`",
                "kafka",
                super::KAFKA,
            ),
            (
                format!(
                    "[source]\nformat = \"rate\"\n[sink]\nformat = \"foreach_batch\"\nplugin = \"p.wasm\"\ncheckpoint = \"c\"\n\
                     [[sink.output]]\nname = \"o\"\nformat = \"kafka\"\ntopic = \"t\"\n{kafka}\n"
                ),
                "`sink.output[0].format`",
                "kafka",
                super::KAFKA,
            ),
            (
                "state_store = \"rocksdb\"\n[source]\nformat = \"rate\"\n[sink]\nformat = \"console\"\ncheckpoint = \"c\"\n"
                    .to_string(),
                "`state_store`",
                "rocksdb",
                super::ROCKSDB,
            ),
        ];
        let tmp = tempfile::tempdir().unwrap();
        for (i, (text, field, feature, built)) in jobs.iter().enumerate() {
            let file = tmp.path().join(format!("job{i}.toml"));
            std::fs::write(&file, text).unwrap();
            match Job::load(&file) {
                Ok(_) => assert!(built, "{field}: loaded without the `{feature}` feature"),
                Err(e) => {
                    let e = e.to_string();
                    assert!(!built, "{field}: refused with the feature: {e}");
                    assert!(e.contains(field) && e.contains(&format!("needs the `{feature}` cargo feature")), "{e}");
                }
            }
        }
    }
}
