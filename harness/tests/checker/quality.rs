//! QUA-CLASS and QUA-FEED on fixture histories.

use oc_protocol::RuleId;
use oc_reports::Outcome;

use crate::support::{assert_note, assert_verdict, judge};

#[test]
fn qua_class_pass() {
    let v = judge(RuleId::QuaClass, "qua-class-pass");
    assert_verdict(&v, Outcome::Passed, 0, &[]);
}

#[test]
fn qua_class_fail() {
    let v = judge(RuleId::QuaClass, "qua-class-fail");
    assert_verdict(&v, Outcome::Failed, 2, &[&[1], &[1]]);
    assert_note(
        &v,
        0,
        "call call-2 (callerToCallee): poor is true, but 500 packets",
    );
    assert_note(&v, 1, "average jitter 31 ms classify as poor");
}

#[test]
fn qua_feed_pass() {
    let v = judge(RuleId::QuaFeed, "qua-feed-pass");
    assert_verdict(&v, Outcome::Passed, 0, &[]);
    // The empty cycle, the one with only a webhook, and the one cut by an injected 503 are
    // not judged.
    assert!(
        v.summary.starts_with("2 poll cycles judged"),
        "{}",
        v.summary
    );
}

#[test]
fn qua_feed_fail() {
    let v = judge(RuleId::QuaFeed, "qua-feed-fail");
    assert_verdict(&v, Outcome::Failed, 2, &[&[4], &[5]]);
    assert_note(
        &v,
        0,
        "stopped at the quality page of seq 4, which has a nextLink",
    );
    assert_note(&v, 1, "made 1 request but read no quality page");
}
