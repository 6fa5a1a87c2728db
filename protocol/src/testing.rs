//! Proptest strategies that generate valid values of every wire type (feature `testing`), for
//! the property tests of this crate and of the crates built on it.
//!
//! Every value these strategies produce passes [`crate::Validate`]; the tests check that.

use proptest::prelude::*;
use proptest::sample::select;

use crate::timestamp::{MINUTE_MS, format_timestamp};
use crate::*;

/// A plausible simulation instant: 2020 to 2035.
pub fn instant() -> impl Strategy<Value = UnixMillis> {
    1_577_836_800_000i64..2_051_222_400_000
}

/// A lower-case hyphenated UUID.
pub fn uuid() -> impl Strategy<Value = String> {
    any::<u128>().prop_map(|n| {
        let h = format!("{n:032x}");
        format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    })
}

/// An E.164 number: `+`, a first digit 1 to 9, then 7 to 14 more digits.
pub fn e164() -> impl Strategy<Value = String> {
    "\\+[1-9][0-9]{7,14}"
}

/// A `callId`: 1 to 128 characters, ASCII-heavy but with some non-ASCII.
pub fn call_id() -> impl Strategy<Value = String> {
    prop_oneof!["[A-Za-z0-9-]{1,64}", "[a-zé€😀 /~\"\\\\]{1,128}",]
}

/// A SIP URI naming `number`.
pub fn sip_uri(number: String) -> impl Strategy<Value = String> {
    select(vec![
        "sbc1.carrier.example",
        "sbc2.carrier.example:5061",
        "192.0.2.10",
        "[2001:db8::1]:5060",
    ])
    .prop_map(move |host| format!("sip:{number}@{host};user=phone"))
}

fn timestamp() -> impl Strategy<Value = String> {
    instant().prop_map(format_timestamp)
}

/// A number event of any type, valid in itself.
pub fn number_event() -> impl Strategy<Value = NumberEvent> {
    (
        uuid(),
        1u64..1_000_000,
        select(NumberEventType::ALL),
        uuid(),
        e164(),
        select(NumberUsage::ALL),
        uuid(),
        timestamp(),
    )
        .prop_flat_map(
            |(event_id, sequence, kind, tenant_id, number, usage, assignee_id, effective)| {
                let uri = sip_uri(number.clone());
                uri.prop_map(move |sip_uri| {
                    let assigned = kind != NumberEventType::Unassigned;
                    NumberEvent {
                        event_id: event_id.clone(),
                        sequence,
                        kind,
                        tenant_id: tenant_id.clone(),
                        telephone_number: number.clone(),
                        sip_uri: assigned.then_some(sip_uri),
                        usage: assigned.then_some(usage),
                        assignee: assigned.then(|| Assignee {
                            id: assignee_id.clone(),
                            kind: usage.assignee_type(),
                        }),
                        effective_date_time: effective.clone(),
                    }
                })
            },
        )
}

/// A notification of 1 to 100 events with distinct ids.
pub fn number_assignment_notification() -> impl Strategy<Value = NumberAssignmentNotification> {
    (
        uuid(),
        timestamp(),
        proptest::collection::vec(number_event(), 1..=8),
    )
        .prop_map(|(notification_id, sent_date_time, mut events)| {
            // 128 random bits collide with negligible probability, but make it certain.
            for (i, event) in events.iter_mut().enumerate() {
                event.event_id.replace_range(0..4, &format!("{i:04x}"));
            }
            NumberAssignmentNotification {
                notification_id,
                sent_date_time,
                events,
            }
        })
}

/// The carrier's view of a number, assigned or not.
pub fn carrier_number_view() -> impl Strategy<Value = CarrierNumberView> {
    number_event().prop_flat_map(|event| {
        (0u64..=event.sequence).prop_map(move |applied_events| CarrierNumberView {
            telephone_number: event.telephone_number.clone(),
            tenant_id: event.tenant_id.clone(),
            state: assignment_state(event.kind),
            sip_uri: event.sip_uri.clone(),
            usage: event.usage,
            sequence: event.sequence,
            applied_events,
        })
    })
}

/// Teams' state of a number, assigned or not.
pub fn teams_number() -> impl Strategy<Value = TeamsNumber> {
    number_event().prop_map(|event| TeamsNumber {
        telephone_number: event.telephone_number,
        tenant_id: event.tenant_id,
        state: assignment_state(event.kind),
        sip_uri: event.sip_uri,
        usage: event.usage,
        assignee: event.assignee,
        sequence: event.sequence,
        last_changed_date_time: event.effective_date_time,
    })
}

