//! Where a key path is in a scenario file: its value's line and column, for error messages.

use toml::de::{DeTable, DeValue};

/// 1-based line and column (in characters) of byte `offset` in `text`.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// One step of a key path: a table key or an array index.
#[derive(Debug, PartialEq, Eq)]
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

/// Splits `tenants[1].first_number` into `tenants`, `[1]`, `first_number`.
fn steps(path: &str) -> Vec<Step<'_>> {
    let mut out = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (key, mut rest) = part.split_at(part.find('[').unwrap_or(part.len()));
        if !key.is_empty() {
            out.push(Step::Key(key));
        }
        while let Some(inner) = rest.strip_prefix('[') {
            let Some((index, after)) = inner.split_once(']') else {
                break;
            };
            match index.parse() {
                Ok(i) => out.push(Step::Index(i)),
                Err(_) => break,
            }
            rest = after;
        }
    }
    out
}

/// The byte offset of the value at `path`, or of its nearest ancestor that the file has (a
/// table's header, or the start of the file).
pub(crate) fn locate(doc: &DeTable<'_>, path: &str) -> usize {
    let mut found = 0;
    let mut table = Some(doc);
    let mut array = None;
    for step in steps(path) {
        let value = match step {
            Step::Key(key) => table.and_then(|t| t.get(key)),
            Step::Index(i) => array.and_then(|a: &toml::de::DeArray<'_>| a.get(i)),
        };
        let Some(value) = value else {
            break;
        };
        found = value.span().start;
        (table, array) = match value.get_ref() {
            DeValue::Table(t) => (Some(t), None),
            DeValue::Array(a) => (None, Some(a)),
            _ => (None, None),
        };
    }
    found
}

/// Takes the key at `path` (keys and `[i]` indexes, ending in a key) out of `doc`: false when
/// the file does not have it.
pub(crate) fn remove(doc: &mut DeTable<'_>, path: &str) -> bool {
    let steps = steps(path);
    let Some((Step::Key(last), parents)) = steps.split_last() else {
        return false;
    };
    let mut table = doc;
    let mut rest = parents.iter().peekable();
    while let Some(step) = rest.next() {
        let Step::Key(key) = step else {
            return false;
        };
        let Some(mut value) = table.get_mut(*key).map(|v| v.get_mut()) else {
            return false;
        };
        while let Some(Step::Index(i)) = rest.peek() {
            rest.next();
            value = match value {
                DeValue::Array(items) => match items.get_mut(*i) {
                    Some(item) => item.get_mut(),
                    None => return false,
                },
                _ => return false,
            };
        }
        table = match value {
            DeValue::Table(t) => t,
            _ => return false,
        };
    }
    table.remove(*last).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_paths_split_into_keys_and_indexes() {
        assert_eq!(
            steps("tenants[1].first_number"),
            [
                Step::Key("tenants"),
                Step::Index(1),
                Step::Key("first_number")
            ]
        );
        assert_eq!(
            steps("calls.daily_shape[23]"),
            [
                Step::Key("calls"),
                Step::Key("daily_shape"),
                Step::Index(23)
            ]
        );
        assert_eq!(steps(""), []);
    }

    #[test]
    fn values_tables_and_missing_keys_are_located() {
        let text = "name = \"x\"\n[calls]\ndaily_shape = [1, 2.5]\n\
                    duration = { median = \"2m\" }\n[[tenants]]\nnumbers = 3\n[[tenants]]\n\
                    numbers = 4\n";
        let doc = DeTable::parse(text).unwrap();
        let at = |path| line_column(text, locate(doc.get_ref(), path));
        assert_eq!(at("name"), (1, 8));
        assert_eq!(at("calls"), (2, 1));
        assert_eq!(at("calls.daily_shape[1]"), (3, 19));
        assert_eq!(at("calls.duration.median"), (4, 23));
        assert_eq!(at("calls.duration.sigma"), (4, 12));
        assert_eq!(at("tenants[1].numbers"), (8, 11));
        assert_eq!(at("quality.impaired_share"), (1, 1));
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        assert_eq!(line_column("é = 1\nab", 9), (2, 3));
        assert_eq!(line_column("é", 1), (1, 1));
        assert_eq!(line_column("ab", 99), (1, 3));
    }

    #[test]
    fn keys_are_taken_out_through_tables_and_arrays() {
        let text = "a = 1\n[[t]]\nx = 1\ny = 2\n[u.v]\nz = 3\n";
        let mut doc = DeTable::parse(text).unwrap().into_inner();
        assert!(remove(&mut doc, "t[0].x"));
        assert!(remove(&mut doc, "u.v.z"));
        assert!(remove(&mut doc, "a"));
        assert!(!remove(&mut doc, "a"), "already gone");
        assert!(!remove(&mut doc, "t[1].y"), "no such entry");
        assert!(!remove(&mut doc, "t[0]"), "a path must end in a key");
        assert_eq!(locate(&doc, "t[0].y"), text.find("2").unwrap());
    }
}
