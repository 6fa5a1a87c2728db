//! Faults the Teams side injects on purpose: added latency, 429 with `Retry-After`, 5xx,
//! webhook duplication and reordering, and quality records served with the wrong `poor` flag;
//! and the throttling windows that every 429 opens, the rate limit's included. Every decision
//! comes from a seeded generator, and every injected fault is recorded with its exchange.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use oc_protocol::StreamDirection;
use oc_protocol::seed::derive;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;

use crate::exchange::InjectedFault;

/// How often and how the Teams side misbehaves. All shares are 0 to 1; the default is none.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FaultSettings {
    /// Delay added to every answer of the Teams API, ms (real time).
    pub latency_ms: u64,
    /// Share of Teams API requests answered `429 Too Many Requests`.
    pub throttle_share: f64,
    /// The `Retry-After` of those answers, s.
    pub retry_after_secs: u64,
    /// Share of Teams API requests answered `503` without doing anything.
    pub error_share: f64,
    /// Share of notifications delivered twice.
    pub webhook_duplicate_share: f64,
    /// Share of notifications held back so that later ones overtake them.
    pub webhook_reorder_share: f64,
    /// The longest a reordered notification is held, ms (real time): it goes out as soon as a
    /// newer event of one of its numbers has been acknowledged, or after this long.
    pub webhook_reorder_delay_ms: u64,
    /// The most items Teams puts in one page of any collection, whatever `pageSize` asks
    /// (PROTOCOL.md 3: a page may hold fewer); 0 caps nothing below 1000. A small cap makes
    /// every chain of a change feed several pages long, so that `nextLink`s are followed
    /// [CDR-PAGING].
    pub page_cap: u32,
    /// Records become available in bursts, every this many ms of simulated time since the
    /// start; 0 publishes each as soon as it is due. With `page_cap`, a burst is several pages.
    pub publish_every_ms: u64,
    /// Every this many new duration reports, Teams applies one and then answers `503`, as if
    /// the answer had been lost (the 3rd, 6th, 9th… for 3; 0 never): the carrier should retry
    /// with the same key and body [DUR-IDEMPOTENT], and a retry under a new key shows as a
    /// duplicate [DUR-DUPLICATE]. Counted, not drawn, so that every run loses some.
    pub answer_loss_every: u64,
    /// Share of served quality records whose `poor` flag is flipped, so that Teams breaks
    /// QUA-CLASS: the harness's check that the checker catches it.
    pub quality_misclassify_share: f64,
}

impl Default for FaultSettings {
    fn default() -> Self {
        Self {
            latency_ms: 0,
            throttle_share: 0.0,
            retry_after_secs: 1,
            error_share: 0.0,
            webhook_duplicate_share: 0.0,
            webhook_reorder_share: 0.0,
            webhook_reorder_delay_ms: 500,
            page_cap: 0,
            publish_every_ms: 0,
            answer_loss_every: 0,
            quality_misclassify_share: 0.0,
        }
    }
}

impl FaultSettings {
    /// Checks the shares; returns what is wrong.
    pub fn check(&self) -> Result<(), String> {
        for (name, share) in [
            ("throttle_share", self.throttle_share),
            ("error_share", self.error_share),
            ("webhook_duplicate_share", self.webhook_duplicate_share),
            ("webhook_reorder_share", self.webhook_reorder_share),
            ("quality_misclassify_share", self.quality_misclassify_share),
        ] {
            if !(0.0..=1.0).contains(&share) {
                return Err(format!("{name} must be from 0 to 1, is {share}"));
            }
        }
        if self.throttle_share + self.error_share > 1.0 {
            return Err("throttle_share + error_share must be at most 1".into());
        }
        Ok(())
    }
}

/// What to do with one Teams API request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RequestFault {
    /// Answer normally (after `latency_ms`, if any).
    None,
    /// Answer 429 with `Retry-After`.
    Throttle { retry_after_secs: u64 },
    /// Answer 503.
    Error,
    /// A request before an earlier `Retry-After` passed: answer 429 with the time left.
    TooEarly { early_by: Duration },
    /// Teams is down ([`Faults::set_outage`]): answer 503 with `Retry-After`.
    Outage { retry_after_secs: u64 },
}

/// Which webhook faults a number's notifications may get. When both duplication and
/// reordering are on, every number gets one of them only, chosen from the seed: so a carrier's
/// state for a number has one explanation — redeliveries there can only be re-applied
/// [NUM-IDEMPOTENT], overtaken events there can only be applied stale [NUM-ORDER].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum WebhookClass {
    /// Held back, never duplicated.
    Reordered,
    /// Duplicated, never held back.
    Duplicated,
    /// Either (only one of the two faults is on, or neither).
    Any,
}

