//! A relabel rule as Prometheus reads it: defaults, case-insensitive actions
//! and the same validation conditions and messages.

use serde_json::Value;

use super::regex::{DEFAULT_REGEX, RelabelRegex};

pub const DEFAULT_SEPARATOR: &str = ";";
pub const DEFAULT_REPLACEMENT: &str = "$1";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Replace,
    Keep,
    Drop,
    KeepEqual,
    DropEqual,
    HashMod,
    LabelMap,
    LabelDrop,
    LabelKeep,
    Lowercase,
    Uppercase,
}

impl Action {
    fn parse(text: &str) -> Option<Action> {
        Some(match text.to_ascii_lowercase().as_str() {
            "replace" => Action::Replace,
            "keep" => Action::Keep,
            "drop" => Action::Drop,
            "keepequal" => Action::KeepEqual,
            "dropequal" => Action::DropEqual,
            "hashmod" => Action::HashMod,
            "labelmap" => Action::LabelMap,
            "labeldrop" => Action::LabelDrop,
            "labelkeep" => Action::LabelKeep,
            "lowercase" => Action::Lowercase,
            "uppercase" => Action::Uppercase,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Action::Replace => "replace",
            Action::Keep => "keep",
            Action::Drop => "drop",
            Action::KeepEqual => "keepequal",
            Action::DropEqual => "dropequal",
            Action::HashMod => "hashmod",
            Action::LabelMap => "labelmap",
            Action::LabelDrop => "labeldrop",
            Action::LabelKeep => "labelkeep",
            Action::Lowercase => "lowercase",
            Action::Uppercase => "uppercase",
        }
    }
}

/// Which label names are valid (`metric_name_validation_scheme`). Prometheus 3
/// defaults to UTF-8: any non-empty name; `legacy` is `[a-zA-Z_][a-zA-Z0-9_]*`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NameValidation {
    #[default]
    Utf8,
    Legacy,
}

impl NameValidation {
    pub fn is_valid(self, name: &str) -> bool {
        match self {
            // A `&str` is valid UTF-8 already.
            NameValidation::Utf8 => !name.is_empty(),
            NameValidation::Legacy => is_valid_label_name(name),
        }
    }
}

/// One parsed, validated rule.
#[derive(Clone, Debug, PartialEq)]
pub struct RelabelRule {
    pub source_labels: Vec<String>,
    pub separator: String,
    pub regex: RelabelRegex,
    pub modulus: u64,
    pub target_label: String,
    pub replacement: String,
    pub action: Action,
    /// The names this rule may read and write.
    pub names: NameValidation,
}

