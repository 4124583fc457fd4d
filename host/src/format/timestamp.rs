//! Timestamps as text: what Spark reads by default, and what its JSON/CSV writers write.

use chrono::{DateTime, NaiveDate, NaiveTime};

/// Parses `2024-01-01T12:00:00Z`, `2024-01-01 12:00:00`, `2024-01-01T12:00`, fractional
/// seconds (digits past the sixth are cut), offsets `Z`, `+02:00`, `+0200`, `+02` or none
/// (UTC), or a date alone (midnight UTC). Returns microseconds since the epoch.
pub fn parse_timestamp_micros(text: &str) -> Option<i64> {
    let s = text.trim().as_bytes();
    let num = |b: &[u8]| -> Option<u32> {
        if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(b).ok()?.parse().ok()
    };
    if s.len() < 10 || s[4] != b'-' || s[7] != b'-' {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(num(&s[0..4])? as i32, num(&s[5..7])?, num(&s[8..10])?)?;
    let mut rest = &s[10..];
    let mut time = NaiveTime::MIN;
    if !rest.is_empty() && (rest[0] == b'T' || rest[0] == b' ') {
        let t = &rest[1..];
        if t.len() < 5 || t[2] != b':' {
            return None;
        }
        let (h, m) = (num(&t[0..2])?, num(&t[3..5])?);
        let mut i = 5;
        let mut sec = 0;
        let mut micros = 0u32;
        if t.len() >= 8 && t[5] == b':' {
            sec = num(&t[6..8])?;
            i = 8;
            if t.len() > 8 && t[8] == b'.' {
                let digits = t[9..].iter().take_while(|c| c.is_ascii_digit()).count();
                if digits == 0 {
                    return None;
                }
                let frac = &t[9..9 + digits];
                let mut us = 0u32;
                for k in 0..6 {
                    us = us * 10 + frac.get(k).map_or(0, |d| (d - b'0') as u32);
                }
                micros = us;
                i = 9 + digits;
            }
        }
        time = NaiveTime::from_hms_micro_opt(h, m, sec, micros)?;
        rest = &t[i..];
    }
    let offset_secs: i64 = match rest {
        [] | [b'Z'] | [b'z'] => 0,
        [sign @ (b'+' | b'-'), tz @ ..] => {
            let (hh, mm) = match tz {
                [a, b] => (num(&[*a, *b])?, 0),
                [a, b, b':', c, d] | [a, b, c, d] => (num(&[*a, *b])?, num(&[*c, *d])?),
                _ => return None,
            };
            if hh > 18 || mm > 59 {
                return None;
            }
            let o = (hh * 3600 + mm * 60) as i64;
            if *sign == b'-' {
                -o
            } else {
                o
            }
        }
        _ => return None,
    };
    Some(date.and_time(time).and_utc().timestamp_micros() - offset_secs * 1_000_000)
}

/// Writes `2024-01-01T12:00:00.000Z` (Spark's default `yyyy-MM-dd'T'HH:mm:ss.SSSXXX`, in UTC),
/// with six fraction digits when the value has sub-millisecond precision.
pub fn format_timestamp_micros(us: i64) -> String {
    match DateTime::from_timestamp_micros(us) {
        Some(t) if us.rem_euclid(1000) == 0 => t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        Some(t) => t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        None => us.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_704_067_200_000_000; // 2024-01-01T00:00:00Z

    #[test]
    fn reads_the_forms_spark_reads() {
        assert_eq!(parse_timestamp_micros("2024-01-01T00:00:00Z"), Some(T0));
        assert_eq!(parse_timestamp_micros("2024-01-01 00:00:00"), Some(T0));
        assert_eq!(parse_timestamp_micros("2024-01-01"), Some(T0));
        assert_eq!(parse_timestamp_micros("2024-01-01T00:01"), Some(T0 + 60_000_000));
        assert_eq!(parse_timestamp_micros("2024-01-01T00:00:00.5Z"), Some(T0 + 500_000));
        assert_eq!(parse_timestamp_micros("2024-01-01T00:00:00.1234567Z"), Some(T0 + 123_456));
        assert_eq!(parse_timestamp_micros("2024-01-01T01:00:00+01:00"), Some(T0));
        assert_eq!(parse_timestamp_micros("2023-12-31T23:00:00-0100"), Some(T0));
        assert_eq!(parse_timestamp_micros("2024-01-01T02:00:00+02"), Some(T0));
    }

    #[test]
    fn refuses_what_is_not_a_timestamp() {
        for bad in [
            "",
            "abc",
            "2024-13-01",
            "2024-01-01T25:00:00",
            "2024-01-01T00:00:00.Z",
            "2024-01-01T00:00:00+5",
            "2024/01/01",
            "2024-01-01T00:00:00 UTC",
        ] {
            assert_eq!(parse_timestamp_micros(bad), None, "{bad}");
        }
    }

    #[test]
    fn writes_milliseconds_or_microseconds() {
        assert_eq!(format_timestamp_micros(T0), "2024-01-01T00:00:00.000Z");
        assert_eq!(format_timestamp_micros(T0 + 500_000), "2024-01-01T00:00:00.500Z");
        assert_eq!(format_timestamp_micros(T0 + 123_456), "2024-01-01T00:00:00.123456Z");
        assert_eq!(format_timestamp_micros(-1_000), "1969-12-31T23:59:59.999Z");
    }
}