/// Draws fault decisions and remembers each carrier's throttling windows.
pub(crate) struct Faults {
    settings: FaultSettings,
    seed: u64,
    rng: Mutex<ChaCha8Rng>,
    /// Duration reports applied so far, for `answer_loss_every`.
    applied_reports: AtomicU64,
    /// Until when each (carrier, endpoint) is throttled.
    throttled_until: Mutex<BTreeMap<(u16, &'static str), Instant>>,
    /// Until when Teams is down, when it is.
    outage_until: Mutex<Option<Instant>>,
}

impl Faults {
    pub(crate) fn new(settings: FaultSettings, seed: u64) -> Self {
        Self {
            settings,
            seed,
            applied_reports: AtomicU64::new(0),
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(derive(seed, &[b"teams/faults"]))),
            throttled_until: Mutex::new(BTreeMap::new()),
            outage_until: Mutex::new(None),
        }
    }

    /// Takes Teams down until `until` (every request answered `503` with `Retry-After`), or
    /// brings it back with `None`.
    pub(crate) fn set_outage(&self, until: Option<Instant>) {
        *self.outage_until.lock().unwrap_or_else(|p| p.into_inner()) = until;
    }

    /// How long the outage under way still lasts, when Teams is down.
    pub(crate) fn outage_left(&self) -> Option<Duration> {
        let until = (*self.outage_until.lock().unwrap_or_else(|p| p.into_inner()))?;
        let left = until.saturating_duration_since(Instant::now());
        (!left.is_zero()).then_some(left)
    }

    pub(crate) fn settings(&self) -> &FaultSettings {
        &self.settings
    }

    fn draw(&self) -> f64 {
        match self.rng.lock() {
            Ok(mut rng) => rng.random(),
            Err(poisoned) => poisoned.into_inner().random(),
        }
    }

