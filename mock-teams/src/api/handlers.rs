//! The handlers of the Teams API (PROTOCOL.md 3): each reads its query, asks the store, and
//! answers with a page and its link, or a problem.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use oc_protocol::json_write::PageWriter;
use oc_protocol::problem::ProblemKind;
use oc_protocol::validate::{
    check_idempotency_key, check_tenant_id, parse_page_size, parse_window,
};
use oc_protocol::{AssignmentState, IDEMPOTENCY_KEY_HEADER, Page, Problem, ReconClass, paths};

use super::{AppState, Call, Refusal, Reply, bad_parameter, problem};
use crate::cursor::{Cursor, CursorError};
use crate::exchange::ExchangeDetail;
use crate::store::ReportOutcome;
use crate::store::serve::FeedKind;

/// The query string as name → value, refusing names the endpoint does not take, repeats, and
/// paging parameters next to a link's token [CDR-PAGING].
fn query(call: &Call<'_>, allowed: &[&str]) -> Result<BTreeMap<String, String>, Refusal> {
    let pairs = actix_web::web::Query::<Vec<(String, String)>>::from_query(call.req.query_string())
        .map_err(|e| bad_parameter("query", format!("is not a valid query string: {e}")))?
        .into_inner();
    let mut out = BTreeMap::new();
    for (name, value) in pairs {
        if name != "token" && !allowed.contains(&name.as_str()) {
            let known = if allowed.is_empty() {
                "this endpoint takes none besides a link's token".to_owned()
            } else {
                format!("this endpoint takes {}", allowed.join(", "))
            };
            return Err(bad_parameter(
                &name,
                format!("is not a parameter here; {known}"),
            ));
        }
        if out.insert(name.clone(), value).is_some() {
            return Err(bad_parameter(&name, "is given more than once"));
        }
    }
    if out.contains_key("token") && out.len() > 1 {
        let extra: Vec<&str> = out
            .keys()
            .map(String::as_str)
            .filter(|k| *k != "token")
            .collect();
        return Err(bad_parameter(
            extra[0],
            "must not be added to a nextLink or deltaLink: follow links exactly as given",
        ));
    }
    Ok(out)
}

/// Opens a link's token issued to this carrier.
pub(super) fn open(state: &AppState, call: &Call<'_>, token: &str) -> Result<Cursor, Refusal> {
    let cursor = state.cursors.open(token).map_err(|e: CursorError| {
        problem(
            ProblemKind::InvalidCursor,
            format!("{e}; follow nextLink and deltaLink exactly as given"),
        )
    })?;
    if cursor.carrier() != call.carrier {
        // Another carrier's link: do not reveal that it exists [SEC-ISOLATION].
        return Err(problem(ProblemKind::NotFound, "no such link"));
    }
    Ok(cursor)
}

fn page_size(q: &BTreeMap<String, String>) -> Result<u32, Refusal> {
    parse_page_size(q.get("pageSize").map(String::as_str))
        .map_err(|e| Problem::validation(vec![e]).into())
}

/// How many items a page holds at most: the client's `pageSize`, capped at Teams' own maximum
/// (`FaultSettings::page_cap`; PROTOCOL.md 3: a page may hold fewer than `pageSize`).
fn page_limit(state: &AppState, size: u32) -> usize {
    match state.faults.settings().page_cap {
        0 => size as usize,
        cap => size.min(cap) as usize,
    }
}

fn link(state: &AppState, call: &Call<'_>, path: &str, cursor: &Cursor) -> String {
    format!(
        "{}{path}?token={}",
        state.base_url(call.req),
        state.cursors.seal(cursor)
    )
}

fn window(q: &BTreeMap<String, String>, max_ms: Option<i64>) -> Result<(i64, i64), Refusal> {
    parse_window(
        q.get("from").map(String::as_str),
        q.get("to").map(String::as_str),
        max_ms,
    )
    .map_err(|errors| Problem::validation(errors).into())
}

/// `GET /oc/v1/numbers?tenantId=&state=&pageSize=` (3.1).
pub(super) fn numbers(state: &AppState, call: &Call<'_>) -> Result<Reply, Refusal> {
    let q = query(call, &["tenantId", "state", "pageSize"])?;
    let (tenant, assigned, after, size) = match q.get("token") {
        Some(token) => match open(state, call, token)? {
            Cursor::Numbers {
                tenant,
                assigned,
                after,
                size,
                ..
            } => (tenant, assigned, Some(after), size),
            _ => return Err(wrong_link(paths::NUMBERS)),
        },
        None => {
            let assigned = match q.get("state").map(String::as_str) {
                None => false,
                Some("assigned") => true,
                Some(other) => {
                    return Err(bad_parameter(
                        "state",
                        format!(
                            "must be {} when given, is {other:?}",
                            AssignmentState::Assigned
                        ),
                    ));
                }
            };
            let tenant = q
                .get("tenantId")
                .map(|raw| check_tenant_id(raw).map(str::to_owned))
                .transpose()
                .map_err(|e| Refusal::from(Problem::validation(vec![e])))?;
            (tenant, assigned, None, page_size(&q)?)
        }
    };
    let (value, last) = state.store().numbers_page(
        call.carrier,
        tenant.as_deref(),
        assigned,
        after.as_deref(),
        page_limit(state, size),
    );
    let next_link = last.map(|after| {
        let cursor = Cursor::Numbers {
            c: call.carrier,
            tenant,
            assigned,
            after,
            size,
        };
        link(state, call, paths::NUMBERS, &cursor)
    });
    Ok(collection_page(value, next_link))
}

