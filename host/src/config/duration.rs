//! Prometheus/Go durations: `30s`, `1m30s`, `1h`, `500ms`, `2d`, `1w`, `1y`.

use std::time::Duration;

/// Prometheus's duration units in milliseconds, largest first.
const UNITS: [(&str, u64); 7] = [
    ("y", 365 * 24 * 3600 * 1000),
    ("w", 7 * 24 * 3600 * 1000),
    ("d", 24 * 3600 * 1000),
    ("h", 3600 * 1000),
    ("m", 60 * 1000),
    ("s", 1000),
    ("ms", 1),
];

/// Parses a Prometheus duration (units `y w d h m s ms`, largest first, each
/// at most once). Go's `time.ParseDuration` forms that Prometheus rejects
/// (`1.5s`, `µs`) are refused too.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.is_empty() {
        return Err("empty duration".into());
    }
    let bad = || format!("invalid duration {text:?} (expected e.g. 30s, 1m30s, 500ms)");
    let mut rest = text;
    let mut total_ms: u64 = 0;
    let mut last_unit = 0usize;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let value: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        let position = UNITS.iter().position(|(u, _)| *u == unit).ok_or_else(bad)?;
        if position < last_unit || (position == last_unit && total_ms > 0) {
            return Err(bad());
        }
        last_unit = position;
        total_ms =
            value.checked_mul(UNITS[position].1).and_then(|v| v.checked_add(total_ms)).ok_or_else(bad)?;
        rest = &rest[unit_len..];
    }
    Ok(Duration::from_millis(total_ms))
}

/// Formats like Prometheus does: the largest units first, zero parts left
/// out, and years and weeks only when they divide the whole (`90d`, not
/// `12w6d`).
pub fn format_duration(duration: Duration) -> String {
    let mut ms = duration.as_millis() as u64;
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in UNITS {
        let whole_only = matches!(unit, "y" | "w");
        if ms >= size && (!whole_only || ms.is_multiple_of(size)) {
            out.push_str(&format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats_prometheus_durations() {
        for (text, ms) in [
            ("30s", 30_000),
            ("1m30s", 90_000),
            ("500ms", 500),
            ("1h", 3_600_000),
            ("0", 0),
            ("2d", 172_800_000),
        ] {
            assert_eq!(parse_duration(text), Ok(Duration::from_millis(ms)), "{text}");
        }
        for bad in ["", "1.5s", "s", "10", "1s1m", "1x", "-1s", "1s1s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::from_secs(60)), "1m");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1s500ms");
        assert_eq!(format_duration(Duration::ZERO), "0s");
        assert_eq!(format_duration(Duration::from_secs(90 * 86400)), "90d");
        assert_eq!(format_duration(Duration::from_secs(14 * 86400)), "2w");
        assert_eq!(format_duration(Duration::from_secs(8 * 86400 + 1)), "8d1s");
    }
}
