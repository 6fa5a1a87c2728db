//! The Teams side's state, in memory: carriers, tenants, the number inventory and its
//! assignments, calls with their CDR and quality records, the change feeds, the carriers'
//! duration reports, and a simulated clock that the caller advances.
//!
//! Designed for millions of calls: a call is a compact row (`calls::CallRow`), its id lives
//! in one arena, its reconciliation state in a 16-byte slot; records are rendered only when
//! served.

pub(crate) mod by_id;
pub(crate) mod calls;
pub(crate) mod close;
pub(crate) mod feed;
pub(crate) mod graph;
pub(crate) mod numbers;
pub(crate) mod recon;
pub(crate) mod reports;
pub(crate) mod serve;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};

use oc_protocol::ids::uuid_from_bits;
use oc_protocol::seed::derive;
use oc_protocol::validate::{is_call_id, is_e164, is_uuid};
use oc_protocol::{NumberEvent, NumberEventType, UnixMillis};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub use by_id::{CallView, TeamsCall};
pub use calls::{NewCall, StreamQuality};
pub use close::{ClosedCall, ClosedCalls};
pub use numbers::Assignment;
pub use reports::{ReportOutcome, ReportedCall};

use calls::{CallIds, CallRow, Window};
use close::{ClosedBooks, Served};
use feed::{Feed, FeedEntry};
use numbers::NumberRow;
use reports::{IdempotencyEntry, ReconSlot, Unmatched};

/// How the store reconciles and how long it keeps records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreSettings {
    /// Seeds the ids the store makes (event ids, record ids).
    pub seed: u64,
    /// The largest difference that still counts as `matched` (default 1000 ms).
    pub tolerance_ms: i64,
    /// Durations reported later than this after the call's end are `late` (default 24 h).
    pub reporting_deadline_ms: i64,
    /// Feeds start this long before now (default 90 days).
    pub retention_ms: i64,
    /// Each number's sequence before its first change (default 0: the first event is 1). A
    /// certification starts above every earlier run's sequences, so that a carrier that keeps
    /// its state between runs rightly applies the new run's events [NUM-ORDER].
    pub sequence_base: u64,
    /// Records become available in bursts, every this many ms since the store's start; 0
    /// publishes each as soon as it is due (`FaultSettings::publish_every_ms`).
    pub publish_every_ms: i64,
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            seed: 0,
            tolerance_ms: oc_protocol::reconciliation::DEFAULT_TOLERANCE_MS,
            reporting_deadline_ms: 24 * oc_protocol::timestamp::HOUR_MS,
            retention_ms: oc_protocol::cdr::RETENTION_DAYS * oc_protocol::timestamp::DAY_MS,
            sequence_base: 0,
            publish_every_ms: 0,
        }
    }
}

/// A carrier as Teams knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarrierSpec {
    /// A short name, unique in the store (e.g. `contoso`).
    pub id: String,
    /// The bearer token it calls the Teams API with; unique.
    pub token: String,
    /// Where its number-assignment webhooks go, with the shared secret.
    pub webhook: Option<WebhookTarget>,
}

/// A carrier's webhook endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookTarget {
    /// The full URL of `POST /oc/v1/notifications/number-assignments`.
    pub url: String,
    /// The HMAC secret of `OC-Signature`.
    pub secret: String,
}

/// Why the store refused an operation; nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// No carrier with that id.
    #[error("no carrier {0:?}")]
    UnknownCarrier(String),
    /// A carrier id or token used twice.
    #[error("carrier {0:?} or its token is already registered")]
    DuplicateCarrier(String),
    /// The number is not in any carrier's inventory.
    #[error("{0} is in no carrier's inventory")]
    UnknownNumber(String),
    /// The number is already in an inventory.
    #[error("{0} is already in an inventory")]
    DuplicateNumber(String),
    /// The call id was already used by this carrier.
    #[error("call {0:?} was already added")]
    DuplicateCall(String),
    /// The call id is unknown.
    #[error("no call {0:?}")]
    UnknownCall(String),
    /// The simulated clock only moves forward.
    #[error("the clock cannot go back from {now} to {to}")]
    ClockBackwards {
        /// The current simulated time.
        now: String,
        /// The time asked for.
        to: String,
    },
    /// A value that breaks the protocol or the store's limits.
    #[error("invalid {what}: {why}")]
    Invalid {
        /// What was invalid.
        what: &'static str,
        /// Why.
        why: String,
    },
}