/// A page of a collection (not a change feed), recorded with the link it issued.
fn collection_page<T: serde::Serialize>(value: Vec<T>, next_link: Option<String>) -> Reply {
    let page = Page {
        value,
        next_link: next_link.clone(),
        delta_link: None,
    };
    Reply::json(StatusCode::OK, &page).with_detail(ExchangeDetail::CollectionPage { next_link })
}

pub(super) fn wrong_link(path: &str) -> Refusal {
    problem(
        ProblemKind::InvalidCursor,
        format!("this link's token belongs to another collection than {path}"),
    )
}

/// `GET /oc/v1/cdrs/delta` (3.2).
pub(super) fn cdrs_delta(state: &AppState, call: &Call<'_>) -> Result<Reply, Refusal> {
    feed(state, call, FeedKind::Cdr)
}

/// `GET /oc/v1/quality/delta` (3.3).
pub(super) fn quality_delta(state: &AppState, call: &Call<'_>) -> Result<Reply, Refusal> {
    feed(state, call, FeedKind::Quality)
}

fn feed(state: &AppState, call: &Call<'_>, kind: FeedKind) -> Result<Reply, Refusal> {
    let path = match kind {
        FeedKind::Cdr => paths::CDRS_DELTA,
        FeedKind::Quality => paths::QUALITY_DELTA,
    };
    let q = query(call, &["pageSize"])?;
    let store = state.store();
    let (position, size, chain_start) = match q.get("token") {
        Some(token) => match (kind, open(state, call, token)?) {
            (FeedKind::Cdr, Cursor::CdrDelta { pos, size, .. })
            | (FeedKind::Quality, Cursor::QualityDelta { pos, size, .. }) => (pos, size, false),
            _ => return Err(wrong_link(path)),
        },
        None => (store.feed_start(call.carrier, kind), page_size(&q)?, true),
    };
    if position > store.feed_len(call.carrier, kind) {
        return Err(problem(
            ProblemKind::InvalidCursor,
            "this link points past the end of the feed: it was issued by another run of this \
             server; start a new chain without a link",
        ));
    }
    let c = call.carrier;
    let limit = page_limit(state, size);
    let mut misclassified = Vec::new();
    // Written straight from the store's rows while its lock is held: no wire type with a
    // `String` per field is built on the way.
    let mut page = PageWriter::new(PAGE_BYTES_HINT);
    let span = match kind {
        FeedKind::Cdr => store.write_cdr_page(c, position, limit, &mut page),
        FeedKind::Quality => store.write_quality_page(c, position, limit, &mut page, |i, r| {
            if misclassify(state, r) {
                misclassified.push(u32::try_from(i).unwrap_or(u32::MAX));
            }
        }),
    };
    drop(store);
    let (from_position, next_position, more) = (span.first_position, span.next_position, span.more);
    let cursor = match kind {
        FeedKind::Cdr => Cursor::CdrDelta {
            c,
            pos: next_position,
            size,
        },
        FeedKind::Quality => Cursor::QualityDelta {
            c,
            pos: next_position,
            size,
        },
    };
    let url = link(state, call, path, &cursor);
    let body = if more {
        page.finish(Some(&url), None)
    } else {
        page.finish(None, Some(&url))
    };
    let reply = Reply::json_body(StatusCode::OK, body);
    let detail = ExchangeDetail::FeedPage {
        feed: match kind {
            FeedKind::Cdr => "cdr",
            FeedKind::Quality => "quality",
        }
        .to_owned(),
        chain_start,
        from_position,
        to_position: next_position,
        next: more,
        link: url,
        misclassified,
    };
    Ok(reply.with_detail(detail))
}

/// Flips the `poor` flag of a record the injected fault picks (`quality_misclassify_share`);
/// returns whether it did.
fn misclassify(state: &AppState, record: &mut oc_protocol::QualityRecord<&str>) -> bool {
    let flip = state
        .faults
        .misclassifies(record.call_id, record.stream_direction);
    if flip {
        record.poor = !record.poor;
    }
    flip
}

