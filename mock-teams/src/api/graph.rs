//! Microsoft Graph's PSTN call log, served in Graph's shape (PROTOCOL.md 3.6):
//! `GET /v1.0/communications/callRecords/getPstnCalls(fromDateTime=…,toDateTime=…)`, pages of
//! up to 1,000 rows chained by `@odata.nextLink`, whose `$skiptoken` is sealed like every
//! other link of this server; errors as Graph's `{"error": {"code", "message"}}`.

use actix_web::http::StatusCode;
use oc_protocol::graph::{
    GraphError, GraphPage, MAX_PAGE_ROWS, PSTN_CALLS_CONTEXT, PSTN_CALLS_PATH, PstnCallsWindow,
    parse_pstn_calls_params, pstn_calls_path,
};
use oc_protocol::problem::ProblemKind;
use oc_protocol::{Problem, paths};

use super::handlers::{open, wrong_link};
use super::{AppState, Call, Refusal, Reply, problem};
use crate::cursor::{Cursor, CursorCodec};
use crate::exchange::ExchangeDetail;
use crate::store::Store;

/// The query option that carries a nextLink's position.
const SKIPTOKEN: &str = "$skiptoken";

/// Whether a path is Graph's, whose errors are Graph's shape rather than problem+json.
pub(crate) fn is_graph_path(path: &str) -> bool {
    path.starts_with("/v1.0/")
}

/// The body of a refusal on a Graph path: the problem's detail and fields as Graph's message.
pub(crate) fn error_body(problem: &Problem) -> Vec<u8> {
    let mut message = problem
        .detail
        .clone()
        .unwrap_or_else(|| problem.title.clone());
    for error in &problem.errors {
        message.push_str("; ");
        message.push_str(&error.to_string());
    }
    let error = GraphError::new(GraphError::code_for_status(problem.status), message);
    serde_json::to_vec(&error).unwrap_or_default()
}

/// How many rows a page holds: Graph's 1,000, or fewer under Teams' page cap
/// (`FaultSettings::page_cap`).
pub(crate) fn page_limit(page_cap: u32) -> usize {
    match page_cap {
        0 => MAX_PAGE_ROWS,
        cap => MAX_PAGE_ROWS.min(cap as usize),
    }
}

/// A page of the call log as the endpoint serves it.
pub(crate) struct RenderedPage {
    /// The JSON body.
    pub(crate) body: Vec<u8>,
    /// Its `@odata.nextLink`.
    pub(crate) next_link: Option<String>,
    /// The call index the next page starts from.
    pub(crate) next_position: Option<u32>,
}

/// One page of `carrier`'s call log over `window` from call index `position`, rendered as the
/// endpoint serves it, with links under `base`.
pub(crate) fn page_body(
    store: &Store,
    cursors: &CursorCodec,
    base: &str,
    carrier: u16,
    window: PstnCallsWindow,
    (position, limit): (u32, usize),
) -> RenderedPage {
    let (value, next) = store.pstn_calls_page(carrier, window, position, limit);
    let next_link = next.map(|pos| {
        let cursor = Cursor::PstnCalls {
            c: carrier,
            from: window.from,
            to: window.to,
            pos,
        };
        format!(
            "{base}{}?{SKIPTOKEN}={}",
            pstn_calls_path(window),
            cursors.seal(&cursor)
        )
    });
    let page = GraphPage {
        context: Some(format!("{base}/v1.0{PSTN_CALLS_CONTEXT}")),
        count: Some(value.len() as u64),
        value,
        next_link: next_link.clone(),
    };
    RenderedPage {
        body: serde_json::to_vec(&page).unwrap_or_default(),
        next_link,
        next_position: next,
    }
}

