//! The rule catalogue against PROTOCOL.md: every bracketed rule id is in the catalogue, with
//! the sections that state it. The project's `protocol/PROTOCOL.md` leads; the shared copy it
//! grew from is no longer kept equal to it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use oc_protocol::rules::catalogue;

const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");

fn repository_copy() -> String {
    let path = Path::new(MANIFEST_DIR).join("PROTOCOL.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Each bracketed rule id (`[NUM-ORDER]`) with the numbers of the sections it stands in.
fn rule_ids_by_section(protocol: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut section = String::new();
    let mut found: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in protocol.lines() {
        if let Some(heading) = line.strip_prefix('#') {
            let first = heading.trim_start_matches('#').split_whitespace().next();
            if let Some(number) = first.map(|w| w.trim_end_matches('.'))
                && !number.is_empty()
                && number.chars().all(|c| c.is_ascii_digit() || c == '.')
            {
                section = number.to_owned();
            }
            continue;
        }
        for (start, _) in line.match_indices('[') {
            let rest = &line[start + 1..];
            let Some(end) = rest.find(']') else { continue };
            let id = &rest[..end];
            let is_rule = id.split_once('-').is_some_and(|(area, name)| {
                (2..=4).contains(&area.len())
                    && area.chars().all(|c| c.is_ascii_uppercase())
                    && !name.is_empty()
                    && name.chars().all(|c| c.is_ascii_uppercase())
            });
            if is_rule {
                found
                    .entry(id.to_owned())
                    .or_default()
                    .insert(section.clone());
            }
        }
    }
    found
}

#[test]
fn every_rule_of_protocol_md_is_in_the_catalogue_with_its_sections() {
    let in_protocol = rule_ids_by_section(&repository_copy());
    assert!(in_protocol.len() >= 18, "found only {in_protocol:?}");
    let in_catalogue: BTreeMap<String, BTreeSet<String>> = catalogue()
        .iter()
        .map(|rule| {
            let sections = rule.sections.iter().map(|s| (*s).to_owned()).collect();
            (rule.id.as_str().to_owned(), sections)
        })
        .collect();
    assert_eq!(
        in_catalogue, in_protocol,
        "the catalogue (left) and PROTOCOL.md (right) disagree on rule ids or their sections"
    );
}

#[test]
fn the_section_finder_reads_headings_and_brackets() {
    let text = "## 0. Common\nA [CDR-THROTTLE] rule.\n### 2.1 `POST`\n[NUM-ACK]; [NUM-ORDER]\n\
                [not a rule] [lower-case]\n### 2.2 probe\n[NUM-ACK]\n";
    let found = rule_ids_by_section(text);
    let sections = |id: &str| found[id].iter().cloned().collect::<Vec<_>>();
    assert_eq!(found.len(), 3);
    assert_eq!(sections("CDR-THROTTLE"), ["0"]);
    assert_eq!(sections("NUM-ACK"), ["2.1", "2.2"]);
    assert_eq!(sections("NUM-ORDER"), ["2.1"]);
}
