//! Statistics of each drift model over 100 000 seeded calls, against stated bounds.
//!
//! Kept beside `apply.rs` (whose unit tests these are) because they would double its length.
//! Every bound is at least 5 standard deviations of the statistic wide, so a correct model
//! fails it with a probability below one in a million for a given seed, and the seed is fixed.

use super::*;
use crate::seed;

const CALLS: usize = 100_000;
const SEED: u64 = 20_261_126;
const DEADLINE: i64 = 86_400_000;

/// A call: id, number, reference times. Durations uniform in [5 s, 605 s), 50 numbers.
fn calls() -> Vec<(String, String, CallTimes)> {
    let mut rng = seed::rng(1, &[b"durations"]);
    (0..CALLS)
        .map(|i| {
            let connect = 1_795_684_502_125 + i as i64 * 1_000;
            let duration = rng.random_range(5_000..605_000);
            (
                format!("call-{i}"),
                format!("+1425555{:04}", i % 50),
                CallTimes {
                    connect,
                    end: connect + duration,
                },
            )
        })
        .collect()
}

fn views(models: &[DriftModel], calls: &[(String, String, CallTimes)]) -> Vec<SwitchView> {
    let nobody = |_: &str, _: UnixMillis| false;
    calls
        .iter()
        .map(|(id, number, times)| {
            switch_view(
                models,
                &DriftInput {
                    seed: SEED,
                    call_id: id,
                    telephone_number: number,
                    times: *times,
                    deadline_ms: DEADLINE,
                },
                &nobody,
            )
        })
        .collect()
}

fn share(hits: usize) -> f64 {
    hits as f64 / CALLS as f64
}

fn mean(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let v: Vec<f64> = values.collect();
    let m = v.iter().sum::<f64>() / v.len() as f64;
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64;
    (m, var.sqrt())
}

/// 5 standard deviations of a share `p` over `CALLS` trials.
fn five_sigma(p: f64) -> f64 {
    5.0 * (p * (1.0 - p) / CALLS as f64).sqrt()
}

#[test]
fn offset_moves_every_duration_by_exactly_its_ms() {
    let calls = calls();
    let out = views(&[DriftModel::Offset { ms: -1_500 }], &calls);
    for ((_, _, t), v) in calls.iter().zip(&out) {
        let s = v.times.unwrap();
        assert_eq!(s.connect, t.connect);
        assert_eq!(s.duration(), t.duration() - 1_500);
    }
    assert!(out.iter().all(|v| v.tags == ["offset"]));
}

#[test]
fn rounding_gives_multiples_within_one_increment_with_the_expected_mean_shift() {
    let calls = calls();
    for increment in [6_000i64, 60_000] {
        for (mode, expected_shift) in [
            (RoundingMode::Up, increment as f64 / 2.0),
            (RoundingMode::Down, -(increment as f64) / 2.0),
            (RoundingMode::Nearest, 0.0),
        ] {
            let out = views(
                &[DriftModel::Round {
                    increment_ms: increment,
                    mode,
                }],
                &calls,
            );
            let mut shifts = Vec::with_capacity(CALLS);
            for ((_, _, t), v) in calls.iter().zip(&out) {
                let d = v.times.unwrap().duration();
                assert_eq!(d % increment, 0, "{mode:?} {increment}");
                let shift = d - t.duration();
                match mode {
                    RoundingMode::Up => assert!((0..increment).contains(&shift)),
                    RoundingMode::Down => assert!((-increment + 1..=0).contains(&shift)),
                    RoundingMode::Nearest => assert!(shift.abs() <= increment / 2),
                }
                shifts.push(shift as f64);
            }
            // The remainder is near-uniform on [0, increment): mean shift ±inc/2 or 0, with a
            // standard error of inc/sqrt(12 * 100000) = inc/1095; allow inc/100 (> 10 sigma).
            let (m, _) = mean(shifts.into_iter());
            assert!(
                (m - expected_shift).abs() < increment as f64 / 100.0,
                "{mode:?} {increment}: mean shift {m}"
            );
        }
    }
}

