//! Loading a scenario file: TOML read strictly into the file's own structs, then converted and
//! checked, with every problem located as `FILE:LINE:COLUMN: key.path: message`.

use std::fmt;
use std::path::{Path, PathBuf};

use toml::de::DeTable;

use super::convert::convert;
use super::model::Scenario;
use super::raw::RawScenario;
use super::spans::{line_column, locate};

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

/// Reads and checks scenario TOML `text`; `origin` names it in error messages.
pub fn parse(text: &str, origin: &str) -> Result<Scenario, ScenarioError> {
    let invalid = |problems| ScenarioError::Invalid {
        origin: origin.to_owned(),
        problems,
    };
    let doc = DeTable::parse(text).map_err(|e| {
        let (line, column) = line_column(text, e.span().map_or(0, |s| s.start));
        invalid(vec![Problem {
            line,
            column,
            key_path: String::new(),
            message: e.message().trim().to_owned(),
        }])
    })?;
    let raw: RawScenario = serde_path_to_error::deserialize(toml::Deserializer::from(doc.clone()))
        .map_err(|e| invalid(vec![serde_problem(text, doc.get_ref(), &e)]))?;
    convert(raw).map_err(|findings| {
        let mut problems: Vec<Problem> = findings
            .into_iter()
            .map(|finding| {
                let at = finding.at.as_deref().unwrap_or(&finding.key);
                let (line, column) = line_column(text, locate(doc.get_ref(), at));
                Problem {
                    line,
                    column,
                    key_path: finding.key,
                    message: finding.message,
                }
            })
            .collect();
        // In file order, so that the list reads top to bottom; stable, so that the problems of
        // one key keep the order of the checks.
        problems.sort_by_key(|p| (p.line, p.column));
        invalid(problems)
    })
}

/// A serde error as a problem: the key path from serde_path_to_error, completed with the key
/// a "missing field" or "unknown field" message names, and the position from toml's span.
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
    Problem {
        line,
        column,
        key_path,
        message,
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
        assert!(message.contains("expected u32"), "{message}");

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
