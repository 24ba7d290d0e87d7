//! Prometheus relabel regexes: Go RE2 syntax, fully anchored, `.` matching
//! newlines (`^(?s:<regex>)$`, as Prometheus 3 compiles them).
//!
//! Rust's `regex` crate speaks nearly the same dialect. The main difference
//! is that Go's Perl classes (`\d`, `\w`, `\s`, `\b`) are ASCII while Rust's
//! are Unicode, so those are rewritten to their ASCII meaning; the smaller
//! ones are listed at [`go_to_rust`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A compiled relabel regex, remembering its source for printing and errors.
#[derive(Clone, Debug)]
pub struct RelabelRegex {
    source: String,
    /// Shared by every rule with the same regex (see [`compiled`]).
    regex: Arc<regex::Regex>,
    /// The default `(.*)`: matches any text, group 1 being all of it. Most
    /// rules use it, and answering without running the regex saves a
    /// captures search per rule and target.
    matches_everything: bool,
    /// A regex without metacharacters matches exactly its own text: most
    /// `keep`/`drop`/`labeldrop` rules name a value or a label, and comparing
    /// strings is much cheaper than running the automaton.
    literal: Option<String>,
}

impl PartialEq for RelabelRegex {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

/// RE2's metacharacters: a regex with none of them is a literal.
fn is_meta_character(c: char) -> bool {
    matches!(c, '\\' | '.' | '+' | '*' | '?' | '(' | ')' | '|' | '[' | ']' | '{' | '}' | '^' | '$')
}

/// Every compiled relabel regex in use, by anchored source.
static COMPILED: Mutex<Option<HashMap<String, Arc<regex::Regex>>>> = Mutex::new(None);

/// The shared compilation of `anchored`. Generated configs repeat the same
/// rules in every job (prometheus-operator's `$(SHARD)` keep, port and
/// service matches): one automaton, and one lazily built matching cache,
/// serve all of them instead of one per job.
fn compiled(anchored: &str) -> Result<Arc<regex::Regex>, regex::Error> {
    let mut table = COMPILED.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let table = table.get_or_insert_with(HashMap::new);
    if let Some(regex) = table.get(anchored) {
        return Ok(regex.clone());
    }
    let regex = Arc::new(regex::Regex::new(anchored)?);
    if table.len() >= 1024 && table.len().is_power_of_two() {
        // Configs come and go: forget the regexes no rule uses any more.
        table.retain(|_, regex| Arc::strong_count(regex) > 1);
    }
    table.insert(anchored.to_string(), regex.clone());
    Ok(regex)
}

/// The default, `(.*)`.
pub const DEFAULT_REGEX: &str = "(.*)";

impl RelabelRegex {
    pub fn new(source: &str) -> Result<RelabelRegex, String> {
        let invalid = |e: &dyn std::fmt::Display| format!("invalid regex {source:?}: {e}");
        let anchored = format!("^(?s:{})$", go_to_rust(source).map_err(|e| invalid(&e))?);
        let regex = compiled(&anchored).map_err(|e| invalid(&e))?;
        let literal = (!source.contains(is_meta_character)).then(|| source.to_string());
        Ok(RelabelRegex {
            source: source.to_string(),
            regex,
            matches_everything: source == DEFAULT_REGEX,
            literal,
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn is_match(&self, text: &str) -> bool {
        match &self.literal {
            Some(literal) => text == literal,
            None => self.matches_everything || self.regex.is_match(text),
        }
    }

    /// The one text this regex matches, when it has no metacharacters.
    pub fn literal(&self) -> Option<&str> {
        self.literal.as_deref()
    }

    /// Whether this is the default `(.*)`.
    pub fn matches_everything(&self) -> bool {
        self.matches_everything
    }

    /// The groups of the match of `text`, or `None` when it does not match.
    pub fn captures<'t>(&self, text: &'t str) -> Option<Groups<'t>> {
        if self.matches_everything {
            return Some(Groups::Everything(text));
        }
        if let Some(literal) = &self.literal {
            return (text == literal).then_some(Groups::Literal(text));
        }
        self.regex.captures(text).map(Groups::Captures)
    }

    /// Expands `template` against the match of `text`, or `None` when the
    /// regex does not match.
    pub fn expand(&self, template: &str, text: &str) -> Option<String> {
        let mut out = String::new();
        self.captures(text)?.expand(template, &mut out);
        Some(out)
    }
}

/// The groups of one match.
pub enum Groups<'t> {
    /// `(.*)` matched all of the text.
    Everything(&'t str),
    /// A literal regex matched all of the text (group 0, no others).
    Literal(&'t str),
    Captures(regex::Captures<'t>),
}

impl<'t> Groups<'t> {
    fn index(&self, i: usize) -> Option<&'t str> {
        match self {
            Groups::Everything(text) => (i <= 1).then_some(*text),
            Groups::Literal(text) => (i == 0).then_some(*text),
            Groups::Captures(c) => c.get(i).map(|m| m.as_str()),
        }
    }

    fn name(&self, name: &str) -> Option<&'t str> {
        match self {
            Groups::Everything(_) | Groups::Literal(_) => None,
            Groups::Captures(c) => c.name(name).map(|m| m.as_str()),
        }
    }

    /// Appends `template` with its group references replaced, by Go's
    /// `Regexp.Expand` rules (what Prometheus uses): `$$` is a literal `$`;
    /// `$name` takes the longest run of letters, digits and `_`, `${name}` is
    /// braced; a number names a group by index (no leading zeros); a missing
    /// group expands to nothing; a `$` starting no valid reference stays as is.
    pub fn expand(&self, template: &str, out: &mut String) {
        let mut rest = template;
        while let Some(at) = rest.find('$') {
            out.push_str(&rest[..at]);
            rest = &rest[at + 1..];
            if let Some(after) = rest.strip_prefix('$') {
                out.push('$');
                rest = after;
                continue;
            }
            let Some((name, after)) = reference(rest) else {
                out.push('$');
                continue;
            };
            rest = after;
            let group = match group_number(name) {
                Some(i) => self.index(i),
                None => self.name(name),
            };
            out.push_str(group.unwrap_or(""));
        }
        out.push_str(rest);
    }
}

/// The group name at the start of `text` (just after a `$`) and what follows it.
fn reference(text: &str) -> Option<(&str, &str)> {
    let (body, braced) = match text.strip_prefix('{') {
        Some(body) => (body, true),
        None => (text, false),
    };
    let end = body.find(|c: char| !is_name_char(c)).unwrap_or(body.len());
    if end == 0 {
        return None;
    }
    let (name, after) = body.split_at(end);
    if braced {
        return after.strip_prefix('}').map(|after| (name, after));
    }
    Some((name, after))
}

/// Go's `unicode.IsLetter || unicode.IsDigit || '_'`: general categories L
/// and Nd. Rust's `char::is_alphanumeric` also takes letter and other
/// numbers and combining marks (`²`, `Ⅻ`, U+0345), which end a name in Go.
fn is_name_char(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphanumeric() || c == '_';
    }
    static LETTER_OR_DIGIT: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let class = LETTER_OR_DIGIT.get_or_init(|| regex::Regex::new(r"^[\p{L}\p{Nd}]$").expect("a valid regex"));
    class.is_match(c.encode_utf8(&mut [0; 4]))
}

/// A group index: decimal digits without a leading zero, below 10^8 as in Go.
fn group_number(name: &str) -> Option<usize> {
    if !name.bytes().all(|b| b.is_ascii_digit())
        || (name.len() > 1 && name.starts_with('0'))
        || name.len() > 8
    {
        return None;
    }
    name.parse().ok()
}

/// Rewrites Go-only meanings into equivalent Rust syntax, and refuses what
/// Go refuses but Rust would accept.
///
/// Besides the ASCII Perl classes, these read differently (found by fuzzing
/// and checked against Go's `regexp`): in Go `\<` and `\>` are the literal
/// characters, not word boundaries; `\Q...\E` quotes literal text; `\012` is
/// octal; a `{` that does not start a repetition is literal; and inside a
/// bracket class `[` (unless it starts `[:name:]`), `&&`, `~~` and `--` are
/// plain characters, not a nested class or set operations. Go refuses stacked
/// repetitions (`a**`), counts over 1000, unknown `[:name:]` classes, group
/// names other than word characters and flags other than `imsU`.
fn go_to_rust(source: &str) -> Result<String, String> {
    let mut out = String::with_capacity(source.len() + 16);
    let mut rest = source;
    // The previous item was a repetition operator (with its lazy `?`).
    let mut after_repeat = false;
    while let Some(c) = next_char(&mut rest) {
        let repeat = match c {
            '*' | '+' | '?' => true,
            '{' => starts_repetition(rest)?,
            _ => false,
        };
        if repeat && after_repeat {
            return Err(format!("invalid nested repetition operator before {c:?}"));
        }
        after_repeat = repeat;
        match c {
            '\\' if rest.starts_with('Q') => {
                // Literal up to `\E` (outside classes only, as in Go). Without
                // `\E` Go quotes the `)$` Prometheus appends too, and fails.
                let quoted = &rest[1..];
                let end = quoted.find("\\E").ok_or("missing closing ): `\\Q` without `\\E`")?;
                out.push_str(&regex::escape(&quoted[..end]));
                rest = &quoted[end + 2..];
            }
            '\\' => escape(&mut rest, false, &mut out),
            '[' => class(&mut rest, &mut out)?,
            '{' if repeat => {
                // The whole `{n,m}`, so that what follows is seen after it.
                let end = rest.find('}').expect("a repetition ends with }") + 1;
                out.push('{');
                out.push_str(&rest[..end]);
                rest = &rest[end..];
            }
            '{' => out.push_str("\\{"),
            '(' if rest.starts_with('?') => {
                out.push(c);
                if let Some(flags) = group_flags(rest)? {
                    // `?` and the flags as written, replaced by Rust's spelling.
                    rest = &rest[1 + flags.len()..];
                    out.push('?');
                    out.push_str(&normalized_flags(flags)?);
                }
            }
            _ => out.push(c),
        }
        if repeat && let Some(lazy) = rest.strip_prefix('?') {
            out.push('?');
            rest = lazy;
        }
    }
    Ok(out)
}

/// Checks what follows `(` when it is `?`: a named group's name, or flags,
/// which it returns (`is` in `(?is:`).
fn group_flags(rest: &str) -> Result<Option<&str>, String> {
    let inner = &rest[1..];
    let name = inner.strip_prefix("P<").or_else(|| inner.strip_prefix('<'));
    if let Some(name) = name {
        let name = name.split_once('>').map_or(name, |(n, _)| n);
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("invalid named capture {name:?}"));
        }
        return Ok(None);
    }
    let flags = inner.split([')', ':']).next().unwrap_or_default();
    if !flags.chars().all(|c| matches!(c, 'i' | 'm' | 's' | 'U' | '-')) {
        return Err(format!("invalid or unsupported Perl syntax: `(?{flags}`"));
    }
    Ok(Some(flags))
}

