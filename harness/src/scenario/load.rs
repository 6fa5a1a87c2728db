//! Loading a scenario file: TOML read strictly into the file's own structs, then converted and
//! checked, with every problem located as `FILE:LINE:COLUMN: key.path: message`.

use std::fmt;
use std::path::{Path, PathBuf};

use toml::de::DeTable;

use super::convert::convert;
use super::model::Scenario;
use super::spans::{line_column, locate};
use super::structure;

/// One thing wrong with a scenario file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line of the offending value (or of its table, when the key is missing).
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// The key path, e.g. `calls.duration.max` or `tenants[1].first_number`; empty for a
    /// syntax error, which is about the document rather than a key.
    pub key_path: String,
    /// What is wrong, with what was expected.
    pub message: String,
}

impl fmt::Display for Problem {
    /// `LINE:COLUMN: key.path: message`; prefix the file name for the full form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: ", self.line, self.column)?;
        if !self.key_path.is_empty() {
            write!(f, "{}: ", self.key_path)?;
        }
        f.write_str(&self.message)
    }
}

/// A scenario file that could not be read or is not valid.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("failed to read scenario {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Not TOML, not of the scenario's shape, or some values break the rules: every problem
    /// found, one per line when displayed, in file order.
    #[error("{}", render(origin, problems))]
    Invalid {
        /// The file name (or whatever `parse` was given).
        origin: String,
        /// Each problem; never empty.
        problems: Vec<Problem>,
    },
}

impl ScenarioError {
    /// The problems found; empty when the file could not be read.
    pub fn problems(&self) -> &[Problem] {
        match self {
            Self::Read { .. } => &[],
            Self::Invalid { problems, .. } => problems,
        }
    }
}