fn invalid(what: &'static str, why: impl Into<String>) -> StoreError {
    StoreError::Invalid {
        what,
        why: why.into(),
    }
}

pub(crate) struct CarrierRow {
    pub(crate) spec: CarrierSpec,
    /// The carrier's numbers, sorted, for `GET /numbers`.
    pub(crate) numbers: BTreeMap<String, u32>,
    pub(crate) cdr_feed: Feed,
    pub(crate) quality_feed: Feed,
    /// Reports whose call id matches no call of this carrier (yet).
    pub(crate) unmatched: BTreeMap<String, Unmatched>,
    pub(crate) idempotency: HashMap<String, IdempotencyEntry>,
    /// How far the carrier has read each feed: what may be closed.
    pub(crate) served: Served,
    /// The books of the carrier's closed calls, folded.
    pub(crate) closed: ClosedBooks,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Publication {
    Call(u32),
    Correction { call: u32, index: u32 },
}

/// A correction waiting for its availability time.
#[derive(Debug, Clone, Copy)]
struct PendingCorrection {
    connect: Option<UnixMillis>,
    end: UnixMillis,
}

/// The Teams side's state. Not `Sync` by itself: the server shares it behind a mutex.
pub struct Store {
    pub(crate) settings: StoreSettings,
    pub(crate) now: UnixMillis,
    /// When the store started: bursts of publication are counted from here.
    origin: UnixMillis,
    pub(crate) carriers: Vec<CarrierRow>,
    by_token: HashMap<String, u16>,
    pub(crate) tenants: Vec<String>,
    by_tenant: HashMap<String, u32>,
    pub(crate) numbers: Vec<NumberRow>,
    by_number: HashMap<String, u32>,
    pub(crate) call_ids: CallIds,
    pub(crate) rows: Window<CallRow>,
    pub(crate) slots: Window<ReconSlot>,
    /// Rows as they were before each correction, for serving older feed entries.
    pub(crate) old_versions: BTreeMap<u32, Vec<CallRow>>,
    pub(crate) quality: Window<(u32, StreamQuality)>,
    pending: BinaryHeap<Reverse<(UnixMillis, u64, Publication)>>,
    /// Calls closed and not yet taken by [`Store::take_closed`].
    pub(crate) closed_calls: ClosedCalls,
    corrections: Vec<PendingCorrection>,
    publish_order: u64,
    ids: ChaCha8Rng,
    /// No call starting before this will be added ([`Store::forget_assignments_before`]).
    history_horizon: UnixMillis,
}

impl Store {
    /// An empty store whose clock reads `now`.
    pub fn new(settings: StoreSettings, now: UnixMillis) -> Self {
        let ids = ChaCha8Rng::seed_from_u64(derive(settings.seed, &[b"teams/ids"]));
        Self {
            settings,
            now,
            origin: now,
            carriers: Vec::new(),
            by_token: HashMap::new(),
            tenants: Vec::new(),
            by_tenant: HashMap::new(),
            numbers: Vec::new(),
            by_number: HashMap::new(),
            call_ids: CallIds::default(),
            rows: Window::default(),
            slots: Window::default(),
            old_versions: BTreeMap::new(),
            quality: Window::default(),
            pending: BinaryHeap::new(),
            closed_calls: ClosedCalls::default(),
            corrections: Vec::new(),
            publish_order: 0,
            ids,
            history_horizon: UnixMillis::MIN,
        }
    }

    /// Promises that no call starting before `t` will be added: each number then keeps only
    /// the assignment changes a later call may still be checked against (the last before `t`,
    /// and those after), so a long run's churn does not pile up. A call starting earlier is
    /// refused. The horizon only moves forward.
    pub fn forget_assignments_before(&mut self, t: UnixMillis) {
        self.history_horizon = self.history_horizon.max(t);
    }