/// Go accepts repeated flags (`(?ss)`) and clearing a flag it sets
/// (`(?i-i)`); Rust refuses both, so each flag is written once. Like Go, a
/// `-` must be followed by a flag and may appear once.
fn normalized_flags(flags: &str) -> Result<String, String> {
    let (set, clear) = flags.split_once('-').unwrap_or((flags, ""));
    if clear.contains('-') || (flags.contains('-') && clear.is_empty()) {
        return Err(format!("invalid or unsupported Perl syntax: `(?{flags}`"));
    }
    let unique = |flags: &str, except: &str| {
        let mut out = String::new();
        for c in flags.chars().filter(|c| !except.contains(*c)) {
            if !out.contains(c) {
                out.push(c);
            }
        }
        out
    };
    let mut out = unique(set, clear);
    if !clear.is_empty() {
        out.push('-');
        out.push_str(&unique(clear, ""));
    }
    Ok(out)
}

fn next_char(rest: &mut &str) -> Option<char> {
    let c = rest.chars().next()?;
    *rest = &rest[c.len_utf8()..];
    Some(c)
}

/// Whether `rest` (after a `{`) is Go's `{n}`, `{n,}` or `{n,m}`, whose
/// counts Go limits to 1000.
fn starts_repetition(rest: &str) -> Result<bool, String> {
    let Some((inside, _)) = rest.split_once('}') else { return Ok(false) };
    let (min, max) = inside.split_once(',').unwrap_or((inside, "0"));
    // Go reads a count with a leading zero (`{01}`) as literal text.
    let number = |s: &str| s.bytes().all(|b| b.is_ascii_digit()) && !(s.len() > 1 && s.starts_with('0'));
    if min.is_empty() || !number(min) || !number(max) {
        return Ok(false);
    }
    let count = |s: &str| s.parse::<u32>().ok().filter(|n| *n <= 1000);
    match (count(min), max.is_empty() || count(max).is_some()) {
        (Some(_), true) => Ok(true),
        _ => Err(format!("invalid repeat count `{{{inside}}}`")),
    }
}

