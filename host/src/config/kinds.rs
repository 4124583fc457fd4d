//! The names a job file chooses from — operator kinds, source, sink and output formats — and
//! the accepted trigger forms. They are checked on the TOML as written, before the typed parse,
//! so that a mistyped kind is reported first, with the known ones, instead of a complaint about
//! a field that only the intended kind takes (the typed structs refuse unknown fields).

use std::path::Path;

use super::JobError;

pub const OPERATOR_KINDS: &[&str] = &["map", "stateful", "dedup", "aggregate", "join"];
pub const SOURCE_FORMATS: &[&str] = &["json", "csv", "parquet", "rate", "kafka"];
/// The formats of a static table (`static = true`): it is read from files.
pub const STATIC_FORMATS: &[&str] = &["json", "csv", "parquet"];
pub const SINK_FORMATS: &[&str] =
    &["parquet", "json", "csv", "console", "kafka", "delta", "postgres", "foreach_batch", "foreach"];
pub const OUTPUT_FORMATS: &[&str] = &["parquet", "json", "csv", "console", "kafka", "delta", "postgres"];
/// The forms of `sink.trigger`, as a user writes them.
pub const TRIGGER_FORMS: &str = "trigger = { processing_time = \"1 second\" }, trigger = { once = true }, trigger = { available_now = true } or trigger = { continuous = \"1 second\" }";

pub(super) fn quoted(names: &[&str]) -> String {
    names.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", ")
}

/// Checks the kinds, formats and trigger of the job text, if it is a TOML table (a syntax error
/// is left to the typed parse, which reports its position).
pub fn check(file: &Path, text: &str) -> Result<(), JobError> {
    let Ok(doc) = toml::from_str::<toml::Table>(text) else { return Ok(()) };
    let err = |field: String, message: String| JobError::Field { file: file.to_path_buf(), field, message };
    let named = |table: &toml::Value, key: &str, at: String, what: &str, known: &[&str]| -> Result<(), JobError> {
        match table.get(key) {
            Some(toml::Value::String(v)) if !known.contains(&v.as_str()) => {
                Err(err(format!("{at}.{key}"), format!("unknown {what} {v:?}; allowed: {}", quoted(known))))
            }
            None if table.is_table() => {
                Err(err(format!("{at}.{key}"), format!("is required: one of {}", quoted(known))))
            }
            _ => Ok(()),
        }
    };
    // A static table is read from files: its format is one of those, whatever a stream may read.
    let source = |s: &toml::Value, at: String| -> Result<(), JobError> {
        if s.get("static") != Some(&toml::Value::Boolean(true)) {
            return named(s, "format", at, "format", SOURCE_FORMATS);
        }
        match s.get("format") {
            Some(toml::Value::String(v)) if !STATIC_FORMATS.contains(&v.as_str()) => Err(err(
                format!("{at}.format"),
                format!(
                    "{v:?} is not a format of a static table, which is read from files; allowed: {}",
                    quoted(STATIC_FORMATS)
                ),
            )),
            None => Err(err(format!("{at}.format"), format!("is required: one of {}", quoted(STATIC_FORMATS)))),
            _ => Ok(()),
        }
    };
    match doc.get("source") {
        Some(s @ toml::Value::Table(_)) => source(s, "source".into())?,
        Some(toml::Value::Array(list)) => {
            for (i, s) in list.iter().enumerate() {
                source(s, format!("source[{i}]"))?;
            }
        }
        _ => {}
    }
    if let Some(toml::Value::Array(ops)) = doc.get("operator") {
        for (i, op) in ops.iter().enumerate() {
            named(op, "kind", format!("operator[{i}]"), "operator kind", OPERATOR_KINDS)?;
        }
    }
    if let Some(sink @ toml::Value::Table(t)) = doc.get("sink") {
        named(sink, "format", "sink".into(), "format", SINK_FORMATS)?;
        if let Some(toml::Value::Array(outputs)) = t.get("output") {
            for (i, o) in outputs.iter().enumerate() {
                named(o, "format", format!("sink.output[{i}]"), "format", OUTPUT_FORMATS)?;
            }
        }
        if let Some(trigger) = t.get("trigger") {
            trigger_form(trigger).map_err(|m| err("sink.trigger".into(), format!("{m}; write {TRIGGER_FORMS}")))?;
        }
    }
    Ok(())
}

