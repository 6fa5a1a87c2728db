//! An [`Exchange`] written as one JSON line by hand: the very bytes `serde_json::to_writer`
//! writes for it (a test holds the two equal), for the exchange log a run keeps as it goes.
//!
//! A load test writes every webhook's exchange, body and all, on the checker's thread; through
//! serde, escaping the captured bodies (JSON inside a JSON string, an escape every few bytes)
//! and the keys cost that thread more than compressing the line. Keys here are literals and
//! strings go through [`oc_protocol::json_write::write_str`]; the rarer parts (an injected
//! fault, details other than a webhook's) still go through serde.

use oc_protocol::json_write::{write_array, write_int, write_opt_str, write_str};

use crate::{Exchange, ExchangeDetail, ExchangeDirection};

impl Exchange {
    /// Appends this exchange's JSON to `out`, as `serde_json::to_writer(out, self)` would.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"seq\":");
        write_int(out, self.seq);
        out.extend_from_slice(match self.direction {
            ExchangeDirection::CarrierToTeams => b",\"direction\":\"carrierToTeams\"",
            ExchangeDirection::TeamsToCarrier => b",\"direction\":\"teamsToCarrier\"",
        });
        out.extend_from_slice(b",\"carrier\":");
        write_opt_str(out, self.carrier.as_deref());
        out.extend_from_slice(b",\"method\":");
        write_str(out, &self.method);
        out.extend_from_slice(b",\"url\":");
        write_str(out, &self.url);
        out.extend_from_slice(b",\"status\":");
        match self.status {
            Some(status) => write_int(out, status),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"error\":");
        write_opt_str(out, self.error.as_deref());
        out.extend_from_slice(b",\"simTime\":");
        write_int(out, self.sim_time);
        out.extend_from_slice(b",\"wallTimeMs\":");
        write_int(out, self.wall_time_ms);
        out.extend_from_slice(b",\"latencyUs\":");
        write_int(out, self.latency_us);
        out.extend_from_slice(b",\"requestHeaders\":");
        write_array(out, &self.request_headers, |out, (name, value)| {
            write_array(out, [name, value], |out, text| write_str(out, text));
        });
        out.extend_from_slice(b",\"requestBody\":");
        write_opt_str(out, self.request_body.as_deref());
        out.extend_from_slice(b",\"responseBody\":");
        write_opt_str(out, self.response_body.as_deref());
        out.extend_from_slice(b",\"fault\":");
        match &self.fault {
            Some(fault) => by_serde(out, fault),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"detail\":");
        match &self.detail {
            Some(ExchangeDetail::Webhook {
                notification_id,
                attempt,
                event_ids,
                last,
            }) => {
                out.extend_from_slice(b"{\"kind\":\"webhook\",\"notification_id\":");
                write_str(out, notification_id);
                out.extend_from_slice(b",\"attempt\":");
                write_int(out, *attempt);
                out.extend_from_slice(b",\"event_ids\":");
                write_array(out, event_ids, |out, id| write_str(out, id));
                if *last {
                    out.extend_from_slice(b",\"last\":true");
                }
                out.push(b'}');
            }
            Some(detail) => by_serde(out, detail),
            None => out.extend_from_slice(b"null"),
        }
        out.push(b'}');
    }
}

/// Appends `value` through serde_json, which cannot fail for these types: their maps have
/// string keys only, and writing to a `Vec` does not fail.
fn by_serde(out: &mut Vec<u8>, value: &impl serde::Serialize) {
    if serde_json::to_writer(&mut *out, value).is_err() {
        // Unreachable for the types above; `null` keeps the line valid JSON all the same.
        out.extend_from_slice(b"null");
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::InjectedFault;

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "[ -~]{0,40}",
            Just("{\"notificationId\":\"a\\\\b\",\n\t\"events\":[]}".to_owned()),
        ]
    }

    fn detail() -> impl Strategy<Value = Option<ExchangeDetail>> {
        prop_oneof![
            Just(None),
            (
                text(),
                any::<u32>(),
                proptest::collection::vec(text(), 0..4),
                any::<bool>()
            )
                .prop_map(|(notification_id, attempt, event_ids, last)| Some(
                    ExchangeDetail::Webhook {
                        notification_id,
                        attempt,
                        event_ids,
                        last,
                    }
                )),
            (
                text(),
                any::<bool>(),
                any::<u64>(),
                any::<u64>(),
                any::<bool>(),
                text()
            )
                .prop_map(
                    |(feed, chain_start, from_position, to_position, next, link)| {
                        Some(ExchangeDetail::FeedPage {
                            feed,
                            chain_start,
                            from_position,
                            to_position,
                            next,
                            link,
                            misclassified: vec![3, 1],
                        })
                    }
                ),
            proptest::option::of(text())
                .prop_map(|next_link| Some(ExchangeDetail::CollectionPage { next_link })),
        ]
    }

    fn fault() -> impl Strategy<Value = Option<InjectedFault>> {
        prop_oneof![
            Just(None),
            Just(Some(InjectedFault::WebhookDuplicated)),
            any::<u64>().prop_map(|ms| Some(InjectedFault::Latency { ms })),
        ]
    }

    fn exchange() -> impl Strategy<Value = Exchange> {
        (
            (
                any::<u64>(),
                any::<bool>(),
                proptest::option::of(text()),
                text(),
                text(),
            ),
            (
                proptest::option::of(any::<u16>()),
                proptest::option::of(text()),
                any::<i64>(),
                any::<i64>(),
                any::<u64>(),
            ),
            (
                proptest::collection::vec((text(), text()), 0..3),
                proptest::option::of(text()),
                proptest::option::of(text()),
                fault(),
                detail(),
            ),
        )
            .prop_map(
                |(
                    (seq, inbound, carrier, method, url),
                    (status, error, sim_time, wall_time_ms, latency_us),
                    (request_headers, request_body, response_body, fault, detail),
                )| Exchange {
                    seq,
                    direction: if inbound {
                        ExchangeDirection::CarrierToTeams
                    } else {
                        ExchangeDirection::TeamsToCarrier
                    },
                    carrier,
                    method,
                    url,
                    status,
                    error,
                    sim_time,
                    wall_time_ms,
                    latency_us,
                    request_headers,
                    request_body,
                    response_body,
                    fault,
                    detail,
                },
            )
    }

    proptest! {
        /// Every field, every escape, every kind of detail: serde's bytes, and they read back.
        #[test]
        fn an_exchange_is_serdes_bytes(exchange in exchange()) {
            let mut out = Vec::new();
            exchange.write_json(&mut out);
            let by_serde = serde_json::to_vec(&exchange).unwrap();
            prop_assert_eq!(String::from_utf8_lossy(&out), String::from_utf8_lossy(&by_serde));
            prop_assert_eq!(serde_json::from_slice::<Exchange>(&out).unwrap(), exchange);
        }
    }
}
