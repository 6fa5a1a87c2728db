//! The security rules (PROTOCOL.md 1): SEC-SIGNATURE from the forged and replayed
//! notifications the harness sent the carrier (recorded as exchanges, which its evidence cites
//! with the carrier's answers), SEC-ISOLATION (Teams) from the requests it made with one
//! carrier's token on another's data. Both probes come at the end of a run ([`End`]): the rules
//! keep nothing while it runs.

use oc_protocol::RuleId;

use super::{Tally, count};
use crate::checker::stream::{End, Judged, Rule};

fn status(s: Option<u16>) -> String {
    s.map_or("no answer".to_owned(), |s| s.to_string())
}

/// SEC-SIGNATURE: every forged or replayed notification got 401 and was not applied (the
/// number it named probes 404).
pub(super) struct SecSignature;

impl Rule for SecSignature {
    fn finish(self: Box<Self>, end: &End<'_>) -> Judged {
        let probes = end.signature_probes;
        let mut tally = Tally::new(RuleId::SecSignature);
        // One of each kind: no signature, a wrong one, a stale one.
        tally.exercised(
            "forged or replayed notifications sent",
            probes.len() as u64,
            3,
        );
        for probe in probes {
            let answered_401 = probe.status == Some(401);
            let not_applied = probe.probe_status == Some(404);
            if answered_401 && not_applied {
                continue;
            }
            tally.fail(|| {
                let mut wrong = Vec::new();
                if !answered_401 {
                    wrong.push(format!(
                        "the carrier answered {} instead of 401",
                        status(probe.status)
                    ));
                }
                if !not_applied {
                    wrong.push(format!(
                        "the state probe of {} got {} instead of 404{}",
                        probe.telephone_number,
                        status(probe.probe_status),
                        if probe.probe_status == Some(200) {
                            " (the notification was applied)"
                        } else {
                            ""
                        }
                    ));
                }
                (
                    format!(
                        "a notification for {} with a {} signature: {}",
                        probe.telephone_number,
                        probe.kind,
                        wrong.join("; and ")
                    ),
                    probe.seqs.clone(),
                )
            });
        }
        let failures = tally.failures();
        tally.finish(format!(
            "{} sent; {failures} not rejected with 401 or applied anyway",
            count(probes.len() as u64, "forged or replayed notification")
        ))
    }
}

/// SEC-ISOLATION (Teams): every request with one carrier's token on another's data got the
/// status the protocol requires.
pub(super) struct SecIsolation;

impl Rule for SecIsolation {
    fn finish(self: Box<Self>, end: &End<'_>) -> Judged {
        let probes = end.isolation_probes;
        let mut tally = Tally::new(RuleId::SecIsolation);
        tally.exercised(
            "requests with one carrier's token on another's data",
            probes.len() as u64,
            1,
        );
        for probe in probes {
            if probe.status == probe.expected {
                continue;
            }
            tally.fail(|| {
                (
                    format!(
                        "{}: Teams answered {}, the protocol requires {}",
                        probe.what, probe.status, probe.expected
                    ),
                    Vec::new(),
                )
            });
        }
        let failures = tally.failures();
        tally.finish(format!(
            "{} made; {failures} answered otherwise than the protocol requires",
            count(probes.len() as u64, "cross-carrier request")
        ))
    }
}
