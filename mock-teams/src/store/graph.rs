//! A carrier's calls as Microsoft Graph's PSTN call log (PROTOCOL.md 3.6): one
//! `pstnCallLogRow` per answered call that has ended, read page by page in the order the calls
//! were added, so that no page holds more than its own rows.

use oc_protocol::graph::{
    CALL_TYPE_USER_IN, CALL_TYPE_USER_OUT, PstnCallLogRow, PstnCallsWindow, duration_seconds,
    format_graph_timestamp,
};
use oc_protocol::{CallDurationSource, Direction};

use super::Store;
use super::calls::{CallRow, record_id};

/// The currency of the call log's charges: the sandbox prices no call, so every charge is 0.
const CURRENCY: &str = "USD";

impl Store {
    /// Up to `limit` rows of `carrier`'s call log whose connect time is in `window` (both ends
    /// inclusive), looking at calls from index `position` on; returns the rows and the index to
    /// go on from when there may be more.
    pub(crate) fn pstn_calls_page(
        &self,
        carrier: u16,
        window: PstnCallsWindow,
        position: u32,
        limit: usize,
    ) -> (Vec<PstnCallLogRow>, Option<u32>) {
        let mut rows = Vec::new();
        // Closed calls are gone: a page goes on from the first call kept.
        let total = self.rows.end();
        let mut index = position.max(self.rows.base());
        while index < total {
            let row = &self.rows[index as usize];
            if row.carrier == carrier
                && row.end() <= self.now
                && row
                    .connect()
                    .is_some_and(|c| c >= window.from && c <= window.to)
            {
                if rows.len() == limit {
                    return (rows, Some(index));
                }
                rows.push(self.render_pstn_call(index, row));
            }
            index += 1;
        }
        (rows, None)
    }

