//! The operator's `config` string, parsed as `key=value` pairs.

use std::fmt::Display;
use std::str::FromStr;

/// The operator's `config` string from the job file, parsed into `key=value` pairs.
///
/// Pairs are separated by `,` or newlines; spaces around keys and values are ignored, as are
/// empty entries, so `"tax_rate=0.2, region = eu"` and a multi-line TOML string both work.
/// A value cannot contain `,` or a newline; use [`Config::raw`] and parse it yourself if you need
/// another format. The Python helper (`guest-sdk/python/weir_guest.py`) parses the same way.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    raw: String,
    pairs: Vec<(String, String)>,
}

impl Config {
    /// Parses `raw`. Fails, naming the entry, when an entry has no `=` or an empty key, or when a
    /// key is given twice (a typo is more likely than a wish for the last one to win).
    pub fn parse(raw: &str) -> Result<Config, String> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for entry in raw.split([',', '\n']) {
            let entry = entry.trim();
            if entry.is_empty() {
                continue;
            }
            let Some((key, value)) = entry.split_once('=') else {
                return Err(format!("config entry `{entry}` is not `key=value`"));
            };
            let (key, value) = (key.trim(), value.trim());
            if key.is_empty() {
                return Err(format!("config entry `{entry}` has an empty key"));
            }
            if pairs.iter().any(|(k, _)| k == key) {
                return Err(format!("config key `{key}` is given twice"));
            }
            pairs.push((key.to_string(), value.to_string()));
        }
        Ok(Config { raw: raw.to_string(), pairs })
    }

    /// The string exactly as the job file gave it, for plugins with a format of their own.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// The parsed pairs, in the order given: to list or check keys.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The value of `key`, or `None` when absent.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// The value of `key`, or `default` when absent.
    pub fn get_str<'a>(&'a self, key: &str, default: &'a str) -> &'a str {
        self.get(key).unwrap_or(default)
    }

    /// The value of `key`, or an error naming the missing key.
    pub fn require(&self, key: &str) -> Result<&str, String> {
        self.get(key).ok_or_else(|| format!("config key `{key}` is required"))
    }

    /// `key` as a float (Rust's `f64` syntax: `0.2`, `1e-3`, `-inf`), or `default` when absent.
    pub fn get_f64(&self, key: &str, default: f64) -> Result<f64, String> {
        self.get_parsed(key, default, "a number")
    }

    /// `key` as a signed 64-bit integer, or `default` when absent.
    pub fn get_i64(&self, key: &str, default: i64) -> Result<i64, String> {
        self.get_parsed(key, default, "an integer")
    }

    /// `key` as a signed 32-bit integer, or `default` when absent.
    pub fn get_i32(&self, key: &str, default: i32) -> Result<i32, String> {
        self.get_parsed(key, default, "a 32-bit integer")
    }

    /// `key` as a boolean (`true` or `false`), or `default` when absent.
    pub fn get_bool(&self, key: &str, default: bool) -> Result<bool, String> {
        self.get_parsed(key, default, "`true` or `false`")
    }

    /// Fails, naming the first unknown key and listing the known ones, when a key outside `known`
    /// is given: catches typos in job files that would otherwise silently use a default.
    pub fn reject_unknown(&self, known: &[&str]) -> Result<(), String> {
        match self.pairs.iter().find(|(k, _)| !known.contains(&k.as_str())) {
            Some((k, _)) => Err(format!("unknown config key `{k}` (known keys: {})", known.join(", "))),
            None => Ok(()),
        }
    }

    fn get_parsed<T: FromStr + Display>(&self, key: &str, default: T, what: &str) -> Result<T, String> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| format!("config key `{key}`: `{v}` is not {what}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_split_on_commas_and_newlines_and_trim() {
        let c = Config::parse(" tax_rate = 0.25 ,region=eu\n\n  limit=3 ,").unwrap();
        assert_eq!(c.get("tax_rate"), Some("0.25"));
        assert_eq!(c.get("region"), Some("eu"));
        assert_eq!(c.get_i64("limit", 0), Ok(3));
        assert_eq!(c.pairs().count(), 3);
        assert_eq!(c.raw(), " tax_rate = 0.25 ,region=eu\n\n  limit=3 ,");
    }

    #[test]
    fn empty_config_has_no_pairs_and_defaults_apply() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.get_f64("tax_rate", 0.2), Ok(0.2));
        assert_eq!(c.get_bool("x", true), Ok(true));
        assert_eq!(c.get_str("mode", "fast"), "fast");
    }

    #[test]
    fn bad_entries_and_values_are_named() {
        assert_eq!(Config::parse("a=1,oops").unwrap_err(), "config entry `oops` is not `key=value`");
        assert_eq!(Config::parse("=1").unwrap_err(), "config entry `=1` has an empty key");
        assert_eq!(Config::parse("a=1,a=2").unwrap_err(), "config key `a` is given twice");
        let c = Config::parse("tax_rate=abc,flag=yes").unwrap();
        assert_eq!(c.get_f64("tax_rate", 0.2).unwrap_err(), "config key `tax_rate`: `abc` is not a number");
        assert_eq!(c.get_bool("flag", false).unwrap_err(), "config key `flag`: `yes` is not `true` or `false`");
        assert_eq!(c.require("other").unwrap_err(), "config key `other` is required");
    }

    #[test]
    fn values_may_contain_equals_signs() {
        let c = Config::parse("expr=a=b").unwrap();
        assert_eq!(c.get("expr"), Some("a=b"));
    }

    #[test]
    fn unknown_keys_are_rejected_when_asked() {
        let c = Config::parse("tax_rte=0.3").unwrap();
        assert_eq!(c.reject_unknown(&["tax_rate"]).unwrap_err(), "unknown config key `tax_rte` (known keys: tax_rate)");
        assert!(Config::parse("tax_rate=1").unwrap().reject_unknown(&["tax_rate"]).is_ok());
    }
}
