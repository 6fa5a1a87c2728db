//! Duration reports: the carrier tells Teams how long each call lasted (PROTOCOL.md 3.4).

use serde::{Deserialize, Serialize};

use crate::body;
use crate::problem::{FieldError, Problem};
use crate::validate::{Findings, Path, Validate};

/// The most records one report carries.
pub const MAX_RECORDS_PER_REPORT: usize = 1000;

/// The longest `durationMs` Teams stores: 4 294 967 295 ms (about 49.7 days). Longer is
/// refused with its pointer, never stored cut down.
pub const MAX_DURATION_MS: i64 = u32::MAX as i64;

/// How far `durationMs` may stray from `endDateTime − connectDateTime`.
pub const DURATION_SLACK_MS: i64 = 1;

/// `POST /oc/v1/call-durations`: 1 to 1000 records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DurationReportBatch {
    /// The durations.
    pub records: Vec<DurationReport>,
}

/// The carrier's duration of one call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DurationReport {
    /// The call, as in Teams' CDR (or the certification leg).
    pub call_id: String,
    /// The carrier's number that was used.
    pub telephone_number: String,
    /// When the carrier's switch saw the call answered.
    pub connect_date_time: String,
    /// When the carrier's switch saw the call end.
    pub end_date_time: String,
    /// `endDateTime − connectDateTime`, within 1 ms.
    pub duration_ms: i64,
}

/// The answer to a duration report: what was accepted, and each rejected record with why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DurationReportResponse {
    /// How many records were accepted.
    pub accepted: u32,
    /// The records that were not, in request order.
    pub rejected: Vec<RejectedRecord>,
}

/// One rejected record of a duration report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RejectedRecord {
    /// Its index in `records`.
    pub index: u32,
    /// Its `callId`, when it had a readable one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
    /// Every error found in it, with pointers from the request body's root.
    pub errors: Vec<FieldError>,
}

impl Validate for DurationReportBatch {
    fn validate_at(&self, at: Path<'_>, out: &mut Findings) {
        let records = at.key("records");
        out.count(records, self.records.len(), 1, MAX_RECORDS_PER_REPORT);
        for (i, record) in self.records.iter().enumerate() {
            record.validate_at(records.index(i), out);
        }
    }
}

impl Validate for DurationReport {
    fn validate_at(&self, at: Path<'_>, out: &mut Findings) {
        out.call_id(at.key("callId"), &self.call_id);
        out.e164(at.key("telephoneNumber"), &self.telephone_number);
        let connect = out.timestamp(at.key("connectDateTime"), &self.connect_date_time);
        let end = out.timestamp(at.key("endDateTime"), &self.end_date_time);
        if self.duration_ms < 0 {
            out.push(at.key("durationMs"), "must be >= 0");
        } else if self.duration_ms > MAX_DURATION_MS {
            out.push(
                at.key("durationMs"),
                format!("must be <= {MAX_DURATION_MS}, is {}", self.duration_ms),
            );
        }
        if let (Some(c), Some(e)) = (connect, end) {
            if e < c {
                out.push(at.key("endDateTime"), "must not be before connectDateTime");
            } else if (0..=MAX_DURATION_MS).contains(&self.duration_ms)
                && (self.duration_ms - (e - c)).abs() > DURATION_SLACK_MS
            {
                out.push(
                    at.key("durationMs"),
                    format!(
                        "must equal endDateTime - connectDateTime ({} ms) within {DURATION_SLACK_MS} ms",
                        e - c
                    ),
                );
            }
        }
    }
}

/// A duration report read record by record, as the Teams side must [DUR-SCHEMA]: one bad record
/// is rejected alone and the others are accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedDurationReport {
    /// Each record in request order: valid, or its errors (pointers from the body's root).
    pub records: Vec<Result<DurationReport, RejectedRecord>>,
}

/// Reads a `POST /oc/v1/call-durations` body.
///
/// A body that is not a JSON object with a `records` array of 1 to 1000 items is refused whole
/// (the `Err` is the 400 problem to answer). Otherwise every record is read and validated on its
/// own.
pub fn parse_duration_report(bytes: &[u8]) -> Result<ParsedDurationReport, Problem> {
    // A sound body is read in one pass, straight into its records. Otherwise each record is
    // kept as its slice of the body and read on its own, straight into its type: one bad
    // record does not spoil the others, and no JSON tree is built.
    #[derive(Deserialize)]
    struct Whole {
        records: Vec<DurationReport>,
    }
    #[derive(Deserialize)]
    struct Envelope<'a> {
        #[serde(borrow)]
        records: Vec<&'a serde_json::value::RawValue>,
    }
    let count = |len: usize| {
        let mut findings = Findings::default();
        findings.count(Path::ROOT.key("records"), len, 1, MAX_RECORDS_PER_REPORT);
        if findings.is_empty() {
            Ok(())
        } else {
            Err(Problem::validation(findings.into_errors()))
        }
    };
    if let Ok(whole) = serde_json::from_slice::<Whole>(bytes) {
        count(whole.records.len())?;
        let records = whole
            .records
            .into_iter()
            .enumerate()
            .map(|(index, record)| validated(index, record))
            .collect();
        return Ok(ParsedDurationReport { records });
    }
    let envelope: Envelope = body::from_slice(bytes).map_err(Problem::malformed)?;
    count(envelope.records.len())?;
    let records = envelope
        .records
        .into_iter()
        .enumerate()
        .map(|(index, raw)| read_record(index, raw.get()))
        .collect();
    Ok(ParsedDurationReport { records })
}

