//! CDR-PAGING, CDR-FEED and CDR-THROTTLE on fixture histories.

use oc_protocol::RuleId;
use oc_reports::Outcome;

use crate::support::{assert_note, assert_verdict, judge};

#[test]
fn cdr_paging_pass() {
    let v = judge(RuleId::CdrPaging, "cdr-paging-pass");
    assert_verdict(&v, Outcome::Passed, 0, &[]);
    assert!(v.summary.starts_with("2 links followed"), "{}", v.summary);
}

#[test]
fn cdr_paging_fail() {
    let v = judge(RuleId::CdrPaging, "cdr-paging-fail");
    assert_verdict(&v, Outcome::Failed, 2, &[&[1, 2], &[4]]);
    assert_note(&v, 0, "adds pageSize=1000 to the link issued at seq 1");
    assert_note(&v, 1, "carries a token Teams never issued");
}

#[test]
fn cdr_feed_pass() {
    let v = judge(RuleId::CdrFeed, "cdr-feed-pass");
    assert_verdict(&v, Outcome::Passed, 0, &[]);
}

#[test]
fn cdr_feed_fail() {
    let v = judge(RuleId::CdrFeed, "cdr-feed-fail");
    assert_verdict(&v, Outcome::Failed, 2, &[&[1, 2], &[2, 3]]);
    assert_note(&v, 0, "skipping positions 2..3");
    assert_note(&v, 1, "serving positions 4..5 again");
}

#[test]
fn cdr_throttle_pass() {
    let v = judge(RuleId::CdrThrottle, "cdr-throttle-pass");
    assert_verdict(&v, Outcome::Passed, 0, &[]);
}

#[test]
fn cdr_throttle_fail() {
    let v = judge(RuleId::CdrThrottle, "cdr-throttle-fail");
    assert_verdict(&v, Outcome::Failed, 1, &[&[1, 2]]);
    assert_note(
        &v,
        0,
        "came 800 ms before the Retry-After of 1 s of the 429 at seq 1 had passed",
    );
}

/// No 429 injected: the rule had nothing to check, whatever else happened.
#[test]
fn cdr_throttle_needs_a_429() {
    let v = judge(RuleId::CdrThrottle, "cdr-paging-pass");
    assert_eq!(v.outcome, Outcome::Passed, "a 429 was injected there");
    let v = judge(RuleId::CdrThrottle, "cdr-feed-pass");
    assert_verdict(&v, Outcome::NotExercised, 0, &[]);
}
