//! Writing a JSON string by hand against serde_json, on what a run's exchange log escapes
//! most: a captured request body, itself JSON (an escape every dozen bytes).
//!
//! `cargo bench -p oc-protocol --bench json_write` prints the time per text and its bytes/s;
//! a UUID stands for the texts with nothing to escape that fill the feed pages.

#![expect(
    missing_docs,
    reason = "criterion_group! generates an undocumented function"
)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use oc_protocol::json_write::write_str;

/// A notification of `events` assignments, as the webhook sender writes it.
fn notification(events: usize) -> String {
    let event = |i: usize| {
        format!(
            "{{\"eventId\":\"0b6e{i:04x}-89a2-43c8-8a1d-d01e82ede00b\",\"sequence\":{i},\
             \"type\":\"assigned\",\"tenantId\":\"ca6663ee-e54c-4dbc-be2a-f93747afb10a\",\
             \"telephoneNumber\":\"+1425805{i:04}\",\
             \"sipUri\":\"sip:+1425805{i:04}@load.example.com;user=phone\",\
             \"usage\":\"CallingUserAssignment\",\
             \"assignee\":{{\"id\":\"ab87245d-c5e6-402c-a99e-0862be71a8f7\",\"type\":\"user\"}},\
             \"effectiveDateTime\":\"2026-12-03T06:36:45.587Z\"}}"
        )
    };
    let events: Vec<String> = (0..events).map(event).collect();
    format!(
        "{{\"notificationId\":\"5ab43d64-00e0-4264-ad94-183ea3c7d28b\",\
         \"sentDateTime\":\"2026-12-03T06:36:45.587Z\",\"events\":[{}]}}",
        events.join(",")
    )
}

fn escaping(c: &mut Criterion) {
    let texts = [
        (
            "a UUID".to_owned(),
            "5ab43d64-00e0-4264-ad94-183ea3c7d28b".to_owned(),
        ),
        ("a notification of 1".to_owned(), notification(1)),
        ("a notification of 100".to_owned(), notification(100)),
    ];
    for (name, body) in texts {
        let mut group = c.benchmark_group(format!("escape {name}"));
        group.throughput(Throughput::Bytes(body.len() as u64));
        let mut out = Vec::with_capacity(4 * body.len());
        group.bench_function("json_write::write_str", |b| {
            b.iter(|| {
                out.clear();
                write_str(&mut out, black_box(&body));
                black_box(out.len())
            })
        });
        group.bench_function("serde_json::to_writer", |b| {
            b.iter(|| {
                out.clear();
                serde_json::to_writer(&mut out, black_box(&body)).expect("a str serialises");
                black_box(out.len())
            })
        });
        group.finish();
    }
}

criterion_group!(benches, escaping);
criterion_main!(benches);
