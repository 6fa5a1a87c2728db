//! Properties of every wire type: JSON round trips are the identity, every generated valid value
//! validates, and each single-field corruption is rejected with exactly that field's pointer.

use std::fmt::Debug;

use oc_protocol::testing::*;
use oc_protocol::timestamp::parse_timestamp;
use oc_protocol::*;
use proptest::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A single-field corruption: changes one field and returns its pointer, or `None` where it
/// does not apply to this value (e.g. `sipUri` of an unassigned number).
type Corruption<T> = fn(&mut T) -> Option<&'static str>;

fn round_trips<T: Serialize + DeserializeOwned + PartialEq + Debug>(
    value: &T,
) -> Result<(), TestCaseError> {
    let json = serde_json::to_string(value).expect("wire types serialise");
    let back: T =
        serde_json::from_str(&json).map_err(|e| TestCaseError::fail(format!("{e}: {json}")))?;
    prop_assert_eq!(&back, value);
    Ok(())
}

/// The value validates, and each applicable corruption yields exactly one error at its pointer.
fn holds<T>(value: &T, corruptions: &[Corruption<T>]) -> Result<(), TestCaseError>
where
    T: Validate + Serialize + DeserializeOwned + PartialEq + Debug + Clone,
{
    round_trips(value)?;
    if let Err(errors) = value.validate() {
        return Err(TestCaseError::fail(format!(
            "a generated valid value was rejected: {errors}\n{value:#?}"
        )));
    }
    for corrupt in corruptions {
        let mut bad = value.clone();
        let Some(pointer) = corrupt(&mut bad) else {
            continue;
        };
        match bad.validate() {
            Ok(()) => {
                return Err(TestCaseError::fail(format!(
                    "corrupting {pointer} went unnoticed:\n{bad:#?}"
                )));
            }
            Err(errors) => prop_assert_eq!(errors.pointers(), vec![pointer], "{}", errors),
        }
    }
    Ok(())
}

fn millis(text: &str) -> i64 {
    parse_timestamp(text).expect("generated timestamps are valid")
}

const NOT_A_UUID: &str = "0B6E8A52-3C1D-4F7E-9A2B-5D4C3B2A1F00";
const NOT_E164: &str = "+04255550100";
const NOT_A_TIME: &str = "2026-11-26T09:15:02Z";

