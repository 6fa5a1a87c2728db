//! The scenario format's reference, `docs/scenario-reference.md`, read as data: which keys each
//! table takes, so that a key written in the wrong table is pointed at its own. The tests below
//! keep the document and the loader in step, key for key, both ways.

use std::sync::OnceLock;

/// The reference a user reads, compiled in.
pub(crate) const TEXT: &str = include_str!("../../../docs/scenario-reference.md");

/// One table of the format (or one variant of a list of tables, such as a drift model).
#[derive(Debug)]
pub(crate) struct Section {
    /// The table's dotted path: `""` for the top level, `calls.duration`, `carrier.drift`.
    pub(crate) table: String,
    /// Written `[[table]]`: a list of tables.
    pub(crate) array: bool,
    /// The `model = "…"` a section of a list of tables is about, when it is about one.
    #[cfg_attr(
        not(test),
        expect(
            dead_code,
            reason = "read by the tests that hold the reference to the loader"
        )
    )]
    pub(crate) variant: Option<String>,
    /// The keys its table of keys documents, in order.
    pub(crate) keys: Vec<String>,
}

/// Every section of the reference, in document order.
pub(crate) fn sections() -> &'static [Section] {
    static SECTIONS: OnceLock<Vec<Section>> = OnceLock::new();
    SECTIONS.get_or_init(|| parse(TEXT))
}

/// The first table (in document order) whose keys include `key`, top level as `""`.
pub(crate) fn table_of(key: &str) -> Option<&'static str> {
    sections()
        .iter()
        .find(|s| s.keys.iter().any(|k| k == key))
        .map(|s| s.table.as_str())
}

/// Whether `table` (dotted, no indexes) is written as `[[table]]`.
pub(crate) fn is_array_of_tables(table: &str) -> bool {
    sections().iter().any(|s| s.array && s.table == table)
}

/// How a table is written in a file, in backticks: `` `[calls]` ``, `` `[[tenants]]` ``, or
/// "the top level".
pub(crate) fn header(table: &str) -> String {
    if table.is_empty() {
        "the top level".to_owned()
    } else if is_array_of_tables(table) {
        format!("`[[{table}]]`")
    } else {
        format!("`[{table}]`")
    }
}

