//! Every structural problem of a scenario file at once (unknown keys, values of the wrong type),
//! in words a person writing TOML reads, with the closest key suggested.
//!
//! serde stops at the first problem. So each offending key is taken out of the document and
//! the document read again, until it reads or a problem cannot be taken out (a key that is
//! missing). The keys taken out fall back to their defaults, so that the checks of the values
//! can still run on the rest and report their problems in the same list.

use toml::Spanned;
use toml::de::DeTable;

use super::load::Problem;
use super::reference;
use super::spans::{line_column, locate, remove};

/// At most this many structural problems are listed: past it, a file is not a scenario.
const MAX_PROBLEMS: usize = 50;

/// Reads `doc` (parsed from `text`) into the file's structs, taking out every key serde
/// refuses. Returns what could be read (none when a required key is missing or wrong) and a
/// problem for every key taken out.
/// Any file read strictly into structs of its own works the same: a scenario
/// ([`RawScenario`](super::raw::RawScenario)),
/// a load plan.
pub(crate) fn read<T: serde::de::DeserializeOwned>(
    text: &str,
    doc: &Spanned<DeTable<'_>>,
) -> (Option<T>, Vec<Problem>) {
    let mut doc = doc.clone();
    let mut problems: Vec<Problem> = Vec::new();
    let mut removed: Vec<String> = Vec::new();
    while problems.len() < MAX_PROBLEMS {
        let err = match serde_path_to_error::deserialize(toml::Deserializer::from(doc.clone())) {
            Ok(raw) => return (Some(raw), problems),
            Err(err) => err,
        };
        let problem = serde_problem(text, doc.get_ref(), &err);
        // A required key taken out because its value was wrong is now missing: that was
        // already said, and the file cannot be read any further.
        if problem.message.starts_with("missing ") && removed.contains(&problem.key_path) {
            break;
        }
        let key = owning_key(&problem.key_path).to_owned();
        problems.push(problem);
        if key.is_empty() || !remove(doc.get_mut(), &key) {
            break;
        }
        removed.push(key);
    }
    (None, problems)
}

/// The key a problem's path ends in, without trailing array indexes: the value to take out.
/// `calls.daily_shape[3]` → `calls.daily_shape`, `carrier.drift[0]` → `carrier.drift`.
fn owning_key(path: &str) -> &str {
    let mut path = path;
    while let Some(stripped) = path.strip_suffix(']') {
        match stripped.rfind('[') {
            Some(open) => path = &stripped[..open],
            None => break,
        }
    }
    path
}

/// A serde error as a problem: the key path from serde_path_to_error, completed with the key
/// a "missing field" or "unknown field" message names, the position from toml's span, and the
/// message in words.
fn serde_problem(
    text: &str,
    doc: &DeTable<'_>,
    err: &serde_path_to_error::Error<toml::de::Error>,
) -> Problem {
    let message = err.inner().message().trim().to_owned();
    let mut key_path = match err.path().to_string() {
        root if root == "." => String::new(),
        path => path,
    };
    let named = ["missing field `", "unknown field `"]
        .iter()
        .find_map(|prefix| message.strip_prefix(prefix))
        .and_then(|rest| rest.split_once('`'))
        .map(|(key, _)| key);
    if let Some(key) = named
        && key_path.rsplit(['.', ']']).next() != Some(key)
    {
        if !key_path.is_empty() {
            key_path.push('.');
        }
        key_path.push_str(key);
    }
    // toml's span is the value (or, for an unknown key, the key) when it has one; errors from
    // inside buffered values (the drift models' tagged enum) may only carry an outer span.
    let offset = match err.inner().span() {
        Some(span) if !span.is_empty() => span.start,
        _ => locate(doc, &key_path),
    };
    let (line, column) = line_column(text, offset);
    let message = in_words(&message, &key_path);
    Problem {
        line,
        column,
        key_path,
        message,
    }
}

/// serde's message for a TOML writer: keys rather than fields, types in words, the closest
/// key suggested.
pub(crate) fn in_words(message: &str, key_path: &str) -> String {
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (key, allowed) = rest.split_once('`').unwrap_or((rest, ""));
        let allowed = backticked(allowed);
        return unknown_key(key, key_path, &allowed);
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        let key = rest.split_once('`').map_or(rest, |(key, _)| key);
        return format!("missing field `{key}`: this key is required");
    }
    if let Some(rest) = message.strip_prefix("unknown variant `") {
        let (value, allowed) = rest.split_once('`').unwrap_or((rest, ""));
        let allowed = backticked(allowed);
        let mut out = format!("unknown value \"{value}\"");
        if let Some(close) = closest(value, &allowed) {
            out.push_str(&format!("; did you mean \"{close}\"?"));
        }
        out.push_str(&format!(" (one of {})", quoted_list(&allowed)));
        return out;
    }
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = message.strip_prefix(prefix)
            && let Some((found, expected)) = rest.rsplit_once(", expected ")
        {
            return wrong_type(found, expected, key_path);
        }
    }
    message.to_owned()
}

/// "unknown key", with the closest key of the same table, or the table the key belongs in.
fn unknown_key(key: &str, key_path: &str, allowed: &[&str]) -> String {
    let table = owning_key(key_path)
        .rsplit_once('.')
        .map_or("", |(table, _)| table);
    let mut out = format!("unknown field `{key}`");
    if let Some(close) = closest(key, allowed) {
        out.push_str(&format!("; did you mean `{close}`?"));
    } else if let Some(home) = reference::table_of(key).filter(|home| *home != table) {
        out.push_str(&format!("; `{key}` belongs in {}", reference::header(home)));
    }
    if !allowed.is_empty() {
        let place = if table.is_empty() {
            "the top level".to_owned()
        } else {
            reference::header(&strip_indexes(table))
        };
        out.push_str(&format!(" ({place} takes {})", code_list(allowed)));
    }
    out
}