    /// The settings the store was made with.
    pub fn settings(&self) -> &StoreSettings {
        &self.settings
    }

    /// The simulated time.
    pub fn now(&self) -> UnixMillis {
        self.now
    }

    /// Registers a carrier.
    pub fn add_carrier(&mut self, spec: CarrierSpec) -> Result<(), StoreError> {
        if spec.id.is_empty() || spec.token.is_empty() {
            return Err(invalid("carrier", "id and token must not be empty"));
        }
        if self.carrier_index(&spec.id).is_some() || self.by_token.contains_key(&spec.token) {
            return Err(StoreError::DuplicateCarrier(spec.id));
        }
        let index = u16::try_from(self.carriers.len())
            .map_err(|_| invalid("carrier", "at most 65536 carriers"))?;
        self.by_token.insert(spec.token.clone(), index);
        self.carriers.push(CarrierRow {
            spec,
            numbers: BTreeMap::new(),
            cdr_feed: Feed::default(),
            quality_feed: Feed::default(),
            unmatched: BTreeMap::new(),
            idempotency: HashMap::new(),
            served: Served::default(),
            closed: ClosedBooks::default(),
        });
        Ok(())
    }

    /// The carriers, in registration order.
    pub fn carriers(&self) -> impl Iterator<Item = &CarrierSpec> {
        self.carriers.iter().map(|c| &c.spec)
    }

    pub(crate) fn carrier_index(&self, id: &str) -> Option<u16> {
        self.carriers
            .iter()
            .position(|c| c.spec.id == id)
            .and_then(|i| u16::try_from(i).ok())
    }

    /// The carrier a bearer token belongs to.
    pub(crate) fn authenticate(&self, token: &str) -> Option<u16> {
        self.by_token.get(token).copied()
    }

    fn tenant_index(&mut self, tenant_id: &str) -> Result<u32, StoreError> {
        if let Some(&i) = self.by_tenant.get(tenant_id) {
            return Ok(i);
        }
        if !is_uuid(tenant_id) {
            return Err(invalid(
                "tenantId",
                format!("{tenant_id:?} is not a lower-case UUID"),
            ));
        }
        let i = u32::try_from(self.tenants.len()).map_err(|_| invalid("tenant", "too many"))?;
        self.tenants.push(tenant_id.to_owned());
        self.by_tenant.insert(tenant_id.to_owned(), i);
        Ok(i)
    }

    /// Puts a number into a carrier's inventory for a tenant, unassigned.
    pub fn add_number(
        &mut self,
        carrier_id: &str,
        tenant_id: &str,
        telephone_number: &str,
    ) -> Result<(), StoreError> {
        let carrier = self
            .carrier_index(carrier_id)
            .ok_or_else(|| StoreError::UnknownCarrier(carrier_id.to_owned()))?;
        if !is_e164(telephone_number) {
            return Err(invalid(
                "telephoneNumber",
                format!("{telephone_number:?} is not E.164"),
            ));
        }
        if self.by_number.contains_key(telephone_number) {
            return Err(StoreError::DuplicateNumber(telephone_number.to_owned()));
        }
        let tenant = self.tenant_index(tenant_id)?;
        let index = u32::try_from(self.numbers.len()).map_err(|_| invalid("number", "too many"))?;
        let mut row = NumberRow::new(telephone_number.to_owned(), carrier, tenant, self.now);
        row.sequence = self.settings.sequence_base;
        self.numbers.push(row);
        self.by_number.insert(telephone_number.to_owned(), index);
        self.carriers[usize::from(carrier)]
            .numbers
            .insert(telephone_number.to_owned(), index);
        Ok(())
    }

    /// Assigns a number at the current simulated time; returns the event to deliver.
    pub fn assign(
        &mut self,
        telephone_number: &str,
        assignment: Assignment,
    ) -> Result<(String, NumberEvent), StoreError> {
        self.change(
            telephone_number,
            NumberEventType::Assigned,
            Some(assignment),
        )
    }

    /// Changes an assigned number's SIP URI, usage or assignee.
    pub fn update(
        &mut self,
        telephone_number: &str,
        assignment: Assignment,
    ) -> Result<(String, NumberEvent), StoreError> {
        self.change(telephone_number, NumberEventType::Updated, Some(assignment))
    }

