//! QUA-CLASS and QUA-FEED on fixture histories.

use oc_protocol::RuleId;
use oc_reports::Outcome;

use crate::support::{assert_note, assert_verdict, judge};

#[test]
fn qua_class_pass() {
    let v = judge(RuleId::QuaClass, "qua-class-pass");
    assert_verdict(&v, Outcome::Passed, 0, &[]);
    // The records at the thresholds, as served; not the cut page, the 503, the CDR page, or
    // the store's rendition at the end (which would fail).
    assert_eq!(
        v.summary,
        "3 served quality records judged in 1 quality page; 20 records not judged (body cut at \
         the capture limit); 0 with a poor flag that disagrees with the classification"
    );
}

#[test]
fn qua_class_fail() {
    let v = judge(RuleId::QuaClass, "qua-class-fail");
    assert_verdict(&v, Outcome::Failed, 3, &[&[1], &[1], &[2]]);
    assert_note(
        &v,
        0,
        "call call-2 (callerToCallee) in the quality page of seq 1: poor is true, but 500 packets",
    );
    assert_note(&v, 1, "call call-3 (calleeToCaller)");
    assert_note(&v, 1, "average jitter 31 ms classify as poor");
    // Teams' injected misclassification is caught on the wire, though the store renders the
    // record right at the end, and the note says it was on purpose.
    assert_note(
        &v,
        2,
        "call call-4 (callerToCallee) in the quality page of seq 2",
    );
    assert_note(
        &v,
        2,
        "flipped on purpose: teams_faults.quality_misclassify_share",
    );
    assert!(
        v.summary.starts_with(
            "4 served quality records judged in 2 quality pages; 0 records not judged"
        ),
        "{}",
        v.summary
    );
}

#[test]
fn qua_class_is_not_exercised_when_every_page_was_cut() {
    let v = judge(RuleId::QuaClass, "qua-class-cut");
    assert_verdict(&v, Outcome::NotExercised, 0, &[]);
    assert!(
        v.summary.starts_with(
            "0 served quality records judged in 0 quality pages; 1000 records not judged (body \
             cut at the capture limit)"
        ),
        "{}",
        v.summary
    );
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
