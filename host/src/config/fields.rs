//! Reading one mapping of a Prometheus config the way Prometheus's YAML
//! decoder reads it into a Go struct, so that what is printed back is what
//! Prometheus would print.
//!
//! Go semantics kept on purpose: an explicit `null` is the field's zero value
//! (`false`, `""`, `0`; "unset" for lists, maps and sections), and a scalar
//! read into a string field is taken as its text. Keys nobody reads are
//! reported, because the reference drops them silently.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::{Map, Value};

use super::bytes::parse_bytes;
use super::duration::parse_duration;

/// A config key that cannot be accepted, with its full path.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{key}`: {message}")]
pub struct KeyError {
    pub key: String,
    pub message: String,
}

impl KeyError {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> KeyError {
        KeyError { key: key.into(), message: message.into() }
    }
}

/// A mapping being read; remembers which keys were asked for.
pub struct Fields<'a> {
    map: &'a Map<String, Value>,
    path: String,
    read: BTreeSet<&'a str>,
}

impl<'a> Fields<'a> {
    pub fn new(value: &'a Value, path: &str) -> Result<Fields<'a>, KeyError> {
        match value {
            Value::Object(map) => Ok(Fields { map, path: path.to_string(), read: BTreeSet::new() }),
            _ => Err(KeyError::new(path, "must be a mapping")),
        }
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn key_path(&self, key: &str) -> String {
        format!("{}.{key}", self.path)
    }

    pub fn error(&self, key: &str, message: impl Into<String>) -> KeyError {
        KeyError::new(self.key_path(key), message)
    }

    /// The raw value, marking the key as known.
    pub fn raw(&mut self, key: &str) -> Option<&'a Value> {
        let (key, value) = self.map.get_key_value(key)?;
        self.read.insert(key);
        Some(value)
    }

    /// Every key of the mapping, for sections whose keys are data.
    pub fn keys(&self) -> impl Iterator<Item = &'a String> + use<'a> {
        self.map.keys()
    }

    /// Done reading: adds the keys no reader asked for, as full paths.
    pub fn finish(self, ignored: &mut Vec<String>) {
        ignored.extend(self.map.keys().filter(|k| !self.read.contains(k.as_str())).map(|k| self.key_path(k)));
    }

    pub fn string(&mut self, key: &str) -> Result<Option<String>, KeyError> {
        match self.raw(key) {
            None => Ok(None),
            Some(value) => scalar_text(value).map(Some).ok_or_else(|| self.error(key, "must be a string")),
        }
    }

    pub fn boolean(&mut self, key: &str) -> Result<Option<bool>, KeyError> {
        match self.raw(key) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(false)),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(self.error(key, format!("must be true or false, got {other}"))),
        }
    }

    /// `None` when absent or `null`: Prometheus's optional booleans.
    pub fn optional_boolean(&mut self, key: &str) -> Result<Option<bool>, KeyError> {
        match self.raw(key) {
            Some(Value::Null) => Ok(None),
            _ => self.boolean(key),
        }
    }

    pub fn uint(&mut self, key: &str) -> Result<Option<u64>, KeyError> {
        match self.raw(key) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(0)),
            Some(value) => value
                .as_u64()
                .map(Some)
                .ok_or_else(|| self.error(key, format!("must be a non-negative integer, got {value}"))),
        }
    }

    pub fn float(&mut self, key: &str) -> Result<Option<f64>, KeyError> {
        match self.raw(key) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(0.0)),
            Some(value) => value
                .as_f64()
                .map(Some)
                .ok_or_else(|| self.error(key, format!("must be a number, got {value}"))),
        }
    }

    /// A Prometheus duration; zero (also from `null` or `0`) means unset.
    pub fn duration(&mut self, key: &str) -> Result<Option<Duration>, KeyError> {
        match self.raw(key) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => {
                let text = scalar_text(value)
                    .ok_or_else(|| self.error(key, format!("must be a duration such as 30s, got {value}")))?;
                let duration = parse_duration(&text).map_err(|e| self.error(key, e))?;
                Ok((!duration.is_zero()).then_some(duration))
            }
        }
    }

    /// A byte size such as `10MiB`; Prometheus wants a unit (`0` aside).
    pub fn bytes(&mut self, key: &str) -> Result<Option<u64>, KeyError> {
        match self.raw(key) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(0)),
            Some(value) => {
                let text = scalar_text(value)
                    .ok_or_else(|| self.error(key, format!("must be a size such as 10MiB, got {value}")))?;
                parse_bytes(&text).map(Some).map_err(|e| self.error(key, e))
            }
        }
    }

    /// A list of strings; `None` when absent or `null` (Go's nil slice).
    pub fn strings(&mut self, key: &str) -> Result<Option<Vec<String>>, KeyError> {
        match self.raw(key) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => {
                string_list(value).map(Some).ok_or_else(|| self.error(key, "must be a list of strings"))
            }
        }
    }

    /// A mapping of strings to strings.
    pub fn string_map(&mut self, key: &str) -> Result<Option<BTreeMap<String, String>>, KeyError> {
        match self.raw(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(map)) => map
                .iter()
                .map(|(k, v)| scalar_text(v).map(|v| (k.clone(), v)))
                .collect::<Option<_>>()
                .map(Some)
                .ok_or_else(|| self.error(key, "must map names to strings")),
            Some(_) => Err(self.error(key, "must map names to strings")),
        }
    }

    /// A mapping of strings to lists of strings (`params`, headers).
    pub fn string_lists(&mut self, key: &str) -> Result<Option<BTreeMap<String, Vec<String>>>, KeyError> {
        match self.raw(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(map)) => map
                .iter()
                .map(|(k, v)| string_list(v).map(|v| (k.clone(), v)))
                .collect::<Option<_>>()
                .map(Some)
                .ok_or_else(|| self.error(key, "must map names to lists of strings")),
            Some(_) => Err(self.error(key, "must map names to lists of strings")),
        }
    }

    /// A nested section; `None` when absent or `null`.
    pub fn section(&mut self, key: &str) -> Result<Option<Fields<'a>>, KeyError> {
        let path = self.key_path(key);
        match self.raw(key) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => Fields::new(value, &path).map(Some),
        }
    }
}

/// A scalar as Go's YAML decoder puts it into a string field (`null` is "").
pub fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => Some(String::new()),
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Array(_) | Value::Object(_) => None,
    }
}

fn string_list(value: &Value) -> Option<Vec<String>> {
    match value {
        Value::Null => Some(Vec::new()),
        Value::Array(items) => items.iter().map(scalar_text).collect(),
        _ => None,
    }
}
