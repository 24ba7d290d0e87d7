//! Byte sizes as Prometheus reads and prints them (`body_size_limit`):
//! binary units only, so `10MB` and `10MiB` are both 10 × 1024².

/// The units of one spelling, smallest first; `B` is shared.
const IEC: [(&str, u64); 7] = [
    ("B", 1),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("TiB", 1 << 40),
    ("PiB", 1 << 50),
    ("EiB", 1 << 60),
];
const SHORT: [(&str, u64); 7] = [
    ("B", 1),
    ("KB", 1 << 10),
    ("MB", 1 << 20),
    ("GB", 1 << 30),
    ("TB", 1 << 40),
    ("PB", 1 << 50),
    ("EB", 1 << 60),
];

/// Parses `512B`, `10MiB`, `1.5GB`, `1MiB512KiB` or `0`. A size mixes units
/// of one spelling only, and a bare number other than 0 is refused, as in
/// Prometheus.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    if text == "0" {
        return Ok(0);
    }
    parse_with(text, &IEC)
        .or_else(|| parse_with(text, &SHORT))
        .ok_or_else(|| format!("invalid size {text:?} (expected e.g. 512B, 10MiB or 1GB)"))
}

fn parse_with(text: &str, units: &[(&str, u64)]) -> Option<u64> {
    let mut rest = text;
    let mut total = 0f64;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let number = &rest[..number_len];
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return None;
        }
        let value: f64 = number.parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let (_, size) = units.iter().find(|(u, _)| *u == &rest[..unit_len])?;
        total += value * *size as f64;
        rest = &rest[unit_len..];
    }
    (total <= i64::MAX as f64).then_some(total as u64)
}

/// Prints like Prometheus: each unit's remainder, largest first, zero parts
/// left out (`1536` → `1KiB512B`).
pub fn format_bytes(mut bytes: u64) -> String {
    if bytes == 0 {
        return "0B".into();
    }
    let mut parts = Vec::new();
    for (unit, _) in IEC {
        let part = bytes % 1024;
        if part != 0 {
            parts.push(format!("{part}{unit}"));
        }
        bytes /= 1024;
        if bytes == 0 {
            break;
        }
    }
    parts.reverse();
    parts.concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_print_like_prometheus() {
        for (text, bytes) in [
            ("0", 0),
            ("512B", 512),
            ("10MiB", 10 << 20),
            ("10MB", 10 << 20),
            ("1.5KB", 1536),
            ("1MiB512KiB", (1 << 20) + (512 << 10)),
        ] {
            assert_eq!(parse_bytes(text), Ok(bytes), "{text}");
        }
        for bad in ["", "10", "1MiB512KB", "10kB", "-1B", "1..5B", "MB"] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
        assert_eq!(format_bytes(1536), "1KiB512B");
        assert_eq!(format_bytes(10 << 20), "10MiB");
        assert_eq!(format_bytes(1000), "1000B");
        assert_eq!(format_bytes((1 << 30) + 1), "1GiB1B");
    }
}
