//! Paged collections: `{"value": [...], "nextLink": ..., "deltaLink": ...}` (PROTOCOL.md 3).

use serde::{Deserialize, Serialize};

use crate::validate::{Findings, Path, Validate};

/// One page of a collection or a change feed.
///
/// A client follows `nextLink` exactly as given [CDR-PAGING]; on a change feed the last page
/// carries `deltaLink` instead, to call later for what became available since [CDR-FEED].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    /// The items of this page.
    pub value: Vec<T>,
    /// The next page, or null on the last page.
    pub next_link: Option<String>,
    /// On the last page of a change feed: where to ask for what comes next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta_link: Option<String>,
}

impl<T: Validate> Validate for Page<T> {
    fn validate_at(&self, at: Path<'_>, out: &mut Findings) {
        let value = at.key("value");
        out.count(
            value,
            self.value.len(),
            0,
            crate::validate::page_size::MAX as usize,
        );
        for (i, item) in self.value.iter().enumerate() {
            item.validate_at(value.index(i), out);
        }
        if self.next_link.is_some() && self.delta_link.is_some() {
            out.push(
                at.key("deltaLink"),
                "must be absent while there is a nextLink",
            );
        }
        for (key, link) in [
            ("nextLink", &self.next_link),
            ("deltaLink", &self.delta_link),
        ] {
            if link.as_deref().is_some_and(str::is_empty) {
                out.push(at.key(key), "must not be empty");
            }
        }
    }
}
