use std::time::Duration;

/// Parses a duration as Spark writes intervals: `"10 minutes"`, `"1 second"`, `"500 ms"`,
/// `"2s"`, `"1.5 hours"`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num.parse().map_err(|_| {
        format!("{text:?} is not a duration; write a number and a unit, e.g. \"10 seconds\" or \"500 ms\"")
    })?;
    let unit_secs = match unit.trim().to_ascii_lowercase().as_str() {
        "ms" | "millisecond" | "milliseconds" => 0.001,
        "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
        "m" | "min" | "mins" | "minute" | "minutes" => 60.0,
        "h" | "hour" | "hours" => 3600.0,
        "d" | "day" | "days" => 86400.0,
        "" => return Err(format!("{text:?} has no unit; add one of ms, seconds, minutes, hours, days")),
        u => return Err(format!("{text:?}: unknown unit `{u}`; use ms, seconds, minutes, hours or days")),
    };
    Duration::try_from_secs_f64(value * unit_secs).map_err(|_| format!("{text:?} is too long a duration"))
}

/// Parses a duration that may be negative, as a join's `time_range` bounds are (`"-5 minutes"`,
/// `"0 seconds"`, `"+1 hour"`), into microseconds: the unit of event times.
pub fn parse_signed_duration(text: &str) -> Result<i64, String> {
    let t = text.trim();
    let (negative, rest) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let d = parse_duration(rest).map_err(|e| e.replace(&format!("{rest:?}"), &format!("{text:?}")))?;
    let micros = i64::try_from(d.as_micros()).map_err(|_| format!("{text:?} is too long a duration"))?;
    Ok(if negative { -micros } else { micros })
}

/// Parses a byte size: `"64 MiB"`, `"1 GiB"`, `"512 KiB"`, `"1000000"` (bytes).
pub fn parse_size(text: &str) -> Result<usize, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: usize = num.parse().map_err(|_| format!("{text:?} is not a size; write e.g. \"64 MiB\""))?;
    let mult: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" | "bytes" => 1,
        "kib" | "kb" | "k" => 1 << 10,
        "mib" | "mb" | "m" => 1 << 20,
        "gib" | "gb" | "g" => 1 << 30,
        u => return Err(format!("{text:?}: unknown unit `{u}`; use bytes, KiB, MiB or GiB")),
    };
    value.checked_mul(mult).ok_or_else(|| format!("{text:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_spark_spelling() {
        assert_eq!(parse_duration("1 second").unwrap(), Duration::from_secs(1));
        assert_eq!(parse_duration("10 minutes").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_duration("500 ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert!(parse_duration("ten seconds").unwrap_err().contains("not a duration"));
        assert!(parse_duration("10 fortnights").unwrap_err().contains("unknown unit `fortnights`"));
        assert!(parse_duration("10").unwrap_err().contains("no unit"));
        assert!(parse_duration("-5 minutes").unwrap_err().contains("not a duration"), "negative: only the signed form");
        assert!(parse_duration("1e300 days").is_err());
        assert!(parse_duration("99999999999999999999999 days").unwrap_err().contains("too long"));
    }

    #[test]
    fn signed_durations_in_microseconds() {
        assert_eq!(parse_signed_duration("-5 minutes").unwrap(), -300_000_000);
        assert_eq!(parse_signed_duration("- 5 minutes").unwrap(), -300_000_000);
        assert_eq!(parse_signed_duration("1 hour").unwrap(), 3_600_000_000);
        assert_eq!(parse_signed_duration("+500 ms").unwrap(), 500_000);
        assert_eq!(parse_signed_duration("0 seconds").unwrap(), 0);
        assert_eq!(parse_signed_duration("-0 seconds").unwrap(), 0);
        let e = parse_signed_duration("-ten minutes").unwrap_err();
        assert!(e.starts_with("\"-ten minutes\" is not a duration"), "{e}");
        assert!(parse_signed_duration("--5 minutes").is_err());
        assert!(parse_signed_duration("-5").unwrap_err().contains("no unit"));
        assert!(parse_signed_duration("99999999999999 days").unwrap_err().contains("too long"));
    }

    #[test]
    fn sizes_in_binary_units() {
        assert_eq!(parse_size("64 MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("1GiB").unwrap(), 1 << 30);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("lots").is_err());
    }
}