#[test]
fn jitter_has_its_mean_and_sigma() {
    let calls = calls();
    let out = views(
        &[DriftModel::Jitter {
            sigma_ms: 500.0,
            mean_ms: 100.0,
        }],
        &calls,
    );
    let diffs = calls
        .iter()
        .zip(&out)
        .map(|((_, _, t), v)| (v.times.unwrap().duration() - t.duration()) as f64);
    let (m, sd) = mean(diffs);
    // Standard error of the mean: 500/sqrt(1e5) = 1.6 ms; of the sd: 500/sqrt(2e5) = 1.1 ms.
    assert!((m - 100.0).abs() < 10.0, "mean {m}");
    assert!((sd - 500.0).abs() < 10.0, "sd {sd}");
}

#[test]
fn late_answer_and_hung_hit_their_share_within_their_ranges() {
    let calls = calls();
    let late = views(
        &[DriftModel::LateAnswer {
            probability: 0.1,
            min_ms: 500,
            max_ms: 2_500,
        }],
        &calls,
    );
    let mut delays = Vec::new();
    for ((_, _, t), v) in calls.iter().zip(&late) {
        let s = v.times.unwrap();
        assert_eq!(s.end, t.end);
        let delay = s.connect - t.connect;
        if delay != 0 {
            assert!((500..=2_500).contains(&delay), "{delay}");
            assert_eq!(v.tags, ["late_answer"]);
            delays.push(delay as f64);
        }
    }
    assert!((share(delays.len()) - 0.1).abs() < five_sigma(0.1));
    // Uniform on [500, 2500]: mean 1500, sd 577; standard error over ~10 000 calls is 5.8 ms.
    let (m, _) = mean(delays.into_iter());
    assert!((m - 1_500.0).abs() < 30.0, "mean delay {m}");

    let hung = views(
        &[DriftModel::Hung {
            probability: 0.01,
            min_ms: 3_600_000,
            max_ms: 7_200_000,
        }],
        &calls,
    );
    let mut hits = 0;
    for ((_, _, t), v) in calls.iter().zip(&hung) {
        let extension = v.times.unwrap().end - t.end;
        if extension != 0 {
            assert!((3_600_000..=7_200_000).contains(&extension));
            hits += 1;
        }
    }
    assert!((share(hits) - 0.01).abs() < five_sigma(0.01), "{hits}");
}

#[test]
fn clock_skew_is_constant_per_switch_and_bounded() {
    let calls = calls();
    let out = views(
        &[DriftModel::ClockSkew {
            switches: 4,
            max_skew_ms: 2_000,
            max_rate_ppm: 100.0,
        }],
        &calls,
    );
    let mut skew_of_number = std::collections::BTreeMap::new();
    for ((_, number, t), v) in calls.iter().zip(&out) {
        let s = v.times.unwrap();
        let skew = s.connect - t.connect;
        assert!(skew.abs() <= 2_000);
        assert_eq!(
            *skew_of_number.entry(number.clone()).or_insert(skew),
            skew,
            "{number}"
        );
        // The rate stretches the duration by at most 100 ppm (+ rounding).
        let stretch = (s.duration() - t.duration()).abs() as f64;
        assert!(stretch <= t.duration() as f64 * 100e-6 + 1.0);
    }
    let mut skews: Vec<i64> = skew_of_number.into_values().collect();
    skews.sort_unstable();
    skews.dedup();
    assert!((1..=4).contains(&skews.len()), "{skews:?}");
}

#[test]
fn drop_duplicate_and_after_deadline_hit_their_share() {
    let calls = calls();
    let dropped = views(&[DriftModel::Drop { probability: 0.05 }], &calls);
    let hits = dropped.iter().filter(|v| v.times.is_none()).count();
    assert!((share(hits) - 0.05).abs() < five_sigma(0.05), "{hits}");

    let duplicated = views(&[DriftModel::Duplicate { probability: 0.02 }], &calls);
    let hits = duplicated.iter().filter(|v| v.duplicate).count();
    assert!((share(hits) - 0.02).abs() < five_sigma(0.02), "{hits}");

    let held = views(
        &[DriftModel::AfterDeadline {
            probability: 0.01,
            extra_ms: 60_000,
        }],
        &calls,
    );
    let mut hits = 0;
    for ((_, _, t), v) in calls.iter().zip(&held) {
        if let Some(h) = v.hold_until {
            assert_eq!(h, t.end + DEADLINE + 60_000);
            hits += 1;
        }
    }
    assert!((share(hits) - 0.01).abs() < five_sigma(0.01), "{hits}");
}