    /// Decides the fate of a request from `carrier` to `endpoint` arriving at `now`.
    pub(crate) fn on_request(
        &self,
        carrier: u16,
        endpoint: &'static str,
        now: Instant,
    ) -> RequestFault {
        let outage = *self.outage_until.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(until) = outage
            && now < until
        {
            let left = until - now;
            return RequestFault::Outage {
                retry_after_secs: left.as_secs() + u64::from(left.subsec_nanos() > 0),
            };
        }
        let mut windows = match self.throttled_until.lock() {
            Ok(w) => w,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(&until) = windows.get(&(carrier, endpoint))
            && now < until
        {
            return RequestFault::TooEarly {
                early_by: until - now,
            };
        }
        let s = &self.settings;
        if s.throttle_share == 0.0 && s.error_share == 0.0 {
            return RequestFault::None;
        }
        let draw = self.draw();
        if draw < s.throttle_share {
            windows.insert(
                (carrier, endpoint),
                now + Duration::from_secs(s.retry_after_secs),
            );
            RequestFault::Throttle {
                retry_after_secs: s.retry_after_secs,
            }
        } else if draw < s.throttle_share + s.error_share {
            RequestFault::Error
        } else {
            RequestFault::None
        }
    }

    /// After a `429` of the rate limit: `carrier` must not call `endpoint` again for `delay`
    /// [CDR-THROTTLE], so later requests in that window are caught as `TooEarly` like after an
    /// injected 429. Returns how early this request itself was, when an earlier window was
    /// still open.
    pub(crate) fn hold_off(
        &self,
        carrier: u16,
        endpoint: &'static str,
        now: Instant,
        delay: Duration,
    ) -> Option<Duration> {
        let mut windows = match self.throttled_until.lock() {
            Ok(w) => w,
            Err(poisoned) => poisoned.into_inner(),
        };
        let until = now + delay;
        let window = windows.entry((carrier, endpoint)).or_insert(now);
        let early_by = (now < *window).then(|| *window - now);
        *window = (*window).max(until);
        early_by
    }

    /// Whether to lose the answer to a duration report that was just applied.
    pub(crate) fn lose_answer(&self) -> bool {
        let every = self.settings.answer_loss_every;
        every > 0
            && (self.applied_reports.fetch_add(1, Ordering::Relaxed) + 1).is_multiple_of(every)
    }

    /// Whether a notification may be held back until a newer one overtakes it [NUM-ORDER]:
    /// only then must the webhook sender keep what the carrier accepted, per number.
    pub(crate) fn may_hold_back(&self) -> bool {
        self.settings.webhook_reorder_share > 0.0
    }

    /// Whether numbers' notifications are split by [`WebhookClass`]: only when both webhook
    /// faults are on (with one, or none, every number is [`WebhookClass::Any`]).
    pub(crate) fn splits_webhooks(&self) -> bool {
        let s = &self.settings;
        s.webhook_duplicate_share != 0.0 && s.webhook_reorder_share != 0.0
    }

    /// The webhook faults `telephone_number`'s notifications may get (see [`WebhookClass`]).
    pub(crate) fn webhook_class(&self, telephone_number: &str) -> WebhookClass {
        if !self.splits_webhooks() {
            return WebhookClass::Any;
        }
        let draw = derive(self.seed, &[b"webhook-class", telephone_number.as_bytes()]);
        if draw & 1 == 0 {
            WebhookClass::Reordered
        } else {
            WebhookClass::Duplicated
        }
    }

    /// Whether to deliver a notification of `class` twice, and whether to hold it back. Both
    /// draws are made whatever the class, so that the class does not shift later draws.
    pub(crate) fn on_notification(&self, class: WebhookClass) -> (bool, Option<InjectedFault>) {
        let s = &self.settings;
        let duplicate = s.webhook_duplicate_share > 0.0 && self.draw() < s.webhook_duplicate_share;
        let reorder = s.webhook_reorder_share > 0.0 && self.draw() < s.webhook_reorder_share;
        let duplicate = duplicate && class != WebhookClass::Reordered;
        let reorder = (reorder && class != WebhookClass::Duplicated).then_some(
            InjectedFault::WebhookReordered {
                delay_ms: s.webhook_reorder_delay_ms,
            },
        );
        (duplicate, reorder)
    }

    /// Whether the quality record of `call_id` in `direction` is served with its `poor` flag
    /// flipped [QUA-CLASS]. Each record has a generator of its own, seeded from the seed and
    /// the record, rather than a draw from the shared one: a record is misclassified every time
    /// it is served or none, whatever order the carrier and the webhooks draw in.
    pub(crate) fn misclassifies(&self, call_id: &str, direction: StreamDirection) -> bool {
        let share = self.settings.quality_misclassify_share;
        if share <= 0.0 {
            return false;
        }
        let key = derive(
            self.seed,
            &[
                b"teams/quality-misclassify",
                call_id.as_bytes(),
                direction.as_str().as_bytes(),
            ],
        );
        ChaCha8Rng::seed_from_u64(key).random::<f64>() < share
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_answers_everything_until_it_ends_then_nothing_is_left_of_it() {
        let faults = Faults::new(FaultSettings::default(), 1);
        let now = Instant::now();
        assert_eq!(faults.on_request(0, "cdrs", now), RequestFault::None);
        faults.set_outage(Some(now + Duration::from_millis(2_500)));
        assert_eq!(
            faults.on_request(0, "cdrs", now),
            RequestFault::Outage {
                retry_after_secs: 3
            }
        );
        assert_eq!(
            faults.on_request(1, "durations", now + Duration::from_secs(2)),
            RequestFault::Outage {
                retry_after_secs: 1
            }
        );
        assert_eq!(
            faults.on_request(0, "cdrs", now + Duration::from_secs(3)),
            RequestFault::None,
            "over once its time has passed"
        );
        faults.set_outage(Some(now + Duration::from_secs(60)));
        faults.set_outage(None);
        assert_eq!(faults.on_request(0, "cdrs", now), RequestFault::None);
    }

    #[test]
    fn throttling_opens_a_window_that_early_requests_hit() {
        let faults = Faults::new(
            FaultSettings {
                throttle_share: 1.0,
                retry_after_secs: 2,
                ..FaultSettings::default()
            },
            1,
        );
        let t0 = Instant::now();
        assert_eq!(
            faults.on_request(0, "cdrs", t0),
            RequestFault::Throttle {
                retry_after_secs: 2
            }
        );
        assert_eq!(
            faults.on_request(0, "cdrs", t0 + Duration::from_millis(500)),
            RequestFault::TooEarly {
                early_by: Duration::from_millis(1500)
            }
        );
        // Another carrier and another endpoint are not held back by it.
        assert!(matches!(
            faults.on_request(1, "cdrs", t0),
            RequestFault::Throttle { .. }
        ));
        assert!(matches!(
            faults.on_request(0, "quality", t0),
            RequestFault::Throttle { .. }
        ));
    }

    #[test]
    fn a_rate_limit_429_opens_a_window_too() {
        let faults = Faults::new(FaultSettings::default(), 1);
        let t0 = Instant::now();
        assert_eq!(faults.hold_off(0, "cdrs", t0, Duration::from_secs(1)), None);
        assert_eq!(
            faults.on_request(0, "cdrs", t0 + Duration::from_millis(400)),
            RequestFault::TooEarly {
                early_by: Duration::from_millis(600)
            }
        );
        // Limited again inside the window: that request was early, and the window grows.
        assert_eq!(
            faults.hold_off(
                0,
                "cdrs",
                t0 + Duration::from_millis(500),
                Duration::from_secs(1)
            ),
            Some(Duration::from_millis(500))
        );
        assert_eq!(
            faults.on_request(0, "cdrs", t0 + Duration::from_millis(1200)),
            RequestFault::TooEarly {
                early_by: Duration::from_millis(300)
            }
        );
        assert_eq!(
            faults.on_request(0, "cdrs", t0 + Duration::from_millis(1500)),
            RequestFault::None
        );
        assert_eq!(faults.on_request(0, "quality", t0), RequestFault::None);
    }

    #[test]
    fn shares_are_drawn_from_the_seed() {
        let settings = FaultSettings {
            error_share: 0.3,
            ..FaultSettings::default()
        };
        let run = |seed| {
            let faults = Faults::new(settings.clone(), seed);
            (0..1000)
                .map(|_| faults.on_request(0, "x", Instant::now()) == RequestFault::Error)
                .collect::<Vec<_>>()
        };
        assert_eq!(run(5), run(5));
        let errors = run(5).iter().filter(|e| **e).count();
        assert!(
            (250..350).contains(&errors),
            "{errors} errors of 1000 at 0.3"
        );
    }

    #[test]
    fn with_both_webhook_faults_on_each_number_gets_one_of_them() {
        let both = Faults::new(
            FaultSettings {
                webhook_duplicate_share: 1.0,
                webhook_reorder_share: 1.0,
                ..FaultSettings::default()
            },
            3,
        );
        let classes: Vec<WebhookClass> = (0..40)
            .map(|i| both.webhook_class(&format!("+1425555{i:04}")))
            .collect();
        let reordered = classes
            .iter()
            .filter(|c| **c == WebhookClass::Reordered)
            .count();
        assert!((8..=32).contains(&reordered), "{classes:?}");
        assert!(classes.iter().all(|c| *c != WebhookClass::Any));
        assert_eq!(
            both.webhook_class("+14255550001"),
            both.webhook_class("+14255550001")
        );
        let (duplicate, hold) = both.on_notification(WebhookClass::Reordered);
        assert!(!duplicate && hold.is_some());
        let (duplicate, hold) = both.on_notification(WebhookClass::Duplicated);
        assert!(duplicate && hold.is_none());
        let (duplicate, hold) = both.on_notification(WebhookClass::Any);
        assert!(duplicate && hold.is_some());

        let one = Faults::new(
            FaultSettings {
                webhook_duplicate_share: 0.5,
                ..FaultSettings::default()
            },
            3,
        );
        assert_eq!(one.webhook_class("+14255550001"), WebhookClass::Any);
    }

    #[test]
    fn a_record_is_misclassified_every_time_or_never() {
        let faults = Faults::new(
            FaultSettings {
                quality_misclassify_share: 0.25,
                ..FaultSettings::default()
            },
            7,
        );
        let flipped = |faults: &Faults| {
            (0..1000)
                .map(|i| {
                    faults.misclassifies(&format!("call-{i}"), StreamDirection::CallerToCallee)
                })
                .collect::<Vec<_>>()
        };
        let first = flipped(&faults);
        // Draws from the shared generator in between change nothing.
        let _ = faults.on_notification(WebhookClass::Any);
        assert_eq!(flipped(&faults), first);
        let count = first.iter().filter(|f| **f).count();
        assert!((200..300).contains(&count), "{count} of 1000 at 0.25");
        let none = Faults::new(FaultSettings::default(), 7);
        assert!(!flipped(&none).contains(&true));
    }

    #[test]
    fn bad_shares_are_refused() {
        let bad = FaultSettings {
            throttle_share: 1.5,
            ..FaultSettings::default()
        };
        assert!(bad.check().unwrap_err().contains("throttle_share"));
    }
}