fn assignment_state(kind: NumberEventType) -> AssignmentState {
    match kind {
        NumberEventType::Unassigned => AssignmentState::Unassigned,
        NumberEventType::Assigned | NumberEventType::Updated => AssignmentState::Assigned,
    }
}

/// A call record, answered or not, outbound or inbound.
pub fn call_record() -> impl Strategy<Value = CallRecord> {
    (
        (uuid(), 1u32..5, call_id(), uuid(), e164(), e164()),
        (
            select(Direction::ALL),
            instant(),
            0i64..60_000,
            proptest::option::of(0i64..(4 * 60 * MINUTE_MS)),
            0i64..(2 * 60 * MINUTE_MS),
            select(vec![486u16, 487, 480, 503, 404, 603]),
            select(CallDurationSource::ALL),
        ),
    )
        .prop_map(
            |(
                (id, version, call_id, tenant_id, number, other),
                (direction, start, setup, talk, delay, failure, source),
            )| {
                let (caller, callee) = match direction {
                    Direction::Outbound => (number.clone(), other),
                    Direction::Inbound => (other, number.clone()),
                };
                let connect = start + setup;
                let end = connect + talk.unwrap_or(0);
                CallRecord {
                    id,
                    version,
                    call_id,
                    tenant_id,
                    telephone_number: number,
                    direction,
                    caller_number: caller,
                    callee_number: callee,
                    start_date_time: format_timestamp(start),
                    connect_date_time: talk.map(|_| format_timestamp(connect)),
                    end_date_time: format_timestamp(end),
                    duration_ms: talk.unwrap_or(0),
                    final_sip_code: if talk.is_some() { 200 } else { failure },
                    call_duration_source: source,
                    available_date_time: format_timestamp(end + delay),
                }
            },
        )
}

/// A quality record whose `poor` flag agrees with its fields.
pub fn quality_record() -> impl Strategy<Value = QualityRecord> {
    (
        (
            call_id(),
            select(StreamDirection::ALL),
            select(AudioCodec::ALL),
            0u64..200_000,
            0u64..200,
            0u64..200,
        ),
        (
            0.0f64..=1.0,
            0.0f64..=1.0,
            0u64..2_000,
            0u64..2_000,
            0.0f64..=5.0,
            0.0f64..=1.0,
            timestamp(),
        ),
    )
        .prop_map(
            |(
                (call_id, stream_direction, audio_codec, packets, jitter, extra_jitter),
                (loss, extra_loss, rtt, extra_rtt, degradation, concealed, available),
            )| {
                let mut record = QualityRecord {
                    call_id,
                    stream_direction,
                    audio_codec,
                    packet_utilization: packets,
                    average_jitter_ms: jitter,
                    max_jitter_ms: jitter + extra_jitter,
                    average_packet_loss_rate: loss,
                    max_packet_loss_rate: loss + (1.0 - loss) * extra_loss,
                    average_round_trip_time_ms: rtt,
                    max_round_trip_time_ms: rtt + extra_rtt,
                    average_audio_degradation: degradation,
                    average_ratio_of_concealed_samples: concealed,
                    poor: false,
                    available_date_time: available,
                };
                record.poor = record.classify();
                record
            },
        )
}

/// A duration report that agrees with its timestamps (within the 1 ms slack).
pub fn duration_report() -> impl Strategy<Value = DurationReport> {
    (
        call_id(),
        e164(),
        instant(),
        0i64..(4 * 60 * MINUTE_MS),
        -1i64..=1,
    )
        .prop_map(|(call_id, number, connect, talk, slack)| DurationReport {
            call_id,
            telephone_number: number,
            connect_date_time: format_timestamp(connect),
            end_date_time: format_timestamp(connect + talk),
            duration_ms: (talk + slack).max(0),
        })
}

/// A duration report batch of 1 to 16 records.
pub fn duration_report_batch() -> impl Strategy<Value = DurationReportBatch> {
    proptest::collection::vec(duration_report(), 1..=16)
        .prop_map(|records| DurationReportBatch { records })
}