    /// Removes a number's assignment.
    pub fn unassign(
        &mut self,
        telephone_number: &str,
    ) -> Result<(String, NumberEvent), StoreError> {
        self.change(telephone_number, NumberEventType::Unassigned, None)
    }

    /// Applies a change and returns the carrier id with the event for its webhook.
    fn change(
        &mut self,
        telephone_number: &str,
        kind: NumberEventType,
        assignment: Option<Assignment>,
    ) -> Result<(String, NumberEvent), StoreError> {
        let index = *self
            .by_number
            .get(telephone_number)
            .ok_or_else(|| StoreError::UnknownNumber(telephone_number.to_owned()))?;
        let row = &self.numbers[index as usize];
        let change = row
            .plan(kind, assignment, self.now)
            .map_err(|why| invalid("number change", why))?;
        let tenant_id = self.tenants[row.tenant as usize].clone();
        let carrier_id = self.carriers[usize::from(row.carrier)].spec.id.clone();
        let event = change.to_event(
            &row.telephone_number,
            uuid_from_bits(self.ids.random()),
            tenant_id,
        );
        // An assignment that breaks the protocol (a SIP URI naming another number, an assignee
        // type that does not go with the usage) is refused before anything changes. The rest
        // of the event is the store's own making, each part valid: not checked again.
        event
            .validate_change()
            .map_err(|errors| invalid("number change", errors.to_string()))?;
        self.numbers[index as usize].commit(change, self.history_horizon);
        Ok((carrier_id, event))
    }

    /// Teams' state of one number, as `GET /numbers` shows it.
    pub fn number(&self, telephone_number: &str) -> Option<oc_protocol::TeamsNumber> {
        let row = &self.numbers[*self.by_number.get(telephone_number)? as usize];
        Some(row.to_wire(&self.tenants[row.tenant as usize]))
    }

    /// Adds a call; its records enter the feeds at `end + availability_delay_ms`.
    pub fn add_call(&mut self, call: NewCall) -> Result<(), StoreError> {
        if !is_call_id(&call.call_id) {
            return Err(invalid("callId", "must be 1 to 128 characters"));
        }
        let number = *self
            .by_number
            .get(&call.telephone_number)
            .ok_or_else(|| StoreError::UnknownNumber(call.telephone_number.clone()))?;
        let number_row = &self.numbers[number as usize];
        if call.start < self.history_horizon {
            return Err(invalid(
                "call",
                format!(
                    "it starts at {}, before {}: Teams was told no call would start that early, \
                     and no longer knows who had {} then",
                    oc_protocol::format_timestamp(call.start),
                    oc_protocol::format_timestamp(self.history_horizon),
                    call.telephone_number
                ),
            ));
        }
        if !number_row.assigned_at(call.start) {
            return Err(invalid(
                "call",
                format!(
                    "{} was not assigned when the call started",
                    call.telephone_number
                ),
            ));
        }
        let other = calls::e164_to_int(&call.other_number)
            .filter(|_| is_e164(&call.other_number))
            .ok_or_else(|| {
                invalid(
                    "otherNumber",
                    format!("{:?} is not E.164", call.other_number),
                )
            })?;
        match (call.connect, call.final_sip_code) {
            (Some(_), 200) => {}
            (None, 300..=699) => {}
            _ => {
                return Err(invalid(
                    "finalSipCode",
                    "must be 200 on an answered call and 300 to 699 otherwise",
                ));
            }
        }
        if call.connect.is_some_and(|c| c < call.start) || call.end < call.start {
            return Err(invalid("call", "connect and end must not be before start"));
        }
        if self.call_ids.find(&call.call_id).is_some() {
            return Err(StoreError::DuplicateCall(call.call_id));
        }
        let carrier = number_row.carrier;
        let mut row = CallRow {
            start: call.start,
            other,
            tenant: number_row.tenant,
            number,
            connect_offset: 0,
            end_offset: 0,
            availability_delay: call.availability_delay_ms,
            carrier,
            final_sip_code: call.final_sip_code,
            version: 1,
            direction: call.direction,
        };
        row.set_times(call.connect, call.end)
            .map_err(|why| invalid("call", why))?;
        let index = self.call_ids.push(&call.call_id);
        self.rows.push(row);
        let mut slot = ReconSlot::default();
        // A report that came before the call (accepted provisionally) now finds it.
        if let Some(early) = self.carriers[usize::from(carrier)]
            .unmatched
            .remove(&call.call_id)
        {
            slot = early.into_slot(row.end() + self.settings.reporting_deadline_ms);
        }
        self.slots.push(slot);
        if let Some(streams) = call.quality.filter(|_| call.connect.is_some()) {
            for stream in streams {
                self.quality.push((index, stream));
            }
        }
        self.schedule(row.available_at(), Publication::Call(index));
        self.publish_due();
        Ok(())
    }