/// The escape after a `\` (already consumed), in or outside a class.
fn escape(rest: &mut &str, in_class: bool, out: &mut String) {
    let Some(c) = next_char(rest) else {
        // A trailing `\` is an error in both dialects; keep it one.
        out.push('\\');
        return;
    };
    let ascii = match (c, in_class) {
        ('d', false) => Some("[0-9]"),
        ('D', false) => Some("[^0-9]"),
        ('w', false) => Some("[0-9A-Za-z_]"),
        ('W', false) => Some("[^0-9A-Za-z_]"),
        ('s', false) => Some("[\\t\\n\\f\\r ]"),
        ('S', false) => Some("[^\\t\\n\\f\\r ]"),
        ('b', false) => Some("(?-u:\\b)"),
        ('B', false) => Some("(?-u:\\B)"),
        ('d', true) => Some("0-9"),
        ('w', true) => Some("0-9A-Za-z_"),
        ('s', true) => Some("\\t\\n\\f\\r "),
        // Complements as nested classes: under `(?i)` Go folds the class and
        // then negates it, as Rust does for a negated class (folding explicit
        // complement ranges instead would add `k` and `s`, via `K` and `ſ`).
        ('D', true) => Some("[^0-9]"),
        ('W', true) => Some("[^0-9A-Za-z_]"),
        ('S', true) => Some("[^\\t\\n\\f\\r ]"),
        _ => None,
    };
    if let Some(ascii) = ascii {
        out.push_str(ascii);
        return;
    }
    match c {
        '<' | '>' => out.push(c),
        '0'..='7' => {
            // Go: up to three octal digits, but a lone `\1`..`\7` is a
            // backreference, an error in both dialects.
            let digits = 1 + rest.bytes().take(2).take_while(|b| (b'0'..=b'7').contains(b)).count();
            if c != '0' && digits == 1 {
                out.extend(['\\', c]);
                return;
            }
            let octal = format!("{c}{}", &rest[..digits - 1]);
            *rest = &rest[digits - 1..];
            let code = u32::from_str_radix(&octal, 8).expect("octal digits");
            out.push_str(&format!("\\x{{{code:X}}}"));
        }
        // Multi-character escapes are copied whole, so that a class range
        // sees them as one endpoint.
        'x' | 'p' | 'P' if rest.starts_with('{') => {
            let end = rest.find('}').map_or(rest.len(), |i| i + 1);
            out.extend(['\\', c]);
            out.push_str(&rest[..end]);
            *rest = &rest[end..];
        }
        'x' | 'p' | 'P' => {
            let take = if c == 'x' { 2 } else { 1 };
            let end = rest.char_indices().nth(take).map_or(rest.len(), |(i, _)| i);
            out.extend(['\\', c]);
            out.push_str(&rest[..end]);
            *rest = &rest[end..];
        }
        _ => out.extend(['\\', c]),
    }
}