/// A response to a duration report, with some rejected records.
pub fn duration_report_response() -> impl Strategy<Value = DurationReportResponse> {
    (
        0u32..1000,
        proptest::collection::vec(
            (
                0u32..1000,
                proptest::option::of(call_id()),
                proptest::collection::vec(field_error(), 1..3),
            ),
            0..4,
        ),
    )
        .prop_map(|(accepted, rejected)| DurationReportResponse {
            accepted,
            rejected: rejected
                .into_iter()
                .map(|(index, call_id, errors)| RejectedRecord {
                    index,
                    call_id,
                    errors,
                })
                .collect(),
        })
}

/// A field error located by a body pointer, a query parameter or a header.
pub fn field_error() -> impl Strategy<Value = FieldError> {
    prop_oneof![
        (0usize..1000, "[a-zA-Z]{1,20}")
            .prop_map(|(i, k)| FieldError::at_pointer(format!("/records/{i}/{k}"), "must be >= 0")),
        "[a-zA-Z]{1,20}".prop_map(|p| FieldError::at_parameter(p, "must be from 1 to 1000")),
        Just(FieldError::at_header("Idempotency-Key", "is required")),
    ]
}

/// A problem body of any kind.
pub fn problem() -> impl Strategy<Value = Problem> {
    (
        select(ProblemKind::ALL.to_vec()),
        ".{0,80}",
        proptest::collection::vec(field_error(), 0..3),
    )
        .prop_map(|(kind, detail, errors)| Problem::new(kind, detail).with_errors(errors))
}

/// A certification call leg.
pub fn call_leg() -> impl Strategy<Value = CallLeg> {
    (call_id(), e164(), instant(), 0i64..(4 * 60 * MINUTE_MS)).prop_map(
        |(call_id, number, connect, talk)| CallLeg {
            call_id,
            telephone_number: number,
            connect_date_time: format_timestamp(connect),
            end_date_time: format_timestamp(connect + talk),
        },
    )
}

/// A batch of 1 to 16 call legs.
pub fn call_leg_batch() -> impl Strategy<Value = CallLegBatch> {
    proptest::collection::vec(call_leg(), 1..=16).prop_map(|legs| CallLegBatch { legs })
}

/// The answer to a call-legs request.
pub fn call_legs_accepted() -> impl Strategy<Value = CallLegsAccepted> {
    (0u32..=1000).prop_map(|accepted| CallLegsAccepted { accepted })
}

/// A reconciliation summary whose figures agree with each other.
pub fn reconciliation_summary() -> impl Strategy<Value = ReconciliationSummary> {
    (
        instant(),
        1i64..(30 * 24 * 60 * MINUTE_MS),
        0i64..5_000,
        (0u64..10_000, 0u64..10_000, 0u64..10_000, 0u64..10_000),
        (0u64..100, 0u64..100, 0u64..100),
        proptest::collection::vec(-120_000i64..120_000, 5),
        (0i64..10_000_000, 0i64..10_000_000),
    )
        .prop_map(
            |(from, len, tolerance_ms, (matched, drift, missing, unexpected), flags, mut q, ms)| {
                q.sort_unstable();
                let both = matched + drift;
                let answered = both + missing;
                let pick = |i: usize| (both > 0).then_some(q[i]);
                let (teams, carrier) = (ms.0 as f64 / 60_000.0, ms.1 as f64 / 60_000.0);
                ReconciliationSummary {
                    from: format_timestamp(from),
                    to: format_timestamp(from + len),
                    tolerance_ms,
                    counts: ReconCounts {
                        matched,
                        drift,
                        missing,
                        unexpected,
                    },
                    flags: ReconFlagCounts {
                        late: flags.0,
                        duplicate: flags.1,
                        corrected: flags.2,
                    },
                    match_rate: (answered > 0).then(|| matched as f64 / answered as f64),
                    drift_ms: DriftStats {
                        count: both,
                        min: pick(0),
                        p50: pick(1),
                        p90: pick(2),
                        p99: pick(3),
                        max: pick(4),
                    },
                    minutes: MinutesTotals {
                        teams,
                        carrier,
                        difference: carrier - teams,
                    },
                }
            },
        )
}