/// Whether `trigger` has one of the accepted shapes (its values are checked later).
fn trigger_form(trigger: &toml::Value) -> Result<(), String> {
    let toml::Value::Table(t) = trigger else {
        return Err(format!("{trigger} is not a trigger"));
    };
    for (k, v) in t {
        let fits = match k.as_str() {
            "processing_time" | "continuous" => v.is_str(),
            "once" | "available_now" => v.is_bool(),
            _ => return Err(format!("unknown trigger `{k}`")),
        };
        if !fits {
            return Err(format!("`{k} = {v}` is not a trigger"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_text(text: &str) -> Result<(), String> {
        check(Path::new("job.toml"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn an_unknown_kind_is_named_with_the_known_ones() {
        let e =
            check_text("[source]\nformat = \"rate\"\n[[operator]]\nkind = \"filter\"\nexpr = \"x > 1\"\n").unwrap_err();
        assert_eq!(
            e,
            "job file job.toml: `operator[0].kind`: unknown operator kind \"filter\"; allowed: \"map\", \"stateful\", \"dedup\", \"aggregate\", \"join\""
        );
        let e =
            check_text("[[source]]\nformat = \"json\"\n[[source]]\nformat = \"xml\"\nrow_tag = \"r\"\n").unwrap_err();
        assert!(e.contains("`source[1].format`: unknown format \"xml\"; allowed: \"json\""), "{e}");
        let e = check_text("[sink]\nformat = \"iceberg\"\ntable = \"t\"\n").unwrap_err();
        assert!(e.contains("`sink.format`: unknown format \"iceberg\"; allowed: \"parquet\""), "{e}");
        let e = check_text("[sink]\nformat = \"foreach_batch\"\n[[sink.output]]\nformat = \"foreach\"\n").unwrap_err();
        assert!(e.contains("`sink.output[0].format`: unknown format \"foreach\""), "{e}");
        let e = check_text("[[operator]]\nplugin = \"a.wasm\"\n").unwrap_err();
        assert!(e.contains("`operator[0].kind`: is required: one of \"map\""), "{e}");
        for kind in OPERATOR_KINDS {
            check_text(&format!("[[operator]]\nkind = \"{kind}\"\n")).unwrap();
        }
    }

    #[test]
    fn a_static_table_is_read_from_files() {
        let e = check_text("[[source]]\nname = \"t\"\nstatic = true\nformat = \"rate\"\n").unwrap_err();
        assert_eq!(
            e,
            "job file job.toml: `source[0].format`: \"rate\" is not a format of a static table, which is read from files; allowed: \"json\", \"csv\", \"parquet\""
        );
        let e = check_text("[[source]]\nname = \"t\"\nstatic = true\n").unwrap_err();
        assert!(e.ends_with("`source[0].format`: is required: one of \"json\", \"csv\", \"parquet\""), "{e}");
        for format in STATIC_FORMATS {
            check_text(&format!("[[source]]\nstatic = true\nformat = \"{format}\"\n")).unwrap();
        }
        // Not static: the streaming formats.
        check_text("[[source]]\nstatic = false\nformat = \"rate\"\n").unwrap();
    }

    #[test]
    fn a_mistyped_trigger_lists_the_accepted_forms() {
        for trigger in [
            "\"once\"",
            "{ once = \"yes\" }",
            "{ processing = \"1 second\" }",
            "{ processing_time = 5 }",
            "{ continuous = true }",
        ] {
            let e = check_text(&format!("[sink]\nformat = \"console\"\ntrigger = {trigger}\n")).unwrap_err();
            assert!(e.starts_with("job file job.toml: `sink.trigger`: "), "{e}");
            assert!(e.ends_with(&format!("; write {TRIGGER_FORMS}")), "{e}");
            assert!(!e.contains("TriggerSpec"), "{e}");
        }
        check_text("[sink]\nformat = \"console\"\ntrigger = { available_now = true }\n").unwrap();
        check_text("[sink]\nformat = \"console\"\ntrigger = { continuous = \"1 second\" }\n").unwrap();
    }
}