    /// Schedules a correction of a call's times, published as the next version at `available`
    /// (which must be after the call's first availability).
    pub fn correct_call(
        &mut self,
        call_id: &str,
        connect: Option<UnixMillis>,
        end: UnixMillis,
        available: UnixMillis,
    ) -> Result<(), StoreError> {
        let index = self
            .call_ids
            .find(call_id)
            .ok_or_else(|| StoreError::UnknownCall(call_id.to_owned()))?;
        let row = self.rows[index as usize];
        if available <= row.available_at() {
            return Err(invalid(
                "correction",
                "must become available after the record itself",
            ));
        }
        if connect.is_some() != row.is_answered() {
            return Err(invalid(
                "correction",
                "cannot change whether the call was answered",
            ));
        }
        let mut check = row;
        check
            .set_times(connect, end)
            .map_err(|why| invalid("correction", why))?;
        let correction =
            u32::try_from(self.corrections.len()).map_err(|_| invalid("correction", "too many"))?;
        self.corrections.push(PendingCorrection { connect, end });
        self.schedule(
            available,
            Publication::Correction {
                call: index,
                index: correction,
            },
        );
        self.publish_due();
        Ok(())
    }

    fn schedule(&mut self, at: UnixMillis, what: Publication) {
        let every = self.settings.publish_every_ms;
        let at = if every > 0 {
            // The next burst at or after `at`, counted from the start, so that bursts fall at
            // the same times relative to the start whenever a run starts.
            let since = at.saturating_sub(self.origin).max(0);
            let bursts = since / every + i64::from(since % every != 0);
            self.origin.saturating_add(bursts.saturating_mul(every))
        } else {
            at
        };
        self.publish_order += 1;
        self.pending.push(Reverse((at, self.publish_order, what)));
    }

    /// When the record at `position` of a carrier's `feed` (`cdr` or `quality`) became
    /// available, if the feed has it.
    pub fn feed_available(
        &self,
        carrier_id: &str,
        feed: &str,
        position: u64,
    ) -> Option<UnixMillis> {
        let carrier = &self.carriers[usize::from(self.carrier_id_index(carrier_id).ok()?)];
        let feed = match feed {
            "cdr" => &carrier.cdr_feed,
            "quality" => &carrier.quality_feed,
            _ => return None,
        };
        feed.get(position).map(|e| e.available)
    }

    /// Moves the simulated clock to `to`, publishing every record that became available.
    pub fn advance_to(&mut self, to: UnixMillis) -> Result<(), StoreError> {
        if to < self.now {
            return Err(StoreError::ClockBackwards {
                now: oc_protocol::format_timestamp(self.now),
                to: oc_protocol::format_timestamp(to),
            });
        }
        self.now = to;
        self.publish_due();
        Ok(())
    }

    /// The time of the next scheduled publication, if any.
    pub fn next_publication(&self) -> Option<UnixMillis> {
        self.pending.peek().map(|Reverse((at, _, _))| *at)
    }

    fn publish_due(&mut self) {
        while let Some(&Reverse((at, _, what))) = self.pending.peek() {
            if at > self.now {
                break;
            }
            self.pending.pop();
            // A record scheduled before the last published one becomes available now, so that
            // feed order and availability time agree.
            match what {
                Publication::Call(call) => self.publish_call(call, at),
                Publication::Correction { call, index } => {
                    let c = self.corrections[index as usize];
                    let row = &mut self.rows[call as usize];
                    let old = *row;
                    if row.set_times(c.connect, c.end).is_ok() {
                        row.version = row.version.saturating_add(1);
                        self.old_versions.entry(call).or_default().push(old);
                        self.publish_cdr(call, at);
                    }
                }
            }
        }
    }