/// A reconciled call of any class, with the fields its class calls for.
pub fn reconciliation_item() -> impl Strategy<Value = ReconciliationItem> {
    (
        call_id(),
        select(ReconClass::ALL),
        e164(),
        0i64..10_000_000,
        0i64..10_000_000,
        any::<(bool, bool, bool)>(),
    )
        .prop_map(|(call_id, class, number, teams, carrier, flags)| {
            let has_teams = class != ReconClass::Unexpected;
            let has_carrier = class != ReconClass::Missing;
            let flags = if has_carrier {
                flags
            } else {
                (false, false, false)
            };
            ReconciliationItem {
                call_id,
                class,
                telephone_number: number,
                teams_duration_ms: has_teams.then_some(teams),
                carrier_duration_ms: has_carrier.then_some(carrier),
                difference_ms: (has_teams && has_carrier).then_some(carrier - teams),
                late: flags.0,
                duplicate: flags.1,
                corrected: flags.2,
            }
        })
}

/// A page of items from `item`: a middle page (`nextLink`), or a last page with or without a
/// `deltaLink`.
pub fn page<T: std::fmt::Debug>(item: impl Strategy<Value = T>) -> impl Strategy<Value = Page<T>> {
    (
        proptest::collection::vec(item, 0..6),
        0u8..3,
        "[A-Za-z0-9_-]{8,40}",
    )
        .prop_map(|(value, which, token)| {
            let link = format!("http://127.0.0.1:8080/oc/v1/cdrs/delta?token={token}");
            let (next_link, delta_link) = match which {
                0 => (Some(link), None),
                1 => (None, Some(link)),
                _ => (None, None),
            };
            Page {
                value,
                next_link,
                delta_link,
            }
        })
}

/// A row of Graph's PSTN call log: every nullable member sometimes null.
pub fn pstn_call_log_row() -> impl Strategy<Value = graph::PstnCallLogRow> {
    let text = || proptest::option::of("[A-Za-z0-9 _.@-]{0,20}");
    let amount = || proptest::option::of(0.0f64..100.0);
    (
        (uuid(), call_id(), instant(), 0i64..(4 * 60 * MINUTE_MS)),
        (text(), text(), text(), text(), text(), text()),
        (
            proptest::option::of(e164()),
            proptest::option::of(e164()),
            amount(),
            amount(),
            proptest::option::of(select(CallDurationSource::ALL.to_vec())),
            text(),
        ),
        (text(), text(), text(), text(), text(), text()),
    )
        .prop_map(
            |(
                (id, call_id, connect, talk),
                (user_id, user_principal_name, user_display_name, call_type, currency, operator),
                (callee, caller, charge, connection_charge, source, other_country),
                (usage, tenant, context, name, conference, license),
            )| graph::PstnCallLogRow {
                id,
                call_id,
                user_id,
                user_principal_name,
                user_display_name,
                start_date_time: graph::format_graph_timestamp(connect),
                end_date_time: graph::format_graph_timestamp(connect + talk),
                duration: graph::duration_seconds(talk),
                charge,
                call_type,
                currency,
                callee_number: callee,
                usage_country_code: usage,
                tenant_country_code: tenant,
                connection_charge,
                caller_number: caller,
                destination_context: context,
                destination_name: name,
                conference_id: conference,
                license_capability: license,
                inventory_type: other_country.clone(),
                operator,
                call_duration_source: source,
                other_party_country_code: other_country,
            },
        )
}

/// A page of a Graph collection, with or without its count and nextLink.
pub fn graph_page<T: std::fmt::Debug>(
    item: impl Strategy<Value = T>,
) -> impl Strategy<Value = graph::GraphPage<T>> {
    (
        proptest::collection::vec(item, 0..4),
        any::<bool>(),
        any::<bool>(),
        proptest::option::of("[A-Za-z0-9]{8,40}"),
    )
        .prop_map(|(value, has_context, counted, token)| graph::GraphPage {
            context: has_context.then(|| {
                "https://oc.teams.example/v1.0/$metadata#Collection(\
                 microsoft.graph.callRecords.pstnCallLogRow)"
                    .to_owned()
            }),
            count: counted.then_some(value.len() as u64),
            value,
            next_link: token.map(|t| {
                format!(
                    "https://oc.teams.example{}(fromDateTime=2026-01-01,toDateTime=2026-01-02)\
                     ?$skiptoken={t}",
                    graph::PSTN_CALLS_PATH
                )
            }),
        })
}

/// Graph's error body.
pub fn graph_error() -> impl Strategy<Value = graph::GraphError> {
    (
        select(vec![400u16, 401, 404, 405, 429, 500, 503]),
        ".{0,80}",
    )
        .prop_map(|(status, message)| {
            graph::GraphError::new(graph::GraphError::code_for_status(status), message)
        })
}
