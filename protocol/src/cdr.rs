//! Call detail records as Teams serves them (PROTOCOL.md 3.2), shaped like Graph's
//! `pstnCallLogRow`.

use serde::{Deserialize, Serialize};

use crate::validate::{Findings, Path, Validate};

/// Records are served for this long after they become available.
pub const RETENTION_DAYS: i64 = 90;

/// The longest window of `GET /oc/v1/cdrs?from=&to=`.
pub const MAX_WINDOW_MS: i64 = 7 * crate::timestamp::DAY_MS;

/// One call, as Teams recorded it. Its text is `String`s; a reader that keeps nothing of a
/// record reads `CallRecord<&str>` instead, borrowing every text from the page it read
/// (no allocation per field), and falls back to `CallRecord` when a text holds a JSON escape
/// and cannot be borrowed ([`CallRecord::borrowed`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallRecord<S = String> {
    /// The record id.
    pub id: S,
    /// 1 at first; higher each time Teams corrects the record.
    pub version: u32,
    /// The call; the key for reconciliation.
    pub call_id: S,
    /// The customer tenant.
    pub tenant_id: S,
    /// The carrier's number that was used.
    pub telephone_number: S,
    /// From the Teams user's point of view.
    pub direction: Direction,
    /// Who called, E.164.
    pub caller_number: S,
    /// Who was called, E.164.
    pub callee_number: S,
    /// Call set-up began.
    pub start_date_time: S,
    /// Answered; null when the call was not answered.
    pub connect_date_time: Option<S>,
    /// The call ended.
    pub end_date_time: S,
    /// `endDateTime − connectDateTime`, 0 when not answered.
    pub duration_ms: i64,
    /// The final SIP response code, e.g. 200, 486, 487, 503.
    pub final_sip_code: u16,
    /// `operator` once the carrier's duration is reconciled.
    pub call_duration_source: CallDurationSource,
    /// When the record entered the feed.
    pub available_date_time: S,
}

wire_enum! {
    /// The direction of a call, from the Teams user's point of view.
    pub enum Direction {
        /// The Teams user called out: the carrier's number is the caller.
        Outbound = "outbound",
        /// The Teams user was called: the carrier's number is the callee.
        Inbound = "inbound",
    }
}

wire_enum! {
    /// Whose duration a record's usage figures come from.
    pub enum CallDurationSource {
        /// Teams' own measurement.
        Microsoft = "microsoft",
        /// The carrier's reported duration, once reconciled.
        Operator = "operator",
    }
}

impl CallRecord {
    /// The record with every text borrowed from this one.
    pub fn borrowed(&self) -> CallRecord<&str> {
        CallRecord {
            id: &self.id,
            version: self.version,
            call_id: &self.call_id,
            tenant_id: &self.tenant_id,
            telephone_number: &self.telephone_number,
            direction: self.direction,
            caller_number: &self.caller_number,
            callee_number: &self.callee_number,
            start_date_time: &self.start_date_time,
            connect_date_time: self.connect_date_time.as_deref(),
            end_date_time: &self.end_date_time,
            duration_ms: self.duration_ms,
            final_sip_code: self.final_sip_code,
            call_duration_source: self.call_duration_source,
            available_date_time: &self.available_date_time,
        }
    }
}

impl<S: AsRef<str>> CallRecord<S> {
    /// The record with every text copied into a `String`.
    pub fn to_owned_record(&self) -> CallRecord {
        CallRecord {
            id: self.id.as_ref().to_owned(),
            version: self.version,
            call_id: self.call_id.as_ref().to_owned(),
            tenant_id: self.tenant_id.as_ref().to_owned(),
            telephone_number: self.telephone_number.as_ref().to_owned(),
            direction: self.direction,
            caller_number: self.caller_number.as_ref().to_owned(),
            callee_number: self.callee_number.as_ref().to_owned(),
            start_date_time: self.start_date_time.as_ref().to_owned(),
            connect_date_time: self
                .connect_date_time
                .as_ref()
                .map(|c| c.as_ref().to_owned()),
            end_date_time: self.end_date_time.as_ref().to_owned(),
            duration_ms: self.duration_ms,
            final_sip_code: self.final_sip_code,
            call_duration_source: self.call_duration_source,
            available_date_time: self.available_date_time.as_ref().to_owned(),
        }
    }
}

impl<S: AsRef<str>> Validate for CallRecord<S> {
    fn validate_at(&self, at: Path<'_>, out: &mut Findings) {
        out.uuid(at.key("id"), self.id.as_ref());
        if self.version == 0 {
            out.push(at.key("version"), "must be >= 1");
        }
        out.call_id(at.key("callId"), self.call_id.as_ref());
        out.uuid(at.key("tenantId"), self.tenant_id.as_ref());
        let number = self.telephone_number.as_ref();
        let number_ok = out.e164(at.key("telephoneNumber"), number);
        let caller_ok = out.e164(at.key("callerNumber"), self.caller_number.as_ref());
        let callee_ok = out.e164(at.key("calleeNumber"), self.callee_number.as_ref());
        if number_ok {
            let (side, key, ok) = match self.direction {
                Direction::Outbound => (&self.caller_number, "callerNumber", caller_ok),
                Direction::Inbound => (&self.callee_number, "calleeNumber", callee_ok),
            };
            if ok && side.as_ref() != number {
                out.push(
                    at.key(key),
                    format!(
                        "must be the carrier's telephoneNumber on an {} call",
                        self.direction
                    ),
                );
            }
        }
        let start = out.timestamp(at.key("startDateTime"), self.start_date_time.as_ref());
        let end = out.timestamp(at.key("endDateTime"), self.end_date_time.as_ref());
        let available = out.timestamp(
            at.key("availableDateTime"),
            self.available_date_time.as_ref(),
        );
        match &self.connect_date_time {
            Some(connect) => {
                let connect = out.timestamp(at.key("connectDateTime"), connect.as_ref());
                if self.final_sip_code != 200 {
                    out.push(at.key("finalSipCode"), "must be 200 on an answered call");
                }
                if let (Some(s), Some(c)) = (start, connect)
                    && c < s
                {
                    out.push(
                        at.key("connectDateTime"),
                        "must not be before startDateTime",
                    );
                }
                if let (Some(c), Some(e)) = (connect, end) {
                    if e < c {
                        out.push(at.key("endDateTime"), "must not be before connectDateTime");
                    } else if self.duration_ms != e - c {
                        out.push(
                            at.key("durationMs"),
                            format!("must equal endDateTime - connectDateTime ({} ms)", e - c),
                        );
                    }
                }
            }
            None => {
                if !(300..=699).contains(&self.final_sip_code) {
                    out.push(
                        at.key("finalSipCode"),
                        "must be a final failure code (300 to 699) on an unanswered call",
                    );
                }
                if self.duration_ms != 0 {
                    out.push(at.key("durationMs"), "must be 0 on an unanswered call");
                }
                if let (Some(s), Some(e)) = (start, end)
                    && e < s
                {
                    out.push(at.key("endDateTime"), "must not be before startDateTime");
                }
            }
        }
        if let (Some(e), Some(a)) = (end, available)
            && a < e
        {
            out.push(
                at.key("availableDateTime"),
                "must not be before endDateTime",
            );
        }
    }
}
