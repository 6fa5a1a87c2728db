//! Converting and checking the carrier under test (the mock with its profile, parameters and
//! drift models, or an external one by URL) and the Teams-side faults.

use mock_carrier::config::{ClientConfig, MisbehaviourConfig};
use mock_carrier::{CarrierConfig, Profile};
use mock_teams::FaultSettings;

use super::convert::Findings;
use super::duration::format_duration;
use super::model::CarrierSpec;
use super::raw::{RawCarrier, RawCarrierKind};

/// Every profile name, for messages.
fn profile_names() -> String {
    Profile::ALL.map(Profile::name).join(", ")
}

pub(crate) fn carrier(raw: RawCarrier, f: &mut Findings) -> CarrierSpec {
    match raw.kind.unwrap_or(RawCarrierKind::Mock) {
        RawCarrierKind::External => external(raw, f),
        RawCarrierKind::Mock => mock(raw, f),
    }
}

fn external(raw: RawCarrier, f: &mut Findings) -> CarrierSpec {
    let mock_only = [
        ("profile", raw.profile.is_some()),
        ("ack_delay", raw.ack_delay.is_some()),
        ("skip_page_index", raw.skip_page_index.is_some()),
        ("quality_full_cycles", raw.quality_full_cycles.is_some()),
        ("batch_size", raw.batch_size.is_some()),
        ("page_size", raw.page_size.is_some()),
        ("drift", raw.drift.is_some()),
    ];
    for (key, given) in mock_only {
        if given {
            f.push(
                format!("carrier.{key}"),
                "is only for kind = \"mock\" (an external carrier behaves as it was built)",
            );
        }
    }
    let url = raw.url.unwrap_or_default();
    if url.is_empty() {
        f.push_at(
            "carrier.url",
            "carrier.kind",
            "is required with kind = \"external\" (the carrier API's base URL, e.g. \
             \"http://127.0.0.1:8081\")",
        );
    } else {
        match reqwest::Url::parse(&url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.has_host() => {}
            _ => f.push(
                "carrier.url",
                format!("must be an http or https URL like \"http://127.0.0.1:8081\", got {url:?}"),
            ),
        }
    }
    CarrierSpec::External { url }
}

fn mock(raw: RawCarrier, f: &mut Findings) -> CarrierSpec {
    if raw.url.is_some() {
        f.push(
            "carrier.url",
            "is only for kind = \"external\" (the mock carrier runs in-process)",
        );
    }
    let profile = match raw.profile.as_deref() {
        None => Profile::Correct,
        Some(name) => Profile::from_name(name).unwrap_or_else(|| {
            f.push(
                "carrier.profile",
                format!(
                    "unknown profile {name:?} (expected one of {})",
                    profile_names()
                ),
            );
            Profile::Correct
        }),
    };
    let mut misbehaviour = MisbehaviourConfig {
        profile,
        ..MisbehaviourConfig::default()
    };
    // A parameter of another profile would silently do nothing: almost always a mistake.
    let mut only_for = |key: &str, given: bool, owner: Profile| {
        if given && profile != owner {
            f.push(
                format!("carrier.{key}"),
                format!("only applies to profile = \"{owner}\", and the profile is \"{profile}\""),
            );
        }
    };
    only_for("ack_delay", raw.ack_delay.is_some(), Profile::NumAck);
    only_for(
        "skip_page_index",
        raw.skip_page_index.is_some(),
        Profile::DurComplete,
    );
    only_for(
        "quality_full_cycles",
        raw.quality_full_cycles.is_some(),
        Profile::QuaFeed,
    );
    if let Some(ms) = f.duration(
        "carrier.ack_delay",
        raw.ack_delay.as_ref(),
        i64::try_from(misbehaviour.ack_delay_ms).unwrap_or(i64::MAX),
    ) {
        misbehaviour.ack_delay_ms = u64::try_from(ms).unwrap_or(0);
    }
    if let Some(index) = raw.skip_page_index {
        misbehaviour.skip_page_index = index;
    }
    if let Some(cycles) = raw.quality_full_cycles {
        misbehaviour.quality_full_cycles = cycles;
    }
    let mut client = ClientConfig::default();
    if let Some(size) = raw.batch_size {
        if (1..=oc_protocol::durations::MAX_RECORDS_PER_REPORT).contains(&size) {
            client.batch_size = size;
        } else {
            f.push(
                "carrier.batch_size",
                format!("must be from 1 to 1000 (records per duration report), got {size}"),
            );
        }
    }
    if let Some(size) = raw.page_size {
        if (1..=oc_protocol::validate::page_size::MAX).contains(&size) {
            client.page_size = Some(size);
        } else {
            f.push(
                "carrier.page_size",
                format!("must be from 1 to 1000 (records per feed page asked for), got {size}"),
            );
        }
    }
    let drift = raw.drift.unwrap_or_default();
    // mock-carrier checks its own drift parameters; ask it through a configuration that holds
    // only them, and keep its drift findings.
    let mut probe = CarrierConfig::new("http://127.0.0.1:9", "token", "secret");
    probe.drift.clone_from(&drift);
    for (key, message) in probe.problems() {
        if key.starts_with("drift[") {
            f.push(format!("carrier.{key}"), message);
        }
    }
    CarrierSpec::Mock {
        drift,
        misbehaviour,
        client,
    }
}