#[test]
fn unassigned_number_fabricates_on_free_numbers_only() {
    let calls = calls();
    let model = DriftModel::UnassignedNumber {
        probability: 0.01,
        numbers: vec!["+14255550999".to_owned(), "+14255550998".to_owned()],
    };
    // +14255550998 is assigned throughout in the carrier's view: never a candidate.
    let assigned = |n: &str, _: UnixMillis| n == "+14255550998";
    let mut hits = 0;
    let mut ids = std::collections::BTreeSet::new();
    for (id, number, times) in &calls {
        let v = switch_view(
            std::slice::from_ref(&model),
            &DriftInput {
                seed: SEED,
                call_id: id,
                telephone_number: number,
                times: *times,
                deadline_ms: DEADLINE,
            },
            &assigned,
        );
        if let Some(f) = v.fabricated {
            assert_eq!(f.telephone_number, "+14255550999");
            assert_eq!(f.times, *times);
            assert!(ids.insert(f.call_id), "fabricated callIds are fresh");
            hits += 1;
        }
    }
    assert!((share(hits) - 0.01).abs() < five_sigma(0.01), "{hits}");
}

#[test]
fn a_calls_drift_does_not_depend_on_arrival_order_and_models_compose_in_order() {
    let calls: Vec<_> = calls().into_iter().take(2_000).collect();
    let models = [
        DriftModel::Jitter {
            sigma_ms: 300.0,
            mean_ms: 0.0,
        },
        DriftModel::Round {
            increment_ms: 1_000,
            mode: RoundingMode::Up,
        },
        DriftModel::Duplicate { probability: 0.5 },
    ];
    let forward = views(&models, &calls);
    let mut reversed_calls = calls.clone();
    reversed_calls.reverse();
    let mut backward = views(&models, &reversed_calls);
    backward.reverse();
    assert_eq!(forward, backward);
    for v in &forward {
        // Rounding came last among the timing models, so every duration is a whole second.
        assert_eq!(v.times.unwrap().duration() % 1_000, 0);
        let order: Vec<usize> = v
            .tags
            .iter()
            .map(|t| models.iter().position(|m| m.name() == *t).unwrap())
            .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{:?}", v.tags);
        assert_eq!(v.tags.contains(&"duplicate"), v.duplicate);
    }
    // Another seed gives other draws.
    let other = switch_view(
        &models,
        &DriftInput {
            seed: SEED + 1,
            call_id: &calls[0].0,
            telephone_number: &calls[0].1,
            times: calls[0].2,
            deadline_ms: DEADLINE,
        },
        &|_, _| false,
    );
    let differs = (0..calls.len()).any(|i| {
        let v = switch_view(
            &models,
            &DriftInput {
                seed: SEED + 1,
                call_id: &calls[i].0,
                telephone_number: &calls[i].1,
                times: calls[i].2,
                deadline_ms: DEADLINE,
            },
            &|_, _| false,
        );
        v != forward[i]
    });
    assert!(differs, "{other:?}");
}

#[test]
fn rounding_edges() {
    assert_eq!(round(0, 6_000, RoundingMode::Up), 0);
    assert_eq!(round(1, 6_000, RoundingMode::Up), 6_000);
    assert_eq!(round(6_000, 6_000, RoundingMode::Up), 6_000);
    assert_eq!(round(5_999, 6_000, RoundingMode::Down), 0);
    assert_eq!(round(3_000, 6_000, RoundingMode::Nearest), 6_000);
    assert_eq!(round(2_999, 6_000, RoundingMode::Nearest), 0);
    assert_eq!(round(-5, 6_000, RoundingMode::Up), 0);
}