/// A bracket class after its `[`, item by item as Go reads it: a POSIX
/// `[:name:]`, an escape, or a character, where a character may start a
/// `lo-hi` range. Characters Rust would read as class syntax are escaped.
fn class(rest: &mut &str, out: &mut String) -> Result<(), String> {
    out.push('[');
    if let Some(r) = rest.strip_prefix('^') {
        out.push('^');
        *rest = r;
    }
    // A `]` right after the opening (and `^`) belongs to the class.
    let mut first = true;
    loop {
        if rest.is_empty() {
            // Unclosed: an error in both dialects; leave it unclosed.
            return Ok(());
        }
        if !first && let Some(r) = rest.strip_prefix(']') {
            out.push(']');
            *rest = r;
            return Ok(());
        }
        first = false;
        if rest.starts_with("[:")
            && let Some(i) = rest[2..].find(":]")
        {
            // Go takes `[:` to the next `:]` as a class name and refuses
            // unknown ones (Rust would read those as a nested class).
            let name = &rest[2..i + 2];
            if !POSIX_CLASSES.contains(&name.strip_prefix('^').unwrap_or(name)) {
                return Err(format!("invalid character class range `[:{name}:]`"));
            }
            out.push_str(&rest[..i + 4]);
            *rest = &rest[i + 4..];
            continue;
        }
        let single = class_char(rest, out);
        if single && rest.len() >= 2 && rest.starts_with('-') && !rest[1..].starts_with(']') {
            out.push('-');
            *rest = &rest[1..];
            if !class_char(rest, out) {
                return Err("a range cannot end in a class such as `\\d`".into());
            }
        }
    }
}