    fn publish_call(&mut self, call: u32, at: UnixMillis) {
        let available = self.publish_cdr(call, at);
        let carrier = usize::from(self.rows[call as usize].carrier);
        let start = self.quality.partition_point(|(c, _)| *c < call);
        for (offset, (c, _)) in self.quality.iter_from(start).enumerate() {
            if *c != call {
                break;
            }
            let item = u32::try_from(start + offset).unwrap_or(u32::MAX);
            self.carriers[carrier].quality_feed.push(FeedEntry {
                item,
                version: 1,
                available,
            });
        }
    }

    fn publish_cdr(&mut self, call: u32, at: UnixMillis) -> UnixMillis {
        let row = self.rows[call as usize];
        let feed = &mut self.carriers[usize::from(row.carrier)].cdr_feed;
        let last = feed.last().map_or(i64::MIN, |e| e.available);
        let available = at.max(last);
        feed.push(FeedEntry {
            item: call,
            version: row.version,
            available,
        });
        available
    }

    /// Makes room for about `calls` more calls of `carrier_id` (their rows, ids, quality
    /// streams and feed entries) at once, as far as the allocator grants it. A store that
    /// grows by doubling copies each table into one twice its size and holds both for a
    /// moment: the peak of a long run. Room reserved and never used costs address space, not
    /// memory; room the allocator refuses is simply not reserved (the tables then grow as
    /// they go).
    pub fn reserve_calls(&mut self, carrier_id: &str, calls: usize) -> Result<(), StoreError> {
        let carrier = usize::from(self.carrier_id_index(carrier_id)?);
        // Two quality streams per answered call; a correction publishes a record again.
        let (streams, records) = (calls.saturating_mul(2), calls.saturating_add(calls / 4));
        self.rows.try_reserve(calls);
        self.slots.try_reserve(calls);
        self.quality.try_reserve(streams);
        self.call_ids.reserve(calls, 16);
        let c = &mut self.carriers[carrier];
        c.cdr_feed.reserve(records);
        c.quality_feed.reserve(streams);
        Ok(())
    }

    /// Heap bytes held by the call rows, ids, slots and feeds: the memory that grows with calls.
    pub fn call_heap_bytes(&self) -> usize {
        self.call_ids.heap_bytes()
            + self.rows.capacity() * std::mem::size_of::<CallRow>()
            + self.slots.capacity() * std::mem::size_of::<ReconSlot>()
            + self.quality.capacity() * std::mem::size_of::<(u32, StreamQuality)>()
            + self
                .carriers
                .iter()
                .map(|c| c.cdr_feed.heap_bytes() + c.quality_feed.heap_bytes())
                .sum::<usize>()
    }

    /// Bytes per call of the reconciliation index: the id lookup and the reconciliation slot.
    pub fn reconciliation_index_bytes_per_call(&self) -> f64 {
        if self.rows.live() == 0 {
            return 0.0;
        }
        let bytes =
            self.call_ids.heap_bytes() + self.slots.capacity() * std::mem::size_of::<ReconSlot>();
        bytes as f64 / self.rows.live() as f64
    }

    /// Takes a carrier's duration report as `POST /call-durations` does (for tools and
    /// benchmarks that skip HTTP).
    pub fn report(
        &mut self,
        carrier_id: &str,
        idempotency_key: &str,
        body: &[u8],
    ) -> Result<ReportOutcome, StoreError> {
        let carrier = self.carrier_id_index(carrier_id)?;
        Ok(self.report_durations(carrier, idempotency_key, body))
    }

    /// A carrier's reconciliation over calls started in `[from, to)`, as it stands.
    pub fn reconcile(
        &self,
        carrier_id: &str,
        from: UnixMillis,
        to: UnixMillis,
    ) -> Result<oc_protocol::ReconciliationSummary, StoreError> {
        Ok(self.reconciliation(self.carrier_id_index(carrier_id)?, from, to))
    }

