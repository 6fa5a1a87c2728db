//! The state the carrier API's handlers and the client loop share: the number book and the
//! call ledger, each behind its own lock (always taken ledger first, then numbers).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use oc_protocol::signing::Signer;
use oc_protocol::{CallLeg, UnixMillis};

use crate::config::CarrierConfig;
use crate::ledger::{DriftSettings, Ledger};
use crate::numbers::NumberBook;
use crate::profile::Profile;
use crate::truth::{CallTruth, GroundTruth, TruthSettings, call_truth, call_truths, ground_truth};

/// The carrier's state.
pub(crate) struct Shared {
    pub(crate) config: CarrierConfig,
    /// Checks webhooks' signatures under the configured secret, its HMAC key blocks hashed
    /// once.
    pub(crate) signer: Signer,
    numbers: Mutex<NumberBook>,
    ledger: Mutex<Ledger>,
    /// Calls of the certification hook so far (the `DUR-COMPLETE` profile counts them).
    leg_batches: AtomicU32,
}

impl Shared {
    pub(crate) fn new(config: CarrierConfig) -> Self {
        Self {
            signer: Signer::new(config.teams.webhook_secret.as_bytes()),
            config,
            numbers: Mutex::new(NumberBook::default()),
            ledger: Mutex::new(Ledger::default()),
            leg_batches: AtomicU32::new(0),
        }
    }

    /// The number book. A panic while it was held cannot leave it half-updated in a way that
    /// matters more than stopping would, so a poisoned lock is taken over.
    pub(crate) fn lock_numbers(&self) -> MutexGuard<'_, NumberBook> {
        self.numbers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The call ledger (take it before the number book when both are needed).
    pub(crate) fn lock_ledger(&self) -> MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn drift_settings(&self) -> DriftSettings<'_> {
        DriftSettings {
            models: &self.config.drift,
            seed: self.config.seed,
            deadline_ms: self.config.deadline_ms,
            calls_from: self.config.calls_from,
        }
    }

    /// Whether `number` was assigned at `at` in the carrier's view.
    pub(crate) fn assigned_at(&self, number: &str, at: UnixMillis) -> bool {
        self.lock_numbers().assigned_at(number, at)
    }

    /// Takes validated legs from the certification hook. The `DUR-COMPLETE` profile loses the
    /// first leg of the `skip_page_index`-th batch (0 is the first), so that call is never
    /// reported.
    pub(crate) fn ingest_legs(&self, legs: &[CallLeg]) {
        let batch = self.leg_batches.fetch_add(1, Ordering::Relaxed);
        let lose_first = self.config.misbehaviour.profile == Profile::DurComplete
            && batch == self.config.misbehaviour.skip_page_index;
        let drift = self.drift_settings();
        let mut ledger = self.lock_ledger();
        let assigned = |n: &str, at: UnixMillis| self.assigned_at(n, at);
        for leg in legs.iter().skip(usize::from(lose_first)) {
            ledger.ingest_leg(leg, &drift, &assigned);
        }
    }

    fn truth_settings(&self) -> TruthSettings<'_> {
        TruthSettings {
            seed: self.config.seed,
            profile: self.config.misbehaviour.profile,
            tolerance_ms: self.config.tolerance_ms,
            deadline_ms: self.config.deadline_ms,
            drift: &self.config.drift,
        }
    }

    /// Retires the calls settled `retire_after_ms` before `now` or earlier from the ledger
    /// (see [`Ledger::retire`]), and forgets the number changes no call can ask about any
    /// more: those before both that time and the connect time of every leg still held
    /// ([`NumberBook::forget_history_before`]). A call that comes more than `retire_after_ms`
    /// after its connect time is judged on the changes kept. Returns how many calls retired.
    pub(crate) fn retire_settled(&self, now: UnixMillis) -> usize {
        let settings = self.truth_settings();
        let before = now.saturating_sub(self.config.retire_after_ms);
        let mut ledger = self.lock_ledger();
        let retired = ledger.retire(before, |call| call_truth(call, &settings));
        let horizon = ledger
            .earliest_leg_connect()
            .map_or(before, |c| c.min(before));
        // The ledger stays locked meanwhile (it is taken before the book), so that no leg
        // comes in between finding the horizon and forgetting before it.
        self.lock_numbers().forget_history_before(horizon);
        retired
    }

    /// Hands `f` the ledger's [`Ledger::is_final`], with the ledger locked meanwhile.
    pub(crate) fn with_finality<R>(&self, f: impl FnOnce(&dyn Fn(&str) -> bool) -> R) -> R {
        let ledger = self.lock_ledger();
        f(&|call_id| ledger.is_final(call_id))
    }

    /// Closes the calls `call_ids` (see [`Ledger::close`]): each one's ground truth, in order.
    pub(crate) fn close_calls<'a>(
        &self,
        call_ids: impl IntoIterator<Item = &'a str>,
    ) -> Vec<Option<CallTruth>> {
        let settings = self.truth_settings();
        let mut ledger = self.lock_ledger();
        call_ids
            .into_iter()
            .map(|id| ledger.close(id, |call| call_truth(call, &settings)))
            .collect()
    }

    /// How many calls the ledger holds.
    pub(crate) fn ledger_len(&self) -> usize {
        self.lock_ledger().len()
    }

    pub(crate) fn ground_truth(&self) -> GroundTruth {
        ground_truth(&self.lock_ledger(), &self.truth_settings())
    }

    /// Hands `f` the ground truth of every call, one at a time in call-id order, with the
    /// ledger locked meanwhile.
    pub(crate) fn with_call_truths<R>(
        &self,
        f: impl FnOnce(&mut dyn Iterator<Item = CallTruth>) -> R,
    ) -> R {
        let ledger = self.lock_ledger();
        let settings = self.truth_settings();
        f(&mut call_truths(&ledger, &settings))
    }
}