/// The `[:name:]` classes of Go (and Rust).
const POSIX_CLASSES: &[&str] = &[
    "alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph", "lower", "print", "punct", "space",
    "upper", "word", "xdigit",
];

/// One class item other than a POSIX class. Returns whether it is a single
/// character (so it may start a range) rather than a class such as `\d`.
fn class_char(rest: &mut &str, out: &mut String) -> bool {
    match next_char(rest) {
        Some('\\') => {
            let is_class = rest.starts_with(['d', 'D', 'w', 'W', 's', 'S', 'p', 'P']);
            escape(rest, true, out);
            !is_class
        }
        Some(c @ ('[' | ']' | '&' | '~' | '-' | '^')) => {
            out.extend(['\\', c]);
            true
        }
        Some(c) => {
            out.push(c);
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_regexes_match_as_the_automaton_does() {
        let texts = ["node-exporter", "node-exporterx", "xnode-exporter", "", "node_exporter", "é", "a\nb"];
        for source in ["node-exporter", "", "é", "a\nb", "a b", "a,b"] {
            let fast = RelabelRegex::new(source).unwrap();
            assert!(fast.literal.is_some(), "{source:?} is a literal");
            for text in texts {
                let slow = fast.regex.captures(text);
                assert_eq!(fast.is_match(text), slow.is_some(), "{source:?} on {text:?}");
                let expand = |groups: Option<Groups>| {
                    groups.map(|g| {
                        let mut out = String::new();
                        g.expand("[$0|$1|${name}]", &mut out);
                        out
                    })
                };
                assert_eq!(expand(fast.captures(text)), expand(slow.map(Groups::Captures)));
            }
        }
        for source in ["a.b", "a|b", "a+", "(a)", "a\\.b", "[a]", "a{2}", "^a$", "a?", "a*"] {
            assert!(RelabelRegex::new(source).unwrap().literal.is_none(), "{source:?}");
        }
    }

    #[test]
    fn anchored_and_dot_matches_newline() {
        let r = RelabelRegex::new("a.c").unwrap();
        assert!(r.is_match("a\nc"));
        assert!(!r.is_match("xabc"));
        assert!(!r.is_match("abcx"));
        assert!(RelabelRegex::new("a|b").unwrap().is_match("b"), "alternation stays inside the anchors");
    }

    #[test]
    fn perl_classes_are_ascii_like_go() {
        let digits = RelabelRegex::new(r"\d+").unwrap();
        assert!(digits.is_match("123"));
        assert!(!digits.is_match("١٢٣"), "Arabic-Indic digits are not \\d in Go");
        assert!(!RelabelRegex::new(r"\w+").unwrap().is_match("héllo"));
        assert!(RelabelRegex::new(r"[\w.-]+").unwrap().is_match("a.b-c_1"));
        assert!(RelabelRegex::new(r"[^\d]+").unwrap().is_match("abc"));
        assert!(RelabelRegex::new(r"[]a]+").unwrap().is_match("]a"));
        assert!(RelabelRegex::new(r"[[:alpha:]]+").unwrap().is_match("abc"));
    }

    /// Regexes the go_regex fuzz target's corpus showed Rust reading
    /// differently from Go; the expectations are Go's `regexp` results.
    #[test]
    fn go_only_syntax_means_what_it_means_in_go() {
        let matches = |source: &str, text: &str| RelabelRegex::new(source).unwrap().is_match(text);
        // Negated Perl classes inside brackets are ASCII too.
        assert!(matches(r"[\D]", "٣") && !matches(r"[\D]", "3"));
        assert!(matches(r"[\W]", "é") && !matches(r"[\W]", "_"));
        assert!(matches(r"[\S]", "\u{2003}") && !matches(r"[\S]", "\t"));
        assert!(matches(r"[^\D]", "7") && !matches(r"[^\D]", "٣"));
        assert!(!matches(r"(?i)[\W]", "k") && !matches(r"(?i)[a\W]", "\u{17F}"));
        assert!(matches(r"(?i)[^a\W]", "k") && !matches(r"(?i)[^a\W]", "A"));
        // `\<` and `\>` are literals, not word boundaries.
        assert!(matches(r"\<a\>", "<a>") && matches(r"[\<]", "<"));
        // Inside a class, `[`, `&&`, `~~` and `--` are characters.
        assert!(matches(r"[a[b]+", "a[b") && matches(r"[[]", "["));
        assert!(matches(r"[a&&b]+", "a&b") && matches(r"[a~~b]+", "~"));
        assert!(matches(r"[!--]+", "!-,") && !matches(r"[!--]", "."));
        assert!(matches(r"[a-c-e]+", "a-e") && !matches(r"[a-c-e]", "d"));
        assert!(matches(r"[[:alpha:]-]+", "a-b") && matches(r"[[:a]+", ":["));
        // A `{` that starts no repetition is literal.
        assert!(matches("{", "{") && matches("a{,3}", "a{,3}") && matches("x{2?", "x{2"));
        assert!(matches("a{2}", "aa") && matches("a{1,}", "aaa") && matches("a{1,2}", "a"));
        assert!(matches("a{01}", "a{01}") && matches("a{1,02}", "a{1,02}"));
        // Quoted literal text and octal escapes.
        assert!(matches(r"\Q.*+\E!", ".*+!") && !matches(r"\Q.*\E", "ab"));
        assert!(RelabelRegex::new(r"\Qa|b").is_err(), "Go quotes the closing `)$` too");
        assert!(matches(r"\123\0", "S\0") && matches(r"[\101-\103]+", "ABC"));
        assert!(RelabelRegex::new(r"\1").is_err(), "backreferences are refused, as in Go");
        // Repeated and cleared flags.
        assert!(matches("(?ss).", "\n") && matches("(?i-i:a)A|b", "b") && !matches("(?i-i:a)", "A"));
    }

    /// Regexes Rust accepts but Go (so Prometheus) refuses, from the same corpus.
    #[test]
    fn what_go_refuses_is_refused() {
        for source in [
            "a**",
            "a+*",
            "a???",
            "a{2}*",
            "a{1001}",
            "a{1,1001}",
            "[[:foo:]]",
            "[[:a:]x]",
            "(?x)a",
            "(?-u)a",
            "(?P<a.b>x)",
            "(?<a[b>x)",
            "(?i-)a",
            "(?-i-s)a",
            r"\Qa",
            r"[a-\d]",
        ] {
            assert!(RelabelRegex::new(source).is_err(), "{source} should be refused");
        }
        for source in [
            "a*?",
            "a+?b??",
            "a{2}?",
            "(?i)a",
            "(?i-s:a)",
            "(?U)a+",
            "(?P<n_1>a)",
            "(?:a)*",
            "[[:^alpha:]]",
            "(?ss)a",
            "(?i-i)a",
        ] {
            assert!(RelabelRegex::new(source).is_ok(), "{source} should be accepted");
        }
    }

    #[test]
    fn expansion_follows_go_template_rules() {
        let r = RelabelRegex::new("(?P<host>[^:]+):(\\d+)").unwrap();
        let e = |t: &str| r.expand(t, "example.org:9100").unwrap();
        assert_eq!(e("$1"), "example.org");
        assert_eq!(e("${2}x"), "9100x");
        assert_eq!(e("$2x"), "", "$2x names the group `2x`, which does not exist");
        assert_eq!(e("$host"), "example.org");
        assert_eq!(e("$$1"), "$1");
        assert_eq!(e("a$"), "a$", "a trailing $ is literal");
        assert_eq!(e("${host"), "${host", "an unclosed brace is literal");
        assert_eq!(e("$-x"), "$-x");
        assert_eq!(e("$01"), "", "a leading zero makes a name, which does not exist");
        assert_eq!(e("${0}"), "example.org:9100");
        // Names are Go's letters and decimal digits (found against Go's Expand).
        assert_eq!(e("$1²"), "example.org²", "`²` is not a decimal digit");
        assert_eq!(e("$1\u{345}"), "example.org\u{345}", "a combining mark is not a letter");
        assert_eq!(e("$1٣"), "", "`1٣` names a group: `٣` is a decimal digit");
        assert_eq!(e("$hostñ"), "", "`hostñ` names a group");
        assert_eq!(r.expand("$1", "nope"), None);
        // The default regex answers without running.
        let all = RelabelRegex::new(DEFAULT_REGEX).unwrap();
        assert!(all.matches_everything());
        assert_eq!(all.expand("<$1|${0}|$2|$name>", "a\nb").unwrap(), "<a\nb|a\nb||>");
        assert!(RelabelRegex::new("(").unwrap_err().contains("invalid regex \"(\""));
    }
}
