//! Parsing a strategy's options.
//!
//! Options arrive as JSON text (the host converts the YAML under
//! `allocation_strategy_config.<name>`), or as an empty string when the user
//! configured none.

use serde::de::DeserializeOwned;

/// Parses `options` into `T`, using `T::default()` for empty options. Errors
/// name the problem and its position, e.g. `unknown field `rign`, expected one
/// of `ring_format`, ... at line 1 column 7` (use `#[serde(deny_unknown_fields)]`
/// on `T` so typos are caught).
pub fn parse<T: DeserializeOwned + Default>(options: &str) -> Result<T, String> {
    if options.trim().is_empty() || options.trim() == "null" {
        return Ok(T::default());
    }
    serde_json::from_str(options).map_err(|e| format!("invalid options: {e}"))
}

#[cfg(test)]
mod tests {
    #[derive(serde::Deserialize, Default, Debug, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Opts {
        #[serde(default)]
        size: u32,
    }

    #[test]
    fn parses_defaults_values_and_reports_typos() {
        assert_eq!(super::parse::<Opts>(""), Ok(Opts { size: 0 }));
        assert_eq!(super::parse::<Opts>("null"), Ok(Opts { size: 0 }));
        assert_eq!(super::parse::<Opts>(r#"{"size": 3}"#), Ok(Opts { size: 3 }));
        let err = super::parse::<Opts>(r#"{"sise": 3}"#).unwrap_err();
        assert!(err.contains("unknown field `sise`"), "{err}");
    }
}