fn render(origin: &str, problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("{origin}:{p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Reads and checks the scenario file at `path`.
pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
    let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(&text, &path.display().to_string())
}

/// Reads and checks scenario TOML `text`; `origin` names it in error messages. Every problem
/// is listed: every syntax error, or else every key of the wrong name or type and every value
/// that breaks a rule.
pub fn parse(text: &str, origin: &str) -> Result<Scenario, ScenarioError> {
    parse_with(text, origin, convert)
}

/// Reads TOML `text` strictly into `R` and converts it with `convert`, every problem located
/// as [`parse`] locates a scenario's: the loader of scenario files and of load plans.
pub(crate) fn parse_with<R: serde::de::DeserializeOwned, T>(
    text: &str,
    origin: &str,
    convert: impl FnOnce(R) -> Result<T, Vec<super::convert::Finding>>,
) -> Result<T, ScenarioError> {
    let invalid = |mut problems: Vec<Problem>| {
        // In file order, so that the list reads top to bottom; stable, so that the problems of
        // one key keep the order of the checks.
        problems.sort_by_key(|p| (p.line, p.column));
        ScenarioError::Invalid {
            origin: origin.to_owned(),
            problems,
        }
    };
    let (doc, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        // The parser recovers and goes on, but a second error on a line is almost always the
        // first one seen again: one problem per line.
        let mut lines = std::collections::BTreeSet::new();
        return Err(invalid(
            syntax
                .iter()
                .filter(|e| {
                    let (line, _) = line_column(text, e.span().map_or(0, |s| s.start));
                    lines.insert(line)
                })
                .map(|e| {
                    let (line, column) = line_column(text, e.span().map_or(0, |s| s.start));
                    Problem {
                        line,
                        column,
                        key_path: String::new(),
                        message: e.message().trim().to_owned(),
                    }
                })
                .collect(),
        ));
    }
    let (raw, mut problems) = structure::read::<R>(text, &doc);
    let Some(raw) = raw else {
        return Err(invalid(problems));
    };
    match convert(raw) {
        Ok(converted) if problems.is_empty() => Ok(converted),
        Ok(_) => Err(invalid(problems)),
        Err(findings) => {
            problems.extend(findings.into_iter().map(|finding| {
                let at = finding.at.as_deref().unwrap_or(&finding.key);
                let (line, column) = line_column(text, locate(doc.get_ref(), at));
                Problem {
                    line,
                    column,
                    key_path: finding.key,
                    message: finding.message,
                }
            }));
            Err(invalid(problems))
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The smallest valid scenario.
    pub(crate) const MINIMAL: &str = r#"name = "t"
description = "a test"
seed = 7
start = "2026-11-02T00:00:00.000Z"
length = "1d"

[[tenants]]
numbers = 10
first_number = "+14255550100"
"#;

    /// The problems of `text`, which must not load, as (key path, line, column).
    pub(crate) fn problems(text: &str) -> Vec<(String, usize, usize)> {
        match parse(text, "t.toml") {
            Ok(s) => panic!("loaded: {s:?}"),
            Err(e) => e
                .problems()
                .iter()
                .map(|p| (p.key_path.clone(), p.line, p.column))
                .collect(),
        }
    }

    /// The one problem of `text`: (key path, line, column) and the message.
    pub(crate) fn problem(text: &str) -> ((String, usize, usize), String) {
        let err = parse(text, "t.toml").unwrap_err();
        let [p] = err.problems() else {
            panic!("not one problem: {err}");
        };
        ((p.key_path.clone(), p.line, p.column), p.message.clone())
    }

    /// MINIMAL with `extra` appended; `extra` starts on line 10.
    pub(crate) fn with(extra: &str) -> String {
        format!("{MINIMAL}{extra}")
    }

    /// MINIMAL with `line` inserted after `seed = 7`, as line 4.
    pub(crate) fn top(line: &str) -> String {
        MINIMAL.replace("seed = 7\n", &format!("seed = 7\n{line}\n"))
    }

    /// A problem's expected (key path, line, column).
    pub(crate) fn at(path: &str, line: usize, column: usize) -> (String, usize, usize) {
        (path.to_owned(), line, column)
    }

    /// The one problem's location, checking that its message contains `want`.
    pub(crate) fn located(text: &str, want: &str) -> (String, usize, usize) {
        let (where_, message) = problem(text);
        assert!(message.contains(want), "{message:?} lacks {want:?}");
        where_
    }

    fn key(path: &str, line: usize, column: usize) -> (String, usize, usize) {
        at(path, line, column)
    }

    #[test]
    fn the_minimal_scenario_loads() {
        let s = parse(MINIMAL, "t.toml").unwrap();
        assert_eq!(s.name, "t");
        assert_eq!(s.length_ms, 86_400_000);
    }

    #[test]
    fn problems_print_as_file_line_column_key_message() {
        let text = format!("{MINIMAL}[calls]\nanswer_rate = 1.5\n");
        let err = parse(&text, "scenarios/smoke.toml").unwrap_err();
        assert_eq!(
            err.to_string(),
            "scenarios/smoke.toml:11:15: calls.answer_rate: must be from 0 to 1, got 1.5"
        );
    }

    #[test]
    fn a_syntax_error_is_one_located_problem_without_a_key() {
        let text = MINIMAL.replace("seed = 7", "seed = = 7");
        let err = parse(&text, "t.toml").unwrap_err();
        let [p] = err.problems() else { panic!("{err}") };
        assert_eq!((p.line, p.key_path.as_str()), (3, ""));
        assert!(err.to_string().starts_with("t.toml:3:"), "{err}");
    }

    #[test]
    fn a_wrong_type_names_its_key_path_line_and_column() {
        let text = MINIMAL.replace("numbers = 10", "numbers = \"ten\"");
        let (at, message) = problem(&text);
        assert_eq!(at, key("tenants[0].numbers", 8, 11));
        assert_eq!(
            message,
            "expected a whole number from 0 to 4294967295, got the text \"ten\""
        );

        let text = format!("{MINIMAL}[calls]\nduration = {{ median = 120 }}\n");
        let (at, message) = problem(&text);
        assert_eq!(at, key("calls.duration.median", 11, 23));
        assert!(message.contains("a duration string"), "{message}");
    }

    #[test]
    fn an_unknown_key_is_named_with_the_allowed_ones() {
        let text = format!("{MINIMAL}[calls]\nanswer_rat = 0.5\n");
        let (at, message) = problem(&text);
        assert_eq!(at, key("calls.answer_rat", 11, 1));
        assert!(message.contains("unknown field `answer_rat`"), "{message}");
        assert!(message.contains("`answer_rate`"), "{message}");

        let text = MINIMAL.replace("seed = 7", "seed = 7\ncolour = \"blue\"");
        let (at, message) = problem(&text);
        assert_eq!(at, key("colour", 4, 1));
        assert!(message.contains("`description`"), "{message}");

        let text = format!("{MINIMAL}owner = \"x\"\n");
        let (at, _) = problem(&text);
        assert_eq!(at, key("tenants[0].owner", 10, 1));
    }

    #[test]
    fn a_missing_required_key_is_named() {
        let text = MINIMAL.replace("seed = 7\n", "");
        let (at, message) = problem(&text);
        assert_eq!(at.0, "seed");
        assert!(message.contains("missing field `seed`"), "{message}");

        let text = MINIMAL.replace("first_number = \"+14255550100\"\n", "");
        let (at, _) = problem(&text);
        assert_eq!(at.0, "tenants[0].first_number");
        assert_eq!(at.1, 7);
    }

    #[test]
    fn a_bad_drift_model_or_fault_key_is_refused_with_its_table() {
        let text = format!(
            "{MINIMAL}[[carrier.drift]]\nmodel = \"round\"\nincrement_ms = 6000\nmode = \"up\"\n\
             steps = 3\n"
        );
        let ((path, line, _), message) = problem(&text);
        assert!(path.starts_with("carrier.drift[0]"), "{path}");
        assert!(line >= 10, "{line}");
        assert!(message.contains("steps"), "{message}");

        let text = format!("{MINIMAL}[[carrier.drift]]\nmodel = \"teleport\"\n");
        let ((path, _, _), message) = problem(&text);
        assert!(path.starts_with("carrier.drift[0]"), "{path}");
        assert!(message.contains("teleport"), "{message}");

        let text = format!("{MINIMAL}[teams_faults]\nthrottle = 0.5\n");
        let (at, message) = problem(&text);
        assert_eq!(at, key("teams_faults.throttle", 11, 1));
        assert!(message.contains("throttle_share"), "{message}");
    }

    #[test]
    fn every_semantic_problem_is_reported_at_once() {
        let text = MINIMAL
            .replace("name = \"t\"", "name = \"Smoke Test\"")
            .replace("length = \"1d\"", "length = \"1 day\"")
            .replace("numbers = 10", "numbers = 0");
        let text = format!("{text}[calls]\nanswer_rate = -1.0\noutbound_share = 2.0\n");
        assert_eq!(
            problems(&text),
            [
                key("name", 1, 8),
                key("length", 5, 10),
                key("tenants[0].numbers", 8, 11),
                key("calls.answer_rate", 11, 15),
                key("calls.outbound_share", 12, 18),
            ]
        );
    }

    #[test]
    fn every_syntax_error_is_listed_once_per_line() {
        let text = MINIMAL
            .replace("seed = 7", "seed = = 7")
            .replace("length = \"1d\"", "length = \"1d");
        let err = parse(&text, "t.toml").unwrap_err();
        let lines: Vec<usize> = err.problems().iter().map(|p| p.line).collect();
        assert_eq!(lines, [3, 5], "{err}");
    }

    #[test]
    fn every_unknown_key_wrong_type_and_bad_value_is_listed_at_once() {
        let text = format!(
            "{MINIMAL}[calls]\nanswer_rat = 0.5\noutbound_share = 2.0\ncolour = \"red\"\n\
             [reconciliation]\ntolerance = 5\n"
        );
        let err = parse(&text, "t.toml").unwrap_err();
        let found: Vec<(&str, usize)> = err
            .problems()
            .iter()
            .map(|p| (p.key_path.as_str(), p.line))
            .collect();
        assert_eq!(
            found,
            [
                ("calls.answer_rat", 11),
                ("calls.outbound_share", 12),
                ("calls.colour", 13),
                ("reconciliation.tolerance", 15),
            ],
            "{err}"
        );
        let text = err.to_string();
        assert!(text.contains("did you mean `answer_rate`?"), "{text}");
        assert!(!text.contains("expected u"), "no Rust type names: {text}");
    }

    #[test]
    fn a_drift_table_written_with_one_bracket_is_pointed_at_two() {
        let text = format!(
            "{MINIMAL}[carrier]\nkind = \"mock\"\n[carrier.drift]\nmodel = \"offset\"\nms = 5\n"
        );
        let (at, message) = problem(&text);
        assert_eq!(at.0, "carrier.drift");
        assert!(
            message.contains("did you mean `[[carrier.drift]]`?"),
            "{message}"
        );

        let text = format!("{MINIMAL}[carrier]\ndrift = \"offset\"\n");
        let (_, message) = problem(&text);
        assert!(
            message.contains("did you mean `[[carrier.drift]]`?"),
            "{message}"
        );
    }

    #[test]
    fn a_required_key_of_the_wrong_type_is_one_problem_not_two() {
        let text = MINIMAL.replace("seed = 7", "seed = \"seven\"");
        let (at, message) = problem(&text);
        assert_eq!(at, key("seed", 3, 8));
        assert_eq!(
            message,
            "expected a whole number ≥ 0, got the text \"seven\""
        );
    }

    #[test]
    fn an_unreadable_file_is_a_read_error() {
        let err = load(Path::new("/nonexistent/scenario.toml")).unwrap_err();
        assert!(matches!(err, ScenarioError::Read { .. }), "{err}");
        assert!(err.problems().is_empty());
        assert!(
            err.to_string().starts_with("failed to read scenario"),
            "{err}"
        );
    }
}
