//! SEC-SIGNATURE and SEC-ISOLATION on fixture histories.

use oc_protocol::RuleId;
use oc_reports::Outcome;

use crate::support::{assert_note, assert_verdict, judge};

#[test]
fn sec_signature_pass() {
    let v = judge(RuleId::SecSignature, "sec-signature-pass");
    assert_verdict(&v, Outcome::Passed, 0, &[]);
}

#[test]
fn sec_signature_fail() {
    let v = judge(RuleId::SecSignature, "sec-signature-fail");
    assert_verdict(&v, Outcome::Failed, 2, &[&[], &[]]);
    assert_note(
        &v,
        0,
        "a notification for +12025550181 with a missing signature: the carrier answered 204 instead of 401",
    );
    assert_note(
        &v,
        1,
        "got 200 instead of 404 (the notification was applied)",
    );
}

#[test]
fn sec_isolation_pass() {
    let v = judge(RuleId::SecIsolation, "sec-isolation-pass");
    assert_verdict(&v, Outcome::Passed, 0, &[]);
}

#[test]
fn sec_isolation_fail() {
    let v = judge(RuleId::SecIsolation, "sec-isolation-fail");
    assert_verdict(&v, Outcome::Failed, 1, &[&[]]);
    assert_note(
        &v,
        0,
        "with another carrier's nextLink: Teams answered 200, the protocol requires 404",
    );
}