/// Reads the sections out of the Markdown: a heading naming `` `[table]` `` or
/// `` `[[table]]` `` (or "Top level") starts a table, a heading naming `` `model = "x"` ``
/// a variant of the last one, and each row of a Markdown table whose first cell is
/// `` `key` `` documents a key.
fn parse(text: &str) -> Vec<Section> {
    let mut sections: Vec<Section> = Vec::new();
    let mut table = None::<(String, bool)>;
    for line in text.lines() {
        if line.starts_with('#') {
            let ticked: Vec<&str> = line.split('`').skip(1).step_by(2).collect();
            if let Some(name) = ticked
                .iter()
                .find_map(|t| t.strip_prefix("[[").and_then(|t| t.strip_suffix("]]")))
            {
                table = Some((name.to_owned(), true));
            } else if let Some(name) = ticked
                .iter()
                .find_map(|t| t.strip_prefix('[').and_then(|t| t.strip_suffix(']')))
            {
                table = Some((name.to_owned(), false));
            } else if line.to_ascii_lowercase().contains("top level") {
                table = Some((String::new(), false));
            } else if let Some(model) = ticked.iter().find_map(|t| {
                t.strip_prefix("model = \"")
                    .and_then(|t| t.strip_suffix('"'))
            }) {
                if let Some((name, array)) = &table {
                    sections.push(Section {
                        table: name.clone(),
                        array: *array,
                        variant: Some(model.to_owned()),
                        keys: Vec::new(),
                    });
                }
                continue;
            } else {
                continue;
            }
            if let Some((name, array)) = &table {
                sections.push(Section {
                    table: name.clone(),
                    array: *array,
                    variant: None,
                    keys: Vec::new(),
                });
            }
        } else if let Some(row) = line.strip_prefix("| `")
            && let Some((key, _)) = row.split_once('`')
            && let Some(section) = sections.last_mut()
        {
            section.keys.push(key.to_owned());
        }
    }
    sections
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::super::load::tests::MINIMAL;
    use super::super::raw::RawScenario;
    use super::*;

    /// A key no table takes, to make the loader list the keys a table does take.
    const STRAY: &str = "zz_not_a_key";

    /// What the loader says a table takes, read from serde's refusal of a stray key in it.
    fn accepted(text: &str) -> BTreeSet<String> {
        let err = toml::from_str::<RawScenario>(text).expect_err("a stray key is refused");
        let message = err.message().to_owned();
        let tail = message
            .split_once(&format!("unknown field `{STRAY}`"))
            .or_else(|| message.split_once("unknown variant `zz_not_a_model`"))
            .unwrap_or_else(|| panic!("not a stray-key refusal: {message}"))
            .1;
        tail.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect()
    }

    /// A valid scenario with a stray key in `table` (and `model = variant` for a variant).
    fn with_stray(section: &Section) -> String {
        let stray = format!("{STRAY} = 1\n");
        match (section.table.as_str(), &section.variant) {
            ("", _) => MINIMAL.replace("seed = 7\n", &format!("seed = 7\n{stray}")),
            ("tenants", _) => format!("{MINIMAL}{stray}"),
            (table, Some(model)) => {
                format!("{MINIMAL}[[{table}]]\nmodel = \"{model}\"\n{stray}")
            }
            (table, None) if section.array => format!("{MINIMAL}[[{table}]]\n{stray}"),
            (table, None) => format!("{MINIMAL}[{table}]\n{stray}"),
        }
    }

    fn documented(section: &Section) -> BTreeSet<String> {
        section.keys.iter().cloned().collect()
    }

    #[test]
    fn the_reference_documents_exactly_the_keys_the_loader_accepts() {
        let sections = sections();
        assert!(sections.len() >= 10, "{sections:#?}");
        for section in sections {
            let mut want = documented(section);
            if section.variant.is_none()
                && sections
                    .iter()
                    .any(|s| s.table == section.table && s.variant.is_some())
            {
                // The list's own section documents `model`, which picks the variant; each
                // variant's section documents its keys.
                assert!(
                    want.remove("model"),
                    "{}: `model` undocumented",
                    section.table
                );
                let variants: BTreeSet<String> = sections
                    .iter()
                    .filter(|s| s.table == section.table)
                    .filter_map(|s| s.variant.clone())
                    .collect();
                let text = format!(
                    "{MINIMAL}[[{}]]\nmodel = \"zz_not_a_model\"\n",
                    section.table
                );
                assert_eq!(
                    accepted(&text),
                    variants,
                    "the models of `[[{}]]`: the reference (right) against the loader (left)",
                    section.table
                );
                assert!(
                    want.is_empty(),
                    "{}: keys outside a model: {want:?}",
                    section.table
                );
                continue;
            }
            assert_eq!(
                accepted(&with_stray(section)),
                want,
                "the keys of {} {:?}: the reference (right) against the loader (left)",
                header(&section.table),
                section.variant
            );
        }
    }

    #[test]
    fn every_table_the_loader_takes_has_a_section() {
        let top = sections()
            .iter()
            .find(|s| s.table.is_empty())
            .expect("a top-level section");
        for key in &top.keys {
            let text = MINIMAL.replace("seed = 7\n", &format!("seed = 7\n{key} = 1\n"));
            let message = match toml::from_str::<RawScenario>(&text) {
                Ok(_) => continue,
                Err(err) => err.message().to_owned(),
            };
            // A key whose value is a table needs a section of its own.
            if message.contains("expected struct") || message.contains("a sequence") {
                assert!(
                    sections().iter().any(|s| s.table == *key),
                    "`{key}` is a table without a section: {message}"
                );
            }
        }
    }

    #[test]
    fn every_toml_example_of_the_reference_loads() {
        let mut blocks = 0;
        let mut lines = TEXT.lines();
        while let Some(line) = lines.next() {
            if line.trim() != "```toml" {
                continue;
            }
            let block: String = lines
                .by_ref()
                .take_while(|l| l.trim() != "```")
                .map(|l| format!("{l}\n"))
                .collect();
            blocks += 1;
            // A whole scenario stands alone; a snippet is read after the smallest scenario.
            let text = if block.contains("\nname = ") || block.starts_with("name = ") {
                block.clone()
            } else {
                format!("{MINIMAL}{block}")
            };
            if let Err(err) = super::super::parse(&text, "docs/scenario-reference.md") {
                panic!("example {blocks} does not load: {err}\n{text}");
            }
        }
        assert!(blocks >= 5, "only {blocks} examples");
    }

    #[test]
    fn tables_read_from_the_markdown() {
        let s = parse(
            "## Top level\n| key | type |\n| --- | --- |\n| `name` | text |\n\
             ## `[[carrier.drift]]`\n| `model` | text |\n### `model = \"offset\"`\n| `ms` | ms |\n",
        );
        assert_eq!(s.len(), 3);
        assert_eq!(
            (s[0].table.as_str(), s[0].keys.clone()),
            ("", vec!["name".to_owned()])
        );
        assert!(s[1].array && s[1].table == "carrier.drift");
        assert_eq!(s[2].variant.as_deref(), Some("offset"));
        assert_eq!(s[2].keys, ["ms"]);
    }
}