/// Room a feed page's body starts with: a full page of CDRs is about half a megabyte.
const PAGE_BYTES_HINT: usize = 64 * 1024;

/// `GET /oc/v1/cdrs?from=&to=&pageSize=` (3.2, backfill; at most 7 days).
pub(super) fn cdrs_window(state: &AppState, call: &Call<'_>) -> Result<Reply, Refusal> {
    let q = query(call, &["from", "to", "pageSize"])?;
    let (from, to, position, size) = match q.get("token") {
        Some(token) => match open(state, call, token)? {
            Cursor::CdrWindow {
                from,
                to,
                pos,
                size,
                ..
            } => (from, to, pos, size),
            _ => return Err(wrong_link(paths::CDRS)),
        },
        None => {
            let (from, to) = window(&q, Some(oc_protocol::cdr::MAX_WINDOW_MS))?;
            (from, to, 0, page_size(&q)?)
        }
    };
    let (value, next) =
        state
            .store()
            .cdr_window_page(call.carrier, (from, to), position, page_limit(state, size));
    let next_link = next.map(|pos| {
        let cursor = Cursor::CdrWindow {
            c: call.carrier,
            from,
            to,
            pos,
            size,
        };
        link(state, call, paths::CDRS, &cursor)
    });
    Ok(collection_page(value, next_link))
}

/// `POST /oc/v1/call-durations` (3.4).
pub(super) fn call_durations(state: &AppState, call: &Call<'_>) -> Result<Reply, Refusal> {
    query(call, &[])?;
    let key = call
        .req
        .headers()
        .get(IDEMPOTENCY_KEY_HEADER)
        .map(|v| v.to_str().unwrap_or("\u{fffd}"));
    let key =
        check_idempotency_key(key).map_err(|e| Refusal::from(Problem::validation(vec![e])))?;
    if call.body.is_empty() {
        return Err(problem(
            ProblemKind::MalformedBody,
            "the body is empty; send {\"records\": [...]} as application/json",
        ));
    }
    let outcome = state.store().report_durations(call.carrier, key, call.body);
    let (response, replayed) = match outcome {
        ReportOutcome::Applied(response) => (response, false),
        ReportOutcome::Replayed(response) => (response, true),
        ReportOutcome::Refused(problem) => return Err(problem.into()),
    };
    let detail = ExchangeDetail::DurationReport {
        key: key.to_owned(),
        accepted: response.accepted,
        rejected: u32::try_from(response.rejected.len()).unwrap_or(u32::MAX),
        replayed,
    };
    Ok(Reply::json(StatusCode::OK, &response).with_detail(detail))
}

/// `GET /oc/v1/reconciliation?from=&to=` (3.5).
pub(super) fn reconciliation(state: &AppState, call: &Call<'_>) -> Result<Reply, Refusal> {
    let q = query(call, &["from", "to"])?;
    let (from, to) = window(&q, None)?;
    let summary = state.store().reconciliation(call.carrier, from, to);
    Ok(Reply::json(StatusCode::OK, &summary))
}

/// `GET /oc/v1/reconciliation/items?class=&from=&to=&pageSize=` (3.5).
pub(super) fn reconciliation_items(state: &AppState, call: &Call<'_>) -> Result<Reply, Refusal> {
    let q = query(call, &["class", "from", "to", "pageSize"])?;
    let (class, from, to, position, size) = match q.get("token") {
        Some(token) => match open(state, call, token)? {
            Cursor::Items {
                class,
                from,
                to,
                call: index,
                after,
                size,
                ..
            } => (class, from, to, Cursor::items_position(index, after), size),
            _ => return Err(wrong_link(paths::RECONCILIATION_ITEMS)),
        },
        None => {
            let class = match q.get("class") {
                Some(raw) => ReconClass::ALL
                    .iter()
                    .copied()
                    .find(|c| c.as_str() == raw)
                    .ok_or_else(|| {
                        bad_parameter("class", "must be matched, drift, missing or unexpected")
                    })?,
                None => return Err(bad_parameter("class", "is required")),
            };
            let (from, to) = window(&q, None)?;
            let size = page_size(&q)?;
            (
                class,
                from,
                to,
                crate::store::recon::ItemsPosition::Calls(0),
                size,
            )
        }
    };
    let (value, next) = state.store().reconciliation_items(
        call.carrier,
        class,
        (from, to),
        position,
        page_limit(state, size),
    );
    let next_link = next.map(|position| {
        let (index, after) = match position {
            crate::store::recon::ItemsPosition::Calls(i) => (Some(i), None),
            crate::store::recon::ItemsPosition::Unmatched(after) => (None, after),
        };
        let cursor = Cursor::Items {
            c: call.carrier,
            class,
            from,
            to,
            call: index,
            after,
            size,
        };
        link(state, call, paths::RECONCILIATION_ITEMS, &cursor)
    });
    Ok(collection_page(value, next_link))
}