    pub(crate) fn carrier_id_index(&self, carrier_id: &str) -> Result<u16, StoreError> {
        self.carrier_index(carrier_id)
            .ok_or_else(|| StoreError::UnknownCarrier(carrier_id.to_owned()))
    }

    /// How many calls the store was given, closed ones included.
    pub fn call_count(&self) -> usize {
        self.call_ids.len()
    }

    /// How many calls the store holds: those given, less those closed.
    pub fn live_calls(&self) -> usize {
        self.rows.live()
    }
}

/// What the store's tests share: a store with carrier `c` and one number.
#[cfg(test)]
pub(crate) mod testing {
    use oc_protocol::{Assignee, AssigneeType, NumberUsage, UnixMillis};

    use super::{Assignment, CarrierSpec, Store, StoreSettings};

    /// A store at `now` with carrier `c` (token `t`, no webhook) and `number`, unassigned.
    pub(crate) fn one_number(settings: StoreSettings, now: UnixMillis, number: &str) -> Store {
        let mut store = Store::new(settings, now);
        store
            .add_carrier(CarrierSpec {
                id: "c".into(),
                token: "t".into(),
                webhook: None,
            })
            .unwrap();
        store
            .add_number("c", "c0ffee00-0000-4000-8000-000000000001", number)
            .unwrap();
        store
    }

    /// An assignment to a user, through `sip_uri`.
    pub(crate) fn to_user(sip_uri: &str) -> Assignment {
        Assignment {
            sip_uri: sip_uri.into(),
            usage: NumberUsage::CallingUserAssignment,
            assignee: Assignee {
                id: "a1b2c3d4-0000-4000-8000-000000000001".into(),
                kind: AssigneeType::User,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use oc_protocol::{AssigneeType, Validate};

    use super::testing::{one_number, to_user};
    use super::*;

    const N: &str = "+14255550100";

    /// An assignment that breaks the protocol is refused, with the field and why, and changes
    /// nothing: the number stays unassigned at sequence 0, and a valid one is then sequence 1.
    #[test]
    fn an_assignment_that_breaks_the_protocol_is_refused_before_anything_changes() {
        let mut store = one_number(StoreSettings::default(), 1_000, N);
        let mut bridge = to_user("sip:+14255550100@sbc.example;user=phone");
        bridge.assignee.kind = AssigneeType::ConferenceBridge;
        let cases = [
            (
                to_user("sip:+14255550199@sbc.example;user=phone"),
                "/sipUri must name the telephone number +14255550100",
            ),
            (bridge, "/assignee/type must be user for usage"),
        ];
        for (refused, why) in cases {
            let err = store.assign(N, refused).unwrap_err().to_string();
            assert!(err.contains(why), "{err}");
            let number = store.number(N).unwrap();
            assert_eq!((number.sequence, number.sip_uri), (0, None));
        }
        let (_, event) = store
            .assign(N, to_user("sip:+14255550100@sbc.example;user=phone"))
            .unwrap();
        assert_eq!(event.sequence, 1);
        assert_eq!(event.validate(), Ok(()));
    }

    /// Past the horizon, a call is still checked against the assignment in force when it
    /// started; one starting before the horizon is refused, saying why.
    #[test]
    fn calls_before_the_history_horizon_are_refused() {
        let mut store = one_number(StoreSettings::default(), 1_000, N);
        store
            .assign(N, to_user("sip:+14255550100@sbc.example;user=phone"))
            .unwrap();
        store.forget_assignments_before(5_000);
        store.forget_assignments_before(2_000);
        let call = |id: &str, start: UnixMillis| NewCall {
            call_id: id.into(),
            telephone_number: N.into(),
            direction: oc_protocol::Direction::Outbound,
            other_number: "+442079460000".into(),
            start,
            connect: None,
            end: start + 1_000,
            final_sip_code: 486,
            availability_delay_ms: 0,
            quality: None,
        };
        store.add_call(call("after", 5_000)).unwrap();
        let err = store
            .add_call(call("before", 4_999))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no call would start that early"),
            "the horizon only moves forward: {err}"
        );
    }
}
