//! Benchmarks of the Teams side at scale: reconciling a million calls, and serving 100 000
//! records through `cdrs/delta` over loopback HTTP.
//!
//! `cargo bench -p mock-teams --bench store` prints the figures; the first lines also give the
//! reconciliation index's bytes per call.

#![expect(
    missing_docs,
    reason = "criterion_group! generates an undocumented function"
)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mock_teams::{
    Assignment, CarrierSpec, MockTeams, NewCall, NumberChange, Store, StoreSettings, TeamsOptions,
};
use oc_protocol::{Assignee, AssigneeType, Direction, NumberUsage, format_timestamp};

const T0: i64 = 1_795_651_200_000;
const TENANT: &str = "c0ffee00-0000-4000-8000-000000000001";
const NUMBERS: u64 = 1_000;

fn number(i: u64) -> String {
    format!("+1425{:07}", i % NUMBERS)
}

fn assignment(n: &str) -> Assignment {
    Assignment {
        sip_uri: format!("sip:{n}@sbc.example;user=phone"),
        usage: NumberUsage::CallingUserAssignment,
        assignee: Assignee {
            id: "a1b2c3d4-0000-4000-8000-000000000001".into(),
            kind: AssigneeType::User,
        },
    }
}

fn new_call(i: u64) -> NewCall {
    let start = T0 + 1_000 + i64::try_from(i).unwrap_or(0) * 1_000;
    NewCall {
        call_id: format!("call-{i:08}"),
        telephone_number: number(i),
        direction: Direction::Outbound,
        other_number: "+442079460000".into(),
        start,
        connect: Some(start + 3_000),
        end: start + 3_000 + 60_000 + i64::try_from(i % 600).unwrap_or(0) * 100,
        final_sip_code: 200,
        availability_delay_ms: 30_000,
        quality: None,
    }
}

/// A store with one carrier and `calls` answered calls, each reported (every tenth drifting).
fn store_with(calls: u64) -> Store {
    let mut store = Store::new(StoreSettings::default(), T0);
    store
        .add_carrier(CarrierSpec {
            id: "c".into(),
            token: "t".into(),
            webhook: None,
        })
        .unwrap();
    for i in 0..NUMBERS {
        let n = number(i);
        store.add_number("c", TENANT, &n).unwrap();
        store.assign(&n, assignment(&n)).unwrap();
    }
    let mut batch = Vec::with_capacity(1000);
    for i in 0..calls {
        let call = new_call(i);
        let talk = call.end - call.connect.unwrap_or(call.start);
        let reported = if i % 10 == 0 { talk + 6_000 } else { talk };
        let connect = call.connect.unwrap_or(call.start);
        batch.push(serde_json::json!({
            "callId": call.call_id, "telephoneNumber": call.telephone_number,
            "connectDateTime": format_timestamp(connect),
            "endDateTime": format_timestamp(connect + reported), "durationMs": reported,
        }));
        store.add_call(call).unwrap();
        if batch.len() == 1000 || i + 1 == calls {
            let body = serde_json::json!({ "records": batch }).to_string();
            store
                .report("c", &format!("k{i}"), body.as_bytes())
                .unwrap();
            batch.clear();
        }
    }
    store
        .advance_to(T0 + i64::try_from(calls).unwrap_or(0) * 1_000 + 3_600_000)
        .unwrap();
    store
}

fn reconcile_a_million(c: &mut Criterion) {
    let calls = 1_000_000;
    let store = store_with(calls);
    println!(
        "reconciliation index: {:.1} bytes per call; call rows, ids, slots and feeds: {:.1} bytes per call",
        store.reconciliation_index_bytes_per_call(),
        store.call_heap_bytes() as f64 / calls as f64
    );
    let to = T0 + 2_000_000_000;
    let summary = store.reconcile("c", T0, to).unwrap();
    assert_eq!(summary.counts.matched + summary.counts.drift, calls);
    let mut group = c.benchmark_group("reconcile");
    group.sample_size(10);
    group.throughput(Throughput::Elements(calls));
    group.bench_function("1M calls", |b| {
        b.iter(|| black_box(store.reconcile("c", T0, to).unwrap()))
    });
    group.finish();
}

fn serve_100k_through_cdr_delta(c: &mut Criterion) {
    let records: u64 = 100_000;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let teams: MockTeams = runtime.block_on(async {
        let teams = MockTeams::start(TeamsOptions::loopback(T0)).await.unwrap();
        teams
            .add_carrier(CarrierSpec {
                id: "c".into(),
                token: "t".into(),
                webhook: None,
            })
            .unwrap();
        let changes = (0..NUMBERS)
            .map(|i| {
                let n = number(i);
                teams.with_store(|s| s.add_number("c", TENANT, &n)).unwrap();
                NumberChange::Assign {
                    assignment: assignment(&n),
                    telephone_number: n,
                }
            })
            .collect();
        for r in teams.apply_changes(changes) {
            r.unwrap();
        }
        for i in 0..records {
            teams.add_call(new_call(i)).unwrap();
        }
        teams
            .advance_to(T0 + i64::try_from(records).unwrap_or(0) * 1_000 + 3_600_000)
            .unwrap();
        teams
    });
    let client = reqwest::Client::new();
    let first = format!("{}/oc/v1/cdrs/delta?pageSize=1000", teams.base_url());
    let follow = || async {
        let mut url = first.clone();
        let mut served = 0u64;
        loop {
            let page: serde_json::Value = client
                .get(&url)
                .bearer_auth("t")
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            served += page["value"].as_array().map_or(0, |v| v.len() as u64);
            match page["nextLink"].as_str() {
                Some(next) => url = next.to_owned(),
                None => return served,
            }
        }
    };
    assert_eq!(runtime.block_on(follow()), records);
    let mut group = c.benchmark_group("cdrs/delta");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(records));
    group.bench_function("100k records, pages of 1000, over loopback HTTP", |b| {
        b.iter(|| black_box(runtime.block_on(follow())))
    });
    group.finish();
}

criterion_group!(benches, reconcile_a_million, serve_100k_through_cdr_delta);
criterion_main!(benches);