fn number_event_corruptions() -> Vec<Corruption<NumberEvent>> {
    vec![
        |e| {
            e.event_id = NOT_A_UUID.into();
            Some("/eventId")
        },
        |e| {
            e.sequence = 0;
            Some("/sequence")
        },
        |e| {
            e.tenant_id = "tenant".into();
            Some("/tenantId")
        },
        |e| {
            e.telephone_number = NOT_E164.into();
            Some("/telephoneNumber")
        },
        |e| {
            e.effective_date_time = NOT_A_TIME.into();
            Some("/effectiveDateTime")
        },
        |e| {
            let uri = e.sip_uri.as_mut()?;
            *uri = uri.replace(";user=phone", "");
            Some("/sipUri")
        },
        |e| {
            // A well-formed SIP URI that names another number.
            let other = if e.telephone_number == "+19999999999" {
                "+18888888888"
            } else {
                "+19999999999"
            };
            let uri = e.sip_uri.as_mut()?;
            *uri = uri.replacen(&e.telephone_number, other, 1);
            Some("/sipUri")
        },
        |e| {
            if e.kind == NumberEventType::Unassigned {
                e.sip_uri = Some(format!("sip:{}@sbc.example;user=phone", e.telephone_number));
            } else {
                e.sip_uri = None;
            }
            Some("/sipUri")
        },
        |e| {
            if e.kind == NumberEventType::Unassigned {
                e.usage = Some(NumberUsage::CallingUserAssignment);
                Some("/usage")
            } else {
                e.usage = None;
                Some("/usage")
            }
        },
        |e| {
            e.assignee.as_mut()?.id = "someone".into();
            Some("/assignee/id")
        },
        |e| {
            let assignee = e.assignee.as_mut()?;
            assignee.kind = match assignee.kind {
                AssigneeType::User => AssigneeType::ConferenceBridge,
                _ => AssigneeType::User,
            };
            Some("/assignee/type")
        },
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn number_events(event in number_event()) {
        holds(&event, &number_event_corruptions())?;
    }

    #[test]
    fn number_assignment_notifications(n in number_assignment_notification()) {
        holds(&n, &[
            |n| { n.notification_id = "6f1c".into(); Some("/notificationId") },
            |n| { n.sent_date_time = NOT_A_TIME.into(); Some("/sentDateTime") },
            |n| { n.events.clear(); Some("/events") },
            |n| {
                let first = n.events[0].clone();
                n.events = (0..101).map(|i| {
                    let mut e = first.clone();
                    e.event_id.replace_range(0..4, &format!("{i:04x}"));
                    e
                }).collect();
                Some("/events")
            },
            |n| {
                let first = n.events.first()?.event_id.clone();
                n.events.get_mut(1)?.event_id = first;
                Some("/events/1/eventId")
            },
            |n| { n.events[0].sequence = 0; Some("/events/0/sequence") },
        ])?;
        // Every corruption of a nested event is reported under its index.
        for corrupt in number_event_corruptions() {
            let mut bad = n.clone();
            let last = bad.events.len() - 1;
            if let Some(pointer) = corrupt(&mut bad.events[last]) {
                let errors = bad.validate().expect_err("a corrupted event is rejected");
                prop_assert_eq!(errors.pointers(), vec![format!("/events/{last}{pointer}")]);
            }
        }
    }

    #[test]
    fn carrier_number_views(view in carrier_number_view()) {
        holds(&view, &[
            |v| { v.telephone_number = NOT_E164.into(); Some("/telephoneNumber") },
            |v| { v.tenant_id = String::new(); Some("/tenantId") },
            |v| {
                match v.state {
                    AssignmentState::Assigned => v.sip_uri = None,
                    AssignmentState::Unassigned => {
                        v.sip_uri = Some(format!("sip:{}@sbc.example;user=phone", v.telephone_number));
                    }
                }
                Some("/sipUri")
            },
            |v| {
                match v.state {
                    AssignmentState::Assigned => v.usage = None,
                    AssignmentState::Unassigned => v.usage = Some(NumberUsage::ConferenceAssignment),
                }
                Some("/usage")
            },
        ])?;
    }

    #[test]
    fn teams_numbers(number in teams_number()) {
        holds(&number, &[
            |n| { n.telephone_number = "+1".into(); Some("/telephoneNumber") },
            |n| { n.last_changed_date_time = NOT_A_TIME.into(); Some("/lastChangedDateTime") },
            |n| {
                match n.state {
                    AssignmentState::Assigned => n.assignee = None,
                    AssignmentState::Unassigned => {
                        n.assignee = Some(Assignee { id: NOT_A_UUID.to_lowercase(), kind: AssigneeType::User });
                    }
                }
                Some("/assignee")
            },
            |n| { n.assignee.as_mut()?.id = NOT_A_UUID.into(); Some("/assignee/id") },
        ])?;
    }

    #[test]
    fn call_records(record in call_record()) {
        holds(&record, &[
            |r| { r.id = NOT_A_UUID.into(); Some("/id") },
            |r| { r.version = 0; Some("/version") },
            |r| { r.call_id = String::new(); Some("/callId") },
            |r| { r.call_id = "x".repeat(129); Some("/callId") },
            |r| { r.tenant_id = NOT_A_UUID.into(); Some("/tenantId") },
            |r| { r.telephone_number = NOT_E164.into(); Some("/telephoneNumber") },
            |r| { r.caller_number = "123".into(); Some("/callerNumber") },
            |r| { r.callee_number = "123".into(); Some("/calleeNumber") },
            |r| {
                // A valid number on the carrier's side that is not the carrier's number.
                let other = if r.telephone_number == "+19999999999" { "+18888888888" } else { "+19999999999" };
                match r.direction {
                    Direction::Outbound => { r.caller_number = other.into(); Some("/callerNumber") }
                    Direction::Inbound => { r.callee_number = other.into(); Some("/calleeNumber") }
                }
            },
            |r| { r.start_date_time = NOT_A_TIME.into(); Some("/startDateTime") },
            |r| { r.connect_date_time.as_mut().map(|c| *c = NOT_A_TIME.into())?; Some("/connectDateTime") },
            |r| { r.end_date_time = NOT_A_TIME.into(); Some("/endDateTime") },
            |r| { r.duration_ms += 1; Some("/durationMs") },
            |r| {
                r.final_sip_code = if r.connect_date_time.is_some() { 486 } else { 200 };
                Some("/finalSipCode")
            },
            |r| {
                let end = millis(&r.end_date_time);
                r.available_date_time = format_timestamp(end - 1);
                Some("/availableDateTime")
            },
        ])?;
    }

    #[test]
    fn quality_records(record in quality_record()) {
        holds(&record, &[
            |q| { q.call_id = String::new(); Some("/callId") },
            |q| { q.available_date_time = NOT_A_TIME.into(); Some("/availableDateTime") },
            |q| { q.average_packet_loss_rate = 1.5; Some("/averagePacketLossRate") },
            |q| { q.max_packet_loss_rate = 2.0; Some("/maxPacketLossRate") },
            |q| {
                (q.average_packet_loss_rate > 0.0).then_some(())?;
                q.max_packet_loss_rate = q.average_packet_loss_rate / 2.0;
                Some("/maxPacketLossRate")
            },
            |q| { q.average_ratio_of_concealed_samples = -0.1; Some("/averageRatioOfConcealedSamples") },
            |q| { q.average_audio_degradation = 5.5; Some("/averageAudioDegradation") },
            |q| {
                q.max_jitter_ms = q.average_jitter_ms.checked_sub(1)?;
                Some("/maxJitterMs")
            },
            |q| {
                q.max_round_trip_time_ms = q.average_round_trip_time_ms.checked_sub(1)?;
                Some("/maxRoundTripTimeMs")
            },
            |q| { q.poor = !q.poor; Some("/poor") },
        ])?;
    }

    #[test]
    fn duration_reports(report in duration_report()) {
        holds(&report, &duration_report_corruptions())?;
    }

    #[test]
    fn duration_report_batches(batch in duration_report_batch()) {
        holds(&batch, &[
            |b| { b.records.clear(); Some("/records") },
            |b| {
                let first = b.records[0].clone();
                b.records = vec![first; 1001];
                Some("/records")
            },
        ])?;
        for corrupt in duration_report_corruptions() {
            let mut bad = batch.clone();
            let last = bad.records.len() - 1;
            if let Some(pointer) = corrupt(&mut bad.records[last]) {
                let errors = bad.validate().expect_err("a corrupted record is rejected");
                prop_assert_eq!(errors.pointers(), vec![format!("/records/{last}{pointer}")]);
            }
        }
    }

    #[test]
    fn duration_report_responses(response in duration_report_response()) {
        round_trips(&response)?;
    }

    #[test]
    fn call_legs(leg in call_leg()) {
        holds(&leg, &[
            |l| { l.call_id = String::new(); Some("/callId") },
            |l| { l.telephone_number = NOT_E164.into(); Some("/telephoneNumber") },
            |l| { l.connect_date_time = NOT_A_TIME.into(); Some("/connectDateTime") },
            |l| {
                l.end_date_time = format_timestamp(millis(&l.connect_date_time) - 1);
                Some("/endDateTime")
            },
        ])?;
    }

    #[test]
    fn call_leg_batches(batch in call_leg_batch(), accepted in call_legs_accepted()) {
        holds(&batch, &[
            |b| { b.legs.clear(); Some("/legs") },
            |b| { b.legs[0].call_id = String::new(); Some("/legs/0/callId") },
        ])?;
        round_trips(&accepted)?;
    }

    #[test]
    fn reconciliation_summaries(summary in reconciliation_summary()) {
        holds(&summary, &[
            |s| { s.to = s.from.clone(); Some("/to") },
            |s| { s.from = NOT_A_TIME.into(); Some("/from") },
            |s| { s.tolerance_ms = -1; Some("/toleranceMs") },
            |s| {
                (s.counts.matched + s.counts.drift + s.counts.missing > 0).then_some(())?;
                s.match_rate = None;
                Some("/matchRate")
            },
            |s| { s.match_rate = Some(1.5); Some("/matchRate") },
            |s| { s.drift_ms.count += 1; Some("/driftMs/count") },
        ])?;
    }

    #[test]
    fn reconciliation_items(item in reconciliation_item()) {
        holds(&item, &[
            |i| { i.call_id = String::new(); Some("/callId") },
            |i| { i.telephone_number = NOT_E164.into(); Some("/telephoneNumber") },
            |i| { *i.difference_ms.as_mut()? += 1; Some("/differenceMs") },
            |i| {
                match i.class {
                    ReconClass::Unexpected => { i.teams_duration_ms = Some(1); Some("/teamsDurationMs") }
                    _ => { i.teams_duration_ms = None; Some("/teamsDurationMs") }
                }
            },
            |i| {
                (i.class == ReconClass::Missing).then_some(())?;
                i.carrier_duration_ms = Some(1);
                Some("/carrierDurationMs")
            },
        ])?;
    }

    #[test]
    fn pages(page in page(call_record())) {
        holds(&page, &[
            |p| {
                p.next_link.as_ref()?;
                p.delta_link = Some("http://127.0.0.1/delta".into());
                Some("/deltaLink")
            },
            |p| { p.next_link = Some(String::new()); p.delta_link = None; Some("/nextLink") },
            |p| { p.value.first_mut()?.version = 0; Some("/value/0/version") },
        ])?;
    }

    #[test]
    fn problems(problem in problem()) {
        round_trips(&problem)?;
    }
}

fn duration_report_corruptions() -> Vec<Corruption<DurationReport>> {
    vec![
        |d| {
            d.call_id = String::new();
            Some("/callId")
        },
        |d| {
            d.call_id = "é".repeat(129);
            Some("/callId")
        },
        |d| {
            d.telephone_number = "14255550100".into();
            Some("/telephoneNumber")
        },
        |d| {
            d.connect_date_time = NOT_A_TIME.into();
            Some("/connectDateTime")
        },
        |d| {
            d.end_date_time = "2026-02-30T00:00:00.000Z".into();
            Some("/endDateTime")
        },
        |d| {
            d.end_date_time = format_timestamp(millis(&d.connect_date_time) - 1);
            Some("/endDateTime")
        },
        |d| {
            d.duration_ms = -1;
            Some("/durationMs")
        },
        |d| {
            d.duration_ms = millis(&d.end_date_time) - millis(&d.connect_date_time) + 2;
            Some("/durationMs")
        },
    ]
}