pub(crate) fn teams_faults(settings: FaultSettings, f: &mut Findings) -> FaultSettings {
    if let Err(message) = settings.check() {
        // FaultSettings::check names the key first ("throttle_share must be …"); keep it as
        // the key path when it does.
        match message.split_once(' ') {
            Some((key, rest)) if rest.starts_with("must") => {
                f.push(format!("teams_faults.{key}"), rest);
            }
            _ => f.push("teams_faults", message),
        }
    }
    settings
}

/// The carrier settings as one line, for summaries.
pub(crate) fn describe_carrier(carrier: &CarrierSpec) -> String {
    match carrier {
        CarrierSpec::External { url } => format!("external at {url}"),
        CarrierSpec::Mock {
            drift,
            misbehaviour,
            client,
        } => {
            let mut out = format!("mock, profile {}", misbehaviour.profile);
            match misbehaviour.profile {
                Profile::NumAck => out.push_str(&format!(
                    " (ack_delay {})",
                    format_duration(i64::try_from(misbehaviour.ack_delay_ms).unwrap_or(i64::MAX))
                )),
                Profile::DurComplete => out.push_str(&format!(
                    " (skip_page_index {})",
                    misbehaviour.skip_page_index
                )),
                Profile::QuaFeed => out.push_str(&format!(
                    " (quality_full_cycles {})",
                    misbehaviour.quality_full_cycles
                )),
                _ => {}
            }
            if drift.is_empty() {
                out.push_str(", no drift");
            } else {
                let names: Vec<&str> = drift.iter().map(|d| d.name()).collect();
                out.push_str(&format!(", drift: {}", names.join(", ")));
            }
            if client.batch_size != ClientConfig::default().batch_size {
                out.push_str(&format!(", batch_size {}", client.batch_size));
            }
            if let Some(size) = client.page_size {
                out.push_str(&format!(", page_size {size}"));
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use mock_carrier::DriftModel;

    use super::super::load::parse;
    use super::super::load::tests::{at, located, problem, problems, with};
    use super::*;

    #[test]
    fn an_external_carrier_needs_a_url_and_takes_no_mock_keys() {
        let s = parse(
            &with("[carrier]\nkind = \"external\"\nurl = \"https://carrier.example:8443/base\"\n"),
            "t",
        )
        .unwrap();
        assert_eq!(
            s.carrier,
            CarrierSpec::External {
                url: "https://carrier.example:8443/base".to_owned()
            }
        );
        let text = with("[carrier]\nkind = \"external\"\n");
        assert_eq!(
            located(&text, "is required with kind = \"external\""),
            at("carrier.url", 11, 8)
        );
        let text = with("[carrier]\nkind = \"external\"\nurl = \"ftp://x\"\n");
        assert_eq!(
            located(&text, "http or https URL"),
            at("carrier.url", 12, 7)
        );
        let text = with(
            "[carrier]\nkind = \"external\"\nurl = \"http://127.0.0.1:8081\"\nprofile = \"correct\"\n\
             ack_delay = \"6s\"\nskip_page_index = 1\nquality_full_cycles = 1\nbatch_size = 10\n\
             [[carrier.drift]]\nmodel = \"drop\"\nprobability = 0.1\n",
        );
        assert_eq!(
            problems(&text),
            [
                at("carrier.profile", 13, 11),
                at("carrier.ack_delay", 14, 13),
                at("carrier.skip_page_index", 15, 19),
                at("carrier.quality_full_cycles", 16, 23),
                at("carrier.batch_size", 17, 14),
                at("carrier.drift", 18, 1),
            ]
        );
    }

    #[test]
    fn a_mock_carrier_takes_no_url() {
        let text = with("[carrier]\nurl = \"http://127.0.0.1:8081\"\n");
        assert_eq!(
            located(&text, "only for kind = \"external\""),
            at("carrier.url", 11, 7)
        );
    }

    #[test]
    fn an_unknown_profile_lists_the_known_ones() {
        let text = with("[carrier]\nprofile = \"CDR-FEED\"\n");
        let (where_, message) = problem(&text);
        assert_eq!(where_, at("carrier.profile", 11, 11));
        assert!(
            message.contains("correct, SEC-SIGNATURE, NUM-ACK"),
            "{message}"
        );
        assert!(message.contains("DUR-COMPLETE"), "{message}");
    }

    #[test]
    fn profile_parameters_map_to_the_misbehaviour_config() {
        let s = parse(
            &with(
                "[carrier]\nprofile = \"NUM-ACK\"\nack_delay = \"7s\"\nbatch_size = 25\n\
                 page_size = 1000\n",
            ),
            "t",
        )
        .unwrap();
        let CarrierSpec::Mock {
            misbehaviour,
            client,
            ..
        } = s.carrier
        else {
            panic!("{:?}", s.carrier)
        };
        assert_eq!(misbehaviour.profile, Profile::NumAck);
        assert_eq!(misbehaviour.ack_delay_ms, 7_000);
        assert_eq!(client.batch_size, 25);
        assert_eq!(client.page_size, Some(1000));
        assert_eq!(
            client.poll_interval_ms,
            ClientConfig::default().poll_interval_ms
        );
        let s = parse(
            &with("[carrier]\nprofile = \"DUR-COMPLETE\"\nskip_page_index = 0\n"),
            "t",
        )
        .unwrap();
        let CarrierSpec::Mock { misbehaviour, .. } = s.carrier else {
            panic!("{:?}", s.carrier)
        };
        assert_eq!(
            (misbehaviour.profile, misbehaviour.skip_page_index),
            (Profile::DurComplete, 0)
        );
    }

    #[test]
    fn a_parameter_of_another_profile_is_refused() {
        let text =
            with("[carrier]\nprofile = \"correct\"\nack_delay = \"6s\"\nquality_full_cycles = 2\n");
        assert_eq!(
            problems(&text),
            [
                at("carrier.ack_delay", 12, 13),
                at("carrier.quality_full_cycles", 13, 23)
            ]
        );
        let text = with("[carrier]\nprofile = \"NUM-ACK\"\nskip_page_index = 2\n");
        assert_eq!(
            located(&text, "only applies to profile = \"DUR-COMPLETE\""),
            at("carrier.skip_page_index", 12, 19)
        );
        let text = with("[carrier]\nprofile = \"NUM-ACK\"\nack_delay = \"6 s\"\n");
        assert_eq!(
            located(&text, "unknown unit"),
            at("carrier.ack_delay", 12, 13)
        );
    }

    #[test]
    fn the_batch_and_page_sizes_are_from_1_to_1000_and_the_page_size_unset_by_default() {
        for key in ["batch_size", "page_size"] {
            for bad in [0, 1001] {
                let text = with(&format!("[carrier]\n{key} = {bad}\n"));
                assert_eq!(
                    located(&text, "from 1 to 1000"),
                    at(&format!("carrier.{key}"), 11, key.len() + 4)
                );
            }
        }
        let CarrierSpec::Mock { client, .. } = parse(&with(""), "t").unwrap().carrier else {
            panic!("the default carrier is the mock")
        };
        assert_eq!(client.page_size, None);
        let text = with(
            "[carrier]\nkind = \"external\"\nurl = \"http://127.0.0.1:8081\"\npage_size = 5\n",
        );
        assert_eq!(
            located(&text, "only for kind = \"mock\""),
            at("carrier.page_size", 13, 13)
        );
    }

    #[test]
    fn drift_models_are_read_whole_and_checked_by_mock_carrier() {
        let text = with(
            "[[carrier.drift]]\nmodel = \"round\"\nincrement_ms = 60000\nmode = \"up\"\n\
             [[carrier.drift]]\nmodel = \"drop\"\nprobability = 1.5\n\
             [[carrier.drift]]\nmodel = \"unassigned_number\"\nprobability = 0.1\nnumbers = []\n",
        );
        assert_eq!(
            problems(&text),
            [
                at("carrier.drift[1].probability", 16, 15),
                at("carrier.drift[2].numbers", 20, 11)
            ]
        );
        let s = parse(
            &with("[[carrier.drift]]\nmodel = \"offset\"\nms = -250\n"),
            "t",
        )
        .unwrap();
        let CarrierSpec::Mock { drift, .. } = s.carrier else {
            panic!("{:?}", s.carrier)
        };
        assert_eq!(drift, [DriftModel::Offset { ms: -250 }]);
    }

    #[test]
    fn teams_faults_are_checked_by_mock_teams() {
        let text = with("[teams_faults]\nwebhook_reorder_share = 1.5\n");
        assert_eq!(
            located(&text, "must be from 0 to 1, is 1.5"),
            at("teams_faults.webhook_reorder_share", 11, 25)
        );
        let text = with("[teams_faults]\nthrottle_share = 0.6\nerror_share = 0.6\n");
        assert_eq!(
            located(&text, "throttle_share + error_share"),
            at("teams_faults", 10, 1)
        );
        let s = parse(&with("[teams_faults]\nthrottle_share = 0.05\n"), "t").unwrap();
        assert_eq!(s.teams_faults.throttle_share, 0.05);
        assert_eq!(
            s.teams_faults.retry_after_secs,
            FaultSettings::default().retry_after_secs
        );
    }
}