impl RelabelRule {
    /// Parses a rule from its YAML/JSON form, with Prometheus's defaults, and
    /// validates it like Prometheus does.
    pub fn parse(value: &Value, names: NameValidation) -> Result<RelabelRule, String> {
        let Some(map) = value.as_object() else {
            return Err("a relabel rule must be a mapping".into());
        };
        for key in map.keys() {
            if !["source_labels", "separator", "regex", "modulus", "target_label", "replacement", "action"]
                .contains(&key.as_str())
            {
                return Err(format!("unknown field {key:?} in a relabel rule"));
            }
        }
        let string = |key: &str| -> Result<Option<String>, String> {
            match map.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(Value::Number(n)) => Ok(Some(n.to_string())),
                Some(Value::Bool(b)) => Ok(Some(b.to_string())),
                Some(other) => Err(format!("{key} must be a string, got {other}")),
            }
        };
        let source_labels: Option<Vec<String>> = match map.get("source_labels") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                serde_json::from_value(v.clone())
                    .map_err(|_| "source_labels must be a list of label names".to_string())?,
            ),
        };
        for name in source_labels.iter().flatten() {
            if !names.is_valid(name) {
                return Err(format!("{name:?} is not a valid label name"));
            }
        }
        let action_text = string("action")?;
        let action = match &action_text {
            None => Action::Replace,
            Some(a) if a.is_empty() => return Err("relabel action cannot be empty".into()),
            Some(a) => Action::parse(a).ok_or_else(|| format!("unknown relabel action {a:?}"))?,
        };
        let regex_text = string("regex")?;
        let separator = string("separator")?;
        let modulus = match map.get("modulus") {
            None | Some(Value::Null) => 0,
            Some(v) => {
                v.as_u64().ok_or_else(|| format!("modulus must be a non-negative integer, got {v}"))?
            }
        };
        let target_label = string("target_label")?.unwrap_or_default();
        let replacement = string("replacement")?;
        let rule = RelabelRule {
            source_labels: source_labels.clone().unwrap_or_default(),
            separator: separator.unwrap_or_else(|| DEFAULT_SEPARATOR.into()),
            regex: RelabelRegex::new(regex_text.as_deref().unwrap_or(DEFAULT_REGEX))?,
            modulus,
            target_label,
            replacement: replacement.unwrap_or_else(|| DEFAULT_REPLACEMENT.into()),
            action,
            names,
        };
        // Prometheus compares the compiled regex by identity, so a written
        // `regex`, even `(.*)`, counts as set; other fields compare by value.
        rule.validate(regex_text.is_some(), source_labels.is_some())?;
        Ok(rule)
    }

    fn validate(&self, regex_set: bool, sources_set: bool) -> Result<(), String> {
        use Action::*;
        let action = self.action.name();
        if self.modulus == 0 && self.action == HashMod {
            return Err("relabel configuration for hashmod requires non-zero modulus".into());
        }
        let needs_target =
            matches!(self.action, Replace | HashMod | Lowercase | Uppercase | KeepEqual | DropEqual);
        if needs_target && self.target_label.is_empty() {
            return Err(format!("relabel configuration for {action} action requires 'target_label' value"));
        }
        let target_ok = if self.action == Replace && self.target_label.contains('$') {
            self.is_valid_name_template(&self.target_label)
        } else {
            self.names.is_valid(&self.target_label)
        };
        if needs_target && !target_ok {
            return Err(format!("{:?} is invalid 'target_label' for {action} action", self.target_label));
        }
        if matches!(self.action, Lowercase | Uppercase | KeepEqual | DropEqual)
            && self.replacement != DEFAULT_REPLACEMENT
        {
            return Err(format!("'replacement' can not be set for {action} action"));
        }
        if self.action == LabelMap && !self.is_valid_name_template(&self.replacement) {
            return Err(format!("{:?} is invalid 'replacement' for {action} action", self.replacement));
        }
        if matches!(self.action, KeepEqual | DropEqual)
            && (regex_set
                || self.modulus != 0
                || self.separator != DEFAULT_SEPARATOR
                || self.replacement != DEFAULT_REPLACEMENT)
        {
            return Err(format!(
                "{action} action requires only 'source_labels' and `target_label`, and no other fields"
            ));
        }
        if matches!(self.action, LabelDrop | LabelKeep)
            && (sources_set
                || !self.target_label.is_empty()
                || self.modulus != 0
                || self.separator != DEFAULT_SEPARATOR
                || self.replacement != DEFAULT_REPLACEMENT)
        {
            return Err(format!("{action} action requires only 'regex', and no other fields"));
        }
        Ok(())
    }
}

/// Prometheus's classic label names: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl RelabelRule {
    /// A label name that may contain `$1`, `${1}` or `$name` references: any
    /// name under UTF-8 validation, else Prometheus's
    /// `(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+`.
    fn is_valid_name_template(&self, template: &str) -> bool {
        match self.names {
            NameValidation::Utf8 => self.names.is_valid(template),
            NameValidation::Legacy => is_valid_legacy_name_template(template),
        }
    }
}

fn is_valid_legacy_name_template(template: &str) -> bool {
    static PATTERN: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    PATTERN
        .get_or_init(|| {
            regex::Regex::new(r"^(?:(?:[a-zA-Z_]|\$(?:\{[0-9A-Za-z_]+\}|[0-9A-Za-z_]+))+[0-9A-Za-z_]*)+$")
                .unwrap()
        })
        .is_match(template)
}