fn read_record(index: usize, text: &str) -> Result<DurationReport, RejectedRecord> {
    let records = Path::ROOT.key("records");
    let here = records.index(index);
    let record = body::from_slice::<DurationReport>(text.as_bytes()).map_err(|err| {
        // The pointer says where; serde's line and column would count from the record's own
        // first byte, not the body's.
        let err = err.without_location();
        RejectedRecord {
            index: u32::try_from(index).unwrap_or(u32::MAX),
            call_id: readable_call_id(text),
            errors: vec![err.under(&here.pointer()).field_error()],
        }
    })?;
    validated(index, record)
}

/// Record `index` of a report, read: itself when valid, else rejected with its findings.
fn validated(index: usize, mut record: DurationReport) -> Result<DurationReport, RejectedRecord> {
    let records = Path::ROOT.key("records");
    let here = records.index(index);
    let mut findings = Findings::default();
    record.validate_at(here, &mut findings);
    if findings.is_empty() {
        Ok(record)
    } else {
        Err(RejectedRecord {
            index: u32::try_from(index).unwrap_or(u32::MAX),
            call_id: Some(std::mem::take(&mut record.call_id)),
            errors: findings.into_errors(),
        })
    }
}

/// The `callId` of a record that could not be read whole, when it is a string.
fn readable_call_id(text: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    value.get("callId")?.as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(duration_ms: i64) -> serde_json::Value {
        serde_json::json!({
            "callId": "call-1",
            "telephoneNumber": "+14255550100",
            "connectDateTime": "2026-11-26T09:15:01.000Z",
            "endDateTime": "2026-11-26T09:16:02.000Z",
            "durationMs": duration_ms,
        })
    }

    #[test]
    fn one_bad_record_is_rejected_alone() {
        let mut wrong_type = record(61_000);
        wrong_type["durationMs"] = serde_json::json!("61000");
        let body = serde_json::json!({"records": [record(61_000), record(-5), wrong_type, record(61_001)]});
        let parsed = parse_duration_report(body.to_string().as_bytes()).unwrap();
        assert!(parsed.records[0].is_ok());
        let negative = parsed.records[1].as_ref().unwrap_err();
        assert_eq!(negative.index, 1);
        assert_eq!(negative.call_id.as_deref(), Some("call-1"));
        assert_eq!(
            negative.errors,
            [FieldError::at_pointer(
                "/records/1/durationMs",
                "must be >= 0"
            )]
        );
        let typed = parsed.records[2].as_ref().unwrap_err();
        assert_eq!(
            typed.errors[0].pointer.as_deref(),
            Some("/records/2/durationMs")
        );
        assert!(parsed.records[3].is_ok(), "1 ms of slack is allowed");
    }

    /// A body whose records all read is taken in one pass; a record the validation refuses
    /// is rejected the same way as when another record cannot be read and each is read alone.
    #[test]
    fn one_pass_and_record_by_record_reading_agree() {
        let mut wrong_type = record(61_000);
        wrong_type["durationMs"] = serde_json::json!("61000");
        let sound = serde_json::json!({"records": [record(61_000), record(-5)]});
        let spoiled = serde_json::json!({"records": [record(61_000), record(-5), wrong_type]});
        let one_pass = parse_duration_report(sound.to_string().as_bytes()).unwrap();
        let by_record = parse_duration_report(spoiled.to_string().as_bytes()).unwrap();
        assert_eq!(one_pass.records[..], by_record.records[..2]);
        assert!(by_record.records[2].is_err());
    }

    #[test]
    fn duration_must_agree_with_the_timestamps() {
        let body = serde_json::json!({"records": [record(61_002)]});
        let parsed = parse_duration_report(body.to_string().as_bytes()).unwrap();
        let err = parsed.records[0].as_ref().unwrap_err();
        assert_eq!(
            err.errors[0].message,
            "must equal endDateTime - connectDateTime (61000 ms) within 1 ms"
        );
    }

    #[test]
    fn a_duration_over_u32_ms_is_refused_at_its_pointer_not_cut_down() {
        let max = MAX_DURATION_MS;
        let over = |ms: i64| {
            serde_json::json!({
                "callId": "long",
                "telephoneNumber": "+14255550100",
                "connectDateTime": "2026-01-01T00:00:00.000Z",
                "endDateTime": crate::format_timestamp(
                    crate::parse_timestamp("2026-01-01T00:00:00.000Z").unwrap() + ms
                ),
                "durationMs": ms,
            })
        };
        let body = serde_json::json!({"records": [over(max), over(max + 1)]});
        let parsed = parse_duration_report(body.to_string().as_bytes()).unwrap();
        assert!(parsed.records[0].is_ok(), "4294967295 ms is still taken");
        let err = parsed.records[1].as_ref().unwrap_err();
        assert_eq!(
            err.errors,
            [FieldError::at_pointer(
                "/records/1/durationMs",
                "must be <= 4294967295, is 4294967296"
            )]
        );
    }

    #[test]
    fn the_envelope_is_refused_whole() {
        let empty = parse_duration_report(br#"{"records": []}"#).unwrap_err();
        assert_eq!(empty.status, 400);
        assert_eq!(empty.errors[0].pointer.as_deref(), Some("/records"));
        let too_many: Vec<_> = (0..1001).map(|_| record(61_000)).collect();
        let body = serde_json::json!({ "records": too_many });
        let err = parse_duration_report(body.to_string().as_bytes()).unwrap_err();
        assert_eq!(
            err.errors[0].message,
            "must hold 1 to 1000 items, holds 1001"
        );
        let not_json = parse_duration_report(b"records").unwrap_err();
        assert_eq!(not_json.kind, crate::ProblemKind::MalformedBody.type_uri());
        let no_records = parse_duration_report(b"{}").unwrap_err();
        assert!(no_records.to_string().contains("missing field `records`"));
    }
}