/// A wrong type, as "expected …, got …", pointing at `[[table]]` where a list of tables was
/// wanted.
fn wrong_type(found: &str, expected: &str, key_path: &str) -> String {
    let key = strip_indexes(owning_key(key_path));
    let list_of_tables = reference::is_array_of_tables(&key);
    let expected_words = match expected {
        "u8" => "a whole number from 0 to 255".to_owned(),
        "u16" => "a whole number from 0 to 65535".to_owned(),
        "u32" => "a whole number from 0 to 4294967295".to_owned(),
        "u64" | "usize" => "a whole number ≥ 0".to_owned(),
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number".to_owned(),
        "f32" | "f64" => "a number".to_owned(),
        "a string" | "string" => "text in quotes".to_owned(),
        "a boolean" | "bool" => "true or false".to_owned(),
        "a sequence" if list_of_tables => format!("one or more {} tables", header_array(&key)),
        "a sequence" => "a list in brackets, e.g. [1, 2]".to_owned(),
        other if other.starts_with("struct ") || other == "a map" => "a table".to_owned(),
        other => other.to_owned(),
    };
    let mut out = format!("expected {expected_words}, got {}", found_words(found));
    if list_of_tables {
        out.push_str(&format!(
            "; did you mean {}? (two brackets: each entry is a table of its own)",
            header_array(&key)
        ));
    }
    out
}

/// serde's description of a value found, in words: `string "ten"` → `"ten"`.
fn found_words(found: &str) -> String {
    let unticked = |s: &str| s.trim_matches('`').to_owned();
    if let Some(s) = found.strip_prefix("string ") {
        return format!("the text {s}");
    }
    for prefix in ["integer ", "floating point ", "boolean "] {
        if let Some(v) = found.strip_prefix(prefix) {
            return unticked(v);
        }
    }
    match found {
        "map" => "a table".to_owned(),
        "sequence" => "a list".to_owned(),
        other => other.to_owned(),
    }
}

/// The backticked words of serde's "expected one of `a`, `b`" tail.
fn backticked(tail: &str) -> Vec<&str> {
    tail.split('`').skip(1).step_by(2).collect()
}

/// The allowed word closest to `word`, when one is close enough to be a likely typo.
fn closest<'a>(word: &str, allowed: &[&'a str]) -> Option<&'a str> {
    allowed
        .iter()
        .map(|candidate| (strsim::jaro_winkler(word, candidate), *candidate))
        .filter(|(score, _)| *score >= 0.85)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, candidate)| candidate)
}

fn code_list(words: &[&str]) -> String {
    words
        .iter()
        .map(|w| format!("`{w}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn quoted_list(words: &[&str]) -> String {
    words
        .iter()
        .map(|w| format!("\"{w}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `tenants[0].numbers` → `tenants.numbers`: the key as the reference names it.
fn strip_indexes(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut depth = 0;
    for c in path.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

fn header_array(key: &str) -> String {
    format!("`[[{key}]]`")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_owning_key_drops_trailing_indexes_only() {
        assert_eq!(owning_key("calls.daily_shape[3]"), "calls.daily_shape");
        assert_eq!(owning_key("carrier.drift[0]"), "carrier.drift");
        assert_eq!(owning_key("tenants[0].numbers"), "tenants[0].numbers");
        assert_eq!(strip_indexes("tenants[0].numbers"), "tenants.numbers");
    }

    #[test]
    fn types_are_said_in_words_without_rust_names() {
        let m = in_words(
            "invalid type: string \"ten\", expected u32",
            "tenants[0].numbers",
        );
        assert_eq!(
            m,
            "expected a whole number from 0 to 4294967295, got the text \"ten\""
        );
        let m = in_words("invalid value: integer `-3`, expected u64", "seed");
        assert_eq!(m, "expected a whole number ≥ 0, got -3");
        let m = in_words(
            "invalid type: string \"x\", expected f64",
            "calls.answer_rate",
        );
        assert_eq!(m, "expected a number, got the text \"x\"");
    }

    #[test]
    fn a_table_where_tables_are_listed_points_at_double_brackets() {
        let m = in_words("invalid type: map, expected a sequence", "carrier.drift");
        assert!(
            m.starts_with("expected one or more `[[carrier.drift]]` tables, got a table"),
            "{m}"
        );
        assert!(m.contains("did you mean `[[carrier.drift]]`?"), "{m}");
    }

    #[test]
    fn a_typo_gets_the_closest_key_and_a_stray_key_its_table() {
        let m = in_words(
            "unknown field `answer_rat`, expected one of `answer_rate`, `outbound_share`",
            "calls.answer_rat",
        );
        assert!(
            m.starts_with("unknown field `answer_rat`; did you mean `answer_rate`?"),
            "{m}"
        );
        assert!(
            m.contains("(`[calls]` takes `answer_rate`, `outbound_share`)"),
            "{m}"
        );

        let m = in_words(
            "unknown field `tolerance`, expected one of `name`, `description`",
            "tolerance",
        );
        assert!(
            m.starts_with("unknown field `tolerance`; `tolerance` belongs in `[reconciliation]`"),
            "{m}"
        );
        assert!(
            m.contains("(the top level takes `name`, `description`)"),
            "{m}"
        );
    }

    #[test]
    fn an_unknown_value_is_quoted_with_the_closest_one() {
        let m = in_words(
            "unknown variant `realtim`, expected `virtual` or `realtime`",
            "clock",
        );
        assert_eq!(
            m,
            "unknown value \"realtim\"; did you mean \"realtime\"? (one of \"virtual\", \"realtime\")"
        );
    }
}