/// `GET /v1.0/communications/callRecords/getPstnCalls(fromDateTime=…,toDateTime=…)`.
pub(super) fn pstn_calls(state: &AppState, call: &Call<'_>) -> Result<Reply, Refusal> {
    let segment = function_segment(call.req.path())?;
    let window = parse_pstn_calls_params(&segment)
        .map_err(|e| problem(ProblemKind::Validation, e.to_string()))?;
    let position = match skiptoken(call.req.query_string())? {
        None => 0,
        Some(token) => match open(state, call, &token)? {
            Cursor::PstnCalls { from, to, pos, .. } if from == window.from && to == window.to => {
                pos
            }
            Cursor::PstnCalls { .. } => {
                return Err(problem(
                    ProblemKind::InvalidCursor,
                    "this $skiptoken belongs to another window than the path's fromDateTime and \
                     toDateTime; follow @odata.nextLink exactly as given",
                ));
            }
            _ => return Err(wrong_link(paths::GRAPH_PSTN_CALLS)),
        },
    };
    let limit = page_limit(state.faults.settings().page_cap);
    let base = state.base_url(call.req);
    let page = page_body(
        &state.store(),
        &state.cursors,
        &base,
        call.carrier,
        window,
        (position, limit),
    );
    Ok(Reply {
        status: StatusCode::OK,
        body: page.body,
        detail: Some(ExchangeDetail::CollectionPage {
            next_link: page.next_link,
        }),
    })
}

/// The function call of the path, percent-decoded: `getPstnCalls(…)`.
fn function_segment(path: &str) -> Result<String, Refusal> {
    let prefix = PSTN_CALLS_PATH.trim_end_matches("getPstnCalls");
    let raw = path.strip_prefix(prefix).unwrap_or(path);
    percent_decode(raw).ok_or_else(|| {
        problem(
            ProblemKind::Validation,
            "the path has a malformed percent-escape or is not UTF-8 once decoded",
        )
    })
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The `$skiptoken` of a nextLink, if the query has one; any other query option is refused:
/// the function takes its parameters in the path and pages only through `@odata.nextLink`.
fn skiptoken(query: &str) -> Result<Option<String>, Refusal> {
    if query.is_empty() {
        return Ok(None);
    }
    let pairs = actix_web::web::Query::<Vec<(String, String)>>::from_query(query)
        .map_err(|e| {
            problem(
                ProblemKind::Validation,
                format!("the query is malformed: {e}"),
            )
        })?
        .into_inner();
    let mut token = None;
    for (name, value) in pairs {
        if name != SKIPTOKEN {
            return Err(problem(
                ProblemKind::Validation,
                format!(
                    "query option {name:?} is not supported by getPstnCalls: the window goes in \
                     the path (fromDateTime, toDateTime) and paging only through \
                     @odata.nextLink"
                ),
            ));
        }
        if token.replace(value).is_some() {
            return Err(problem(
                ProblemKind::Validation,
                "$skiptoken is given more than once",
            ));
        }
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_escapes_decode_and_bad_ones_are_refused() {
        assert_eq!(
            percent_decode("getPstnCalls(fromDateTime=2026-01-01T00%3A00%3A00Z)").as_deref(),
            Some("getPstnCalls(fromDateTime=2026-01-01T00:00:00Z)")
        );
        for bad in ["%", "%4", "%zz", "%ff"] {
            assert_eq!(percent_decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn graph_errors_carry_the_problem_detail_and_fields() {
        let problem = Problem::validation(vec![oc_protocol::FieldError::at_parameter(
            "pageSize",
            "must be from 1 to 1000",
        )]);
        let body: serde_json::Value = serde_json::from_slice(&error_body(&problem)).unwrap();
        assert_eq!(body["error"]["code"], "BadRequest");
        assert_eq!(
            body["error"]["message"],
            "1 field is invalid; see errors; query parameter pageSize must be from 1 to 1000"
        );
    }

    #[test]
    fn the_page_cap_only_ever_lowers_the_page() {
        assert_eq!(page_limit(0), 1000);
        assert_eq!(page_limit(4), 4);
        assert_eq!(page_limit(5000), 1000);
    }
}