    /// One answered call as a row: Teams' connect and end times; the carrier's latest reported
    /// duration when it first reported the call within the deadline (`operator`), else Teams'
    /// own (`microsoft`); in whole seconds, halves rounded up.
    fn render_pstn_call(&self, index: u32, row: &CallRow) -> PstnCallLogRow {
        let slot = self.slots[index as usize];
        let (duration_ms, source) = match slot.carrier_ms() {
            Some(reported) if !slot.late() => (reported, CallDurationSource::Operator),
            _ => (row.duration_ms(), CallDurationSource::Microsoft),
        };
        let number = self.numbers[row.number as usize].telephone_number.clone();
        let other = format!("+{}", row.other);
        let (caller, callee, call_type) = match row.direction {
            Direction::Outbound => (number, other, CALL_TYPE_USER_OUT),
            Direction::Inbound => (other, number, CALL_TYPE_USER_IN),
        };
        PstnCallLogRow {
            id: record_id(self.settings.seed, index).as_str().to_owned(),
            call_id: self.call_ids.get(index).to_owned(),
            // The sandbox has no directory of users: who placed or took the call is unknown.
            user_id: None,
            user_principal_name: None,
            user_display_name: None,
            start_date_time: format_graph_timestamp(row.connect().unwrap_or(row.start)),
            end_date_time: format_graph_timestamp(row.end()),
            duration: duration_seconds(duration_ms),
            charge: Some(0.0),
            call_type: Some(call_type.to_owned()),
            currency: Some(CURRENCY.to_owned()),
            callee_number: Some(callee),
            usage_country_code: None,
            tenant_country_code: None,
            connection_charge: Some(0.0),
            caller_number: Some(caller),
            destination_context: None,
            destination_name: None,
            conference_id: None,
            license_capability: None,
            inventory_type: None,
            operator: Some(self.carriers[usize::from(row.carrier)].spec.id.clone()),
            call_duration_source: Some(source),
            other_party_country_code: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use oc_protocol::{Assignee, AssigneeType, NumberUsage};

    use super::*;
    use crate::store::{Assignment, CarrierSpec, NewCall, StoreSettings};

    const T0: i64 = 1_795_651_200_000;
    const DEADLINE: i64 = 3_600_000;

    fn store() -> Store {
        let settings = StoreSettings {
            reporting_deadline_ms: DEADLINE,
            ..StoreSettings::default()
        };
        let mut store = Store::new(settings, T0);
        for (id, number) in [("alpha", "+14255550100"), ("beta", "+14255550200")] {
            store
                .add_carrier(CarrierSpec {
                    id: id.into(),
                    token: format!("{id}-token"),
                    webhook: None,
                })
                .unwrap();
            store
                .add_number(id, "c0ffee00-0000-4000-8000-000000000001", number)
                .unwrap();
            store
                .assign(
                    number,
                    Assignment {
                        sip_uri: format!("sip:{number}@sbc.example;user=phone"),
                        usage: NumberUsage::CallingUserAssignment,
                        assignee: Assignee {
                            id: "a1b2c3d4-0000-4000-8000-000000000001".into(),
                            kind: AssigneeType::User,
                        },
                    },
                )
                .unwrap();
        }
        store
    }

    fn call(id: &str, number: &str, start_s: i64, talk_ms: Option<i64>) -> NewCall {
        let start = T0 + start_s * 1000;
        let connect = talk_ms.map(|_| start + 2_000);
        NewCall {
            call_id: id.into(),
            telephone_number: number.into(),
            direction: if start_s % 2 == 0 {
                Direction::Outbound
            } else {
                Direction::Inbound
            },
            other_number: "+442079460000".into(),
            start,
            connect,
            end: connect.map_or(start + 10_000, |c| c + talk_ms.unwrap_or(0)),
            final_sip_code: if talk_ms.is_some() { 200 } else { 486 },
            availability_delay_ms: 0,
            quality: None,
        }
    }

    fn report(store: &mut Store, carrier: &str, id: &str, connect: i64, ms: i64) {
        let body = serde_json::json!({"records": [{
            "callId": id,
            "telephoneNumber": if carrier == "alpha" { "+14255550100" } else { "+14255550200" },
            "connectDateTime": oc_protocol::format_timestamp(connect),
            "endDateTime": oc_protocol::format_timestamp(connect + ms),
            "durationMs": ms,
        }]});
        store
            .report(carrier, &format!("{id}-{ms}"), body.to_string().as_bytes())
            .unwrap();
    }

    fn all(store: &Store, carrier: u16, limit: usize) -> Vec<PstnCallLogRow> {
        let window = PstnCallsWindow {
            from: T0,
            to: T0 + 86_400_000,
        };
        let (mut rows, mut next) = store.pstn_calls_page(carrier, window, 0, limit);
        for _ in 0..100 {
            let Some(position) = next else { break };
            let (more, after) = store.pstn_calls_page(carrier, window, position, limit);
            assert!(more.len() <= limit);
            rows.extend(more);
            next = after;
        }
        rows
    }

    #[test]
    fn rows_say_whose_duration_they_carry() {
        let mut store = store();
        store
            .add_call(call("on-time", "+14255550100", 0, Some(61_499)))
            .unwrap();
        store
            .add_call(call("late", "+14255550100", 1, Some(30_000)))
            .unwrap();
        store
            .add_call(call("missing", "+14255550100", 2, Some(1_500)))
            .unwrap();
        store
            .add_call(call("unanswered", "+14255550100", 3, None))
            .unwrap();
        store
            .add_call(call("beta's", "+14255550200", 4, Some(9_000)))
            .unwrap();
        store.advance_to(T0 + 120_000).unwrap();
        report(&mut store, "alpha", "on-time", T0 + 2_000, 62_000);
        store.advance_to(T0 + 2 * DEADLINE).unwrap();
        report(&mut store, "alpha", "late", T0 + 3_000, 31_000);

        let rows = all(&store, 0, 1000);
        let ids: Vec<&str> = rows.iter().map(|r| r.call_id.as_str()).collect();
        assert_eq!(
            ids,
            ["on-time", "late", "missing"],
            "answered, alpha's only"
        );
        let on_time = &rows[0];
        assert_eq!(on_time.duration, 62, "the carrier's 62000 ms");
        assert_eq!(
            on_time.call_duration_source,
            Some(CallDurationSource::Operator)
        );
        assert_eq!(on_time.start_date_time, "2026-11-26T00:00:02.0000000Z");
        assert_eq!(on_time.end_date_time, "2026-11-26T00:01:03.4990000Z");
        assert_eq!(on_time.call_type.as_deref(), Some("user_out"));
        assert_eq!(on_time.caller_number.as_deref(), Some("+14255550100"));
        assert_eq!(on_time.callee_number.as_deref(), Some("+442079460000"));
        assert_eq!(on_time.operator.as_deref(), Some("alpha"));
        let late = &rows[1];
        assert_eq!(
            late.duration, 30,
            "Teams' own 30000 ms: the report came late"
        );
        assert_eq!(
            late.call_duration_source,
            Some(CallDurationSource::Microsoft)
        );
        assert_eq!(late.call_type.as_deref(), Some("user_in"));
        assert_eq!(late.callee_number.as_deref(), Some("+14255550100"));
        let missing = &rows[2];
        assert_eq!(missing.duration, 2, "1500 ms rounds half up");
        assert_eq!(
            missing.call_duration_source,
            Some(CallDurationSource::Microsoft)
        );
        assert_eq!(all(&store, 1, 1000).len(), 1, "beta sees its own call");
    }

    #[test]
    fn pages_hold_at_most_the_limit_and_end_without_a_position() {
        let mut store = store();
        for i in 0..7 {
            store
                .add_call(call(&format!("c{i}"), "+14255550100", i, Some(1_000)))
                .unwrap();
        }
        store
            .add_call(call("b", "+14255550200", 8, Some(1_000)))
            .unwrap();
        store.advance_to(T0 + 60_000).unwrap();
        let window = PstnCallsWindow {
            from: T0,
            to: T0 + 60_000,
        };
        let (page, next) = store.pstn_calls_page(0, window, 0, 3);
        assert_eq!(page.len(), 3);
        assert_eq!(next, Some(3));
        let (page, next) = store.pstn_calls_page(0, window, 6, 3);
        assert_eq!(page.len(), 1);
        assert_eq!(next, None, "beta's call after it is not alpha's");
        assert_eq!(all(&store, 0, 3).len(), 7);
        // Both ends are inclusive, on the connect time.
        let exact = PstnCallsWindow {
            from: T0 + 2_000,
            to: T0 + 3_000,
        };
        let (page, _) = store.pstn_calls_page(0, exact, 0, 10);
        let ids: Vec<&str> = page.iter().map(|r| r.call_id.as_str()).collect();
        assert_eq!(ids, ["c0", "c1"]);
    }

    #[test]
    fn a_call_still_going_is_not_logged() {
        let mut store = store();
        store
            .add_call(call("long", "+14255550100", 0, Some(600_000)))
            .unwrap();
        assert!(all(&store, 0, 10).is_empty());
        store.advance_to(T0 + 602_000).unwrap();
        assert_eq!(all(&store, 0, 10).len(), 1);
    }
}
