//! The messages between the actors of a run, each named for what happened or what is asked.

use std::sync::Arc;

use actix::Message;
use mock_teams::{NewCall, NumberChange};
use oc_observe::Exchange;
use oc_protocol::{NumberEvent, UnixMillis};

use crate::checker::history::{LegFact, PollCycle};
use crate::run::RunError;

/// A slice of simulated time began: each subscriber of the clock does its part of it and
/// answers, and the clock starts the next one only when all have (a conservative barrier: no
/// actor runs ahead of another, so what is generated does not depend on thread timing).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "Result<(), RunError>")]
pub struct TickStarted(pub Tick);

/// The next slice of simulated time, told ahead while the clock's later subscribers still do
/// their part of the current one: its receiver may decide what it will do then, but must not
/// let anyone see it before the tick's [`TickStarted`].
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "Result<(), RunError>")]
pub struct TickAhead(pub Tick);

/// Asks the clock to play its ticks to its subscribers, in order, to the end of the run;
/// answers with the end.
#[derive(Message)]
#[rtype(result = "Result<UnixMillis, RunError>")]
pub struct RunTicks;

/// Teams played a tick: what the admins changed and the calls placed (a certification makes
/// its legs from them; tests watch them).
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct TickPlayed {
    /// The tick.
    pub tick: Tick,
    /// The admins' changes, each with its time, in time order.
    pub changes: Vec<(UnixMillis, NumberChange)>,
    /// The calls and their corrections.
    pub placed: PlacedCalls,
}

/// Asks Teams' player to apply the admins' initial assignments at the start, before the first
/// tick; answers with them.
#[derive(Message)]
#[rtype(result = "Result<Vec<(UnixMillis, NumberChange)>, RunError>")]
pub struct PlayStart(pub UnixMillis);

/// Asks Teams' player to apply the admins' closing unassignments of `count` numbers at `at`,
/// the end of the traffic (a certification's closing changes).
#[derive(Message)]
#[rtype(result = "Result<(), RunError>")]
pub struct PlayClosing {
    /// When.
    pub at: UnixMillis,
    /// How many numbers.
    pub count: u32,
}

/// Asks Teams' player when the last record of what it played becomes available.
#[derive(Message)]
#[rtype(result = "UnixMillis")]
pub struct RecordsUntil;

/// A slice of simulated time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tick {
    /// Start (exclusive for changes, inclusive for calls).
    pub from: UnixMillis,
    /// End.
    pub to: UnixMillis,
}

/// Asks the admins which numbers are assigned when the run starts.
#[derive(Message)]
#[rtype(result = "Vec<NumberChange>")]
pub struct InitialAssignments;

/// Asks the admins for their changes during a tick, each with its time, in time order.
#[derive(Message)]
#[rtype(result = "Vec<(UnixMillis, NumberChange)>")]
pub struct ChangesDuring(pub Tick);

/// Asks the admins to unassign `count` of their assigned numbers at `at`, the end of the
/// traffic (a certification's closing changes), each with its time.
#[derive(Message)]
#[rtype(result = "Vec<(UnixMillis, NumberChange)>")]
pub struct ClosingUnassignments {
    /// When: the end of the traffic.
    pub at: UnixMillis,
    /// How many numbers.
    pub count: u32,
}

/// Answered calls placed on numbers, each with its connect time: the admins do not unassign a
/// number while a call on it is still ringing, so that every answered call's number is the
/// carrier's when it is answered (legs are judged at their connect time, PROTOCOL.md 2.3).
#[derive(Message)]
#[rtype(result = "()")]
pub struct CallsRinging(pub Vec<(String, UnixMillis)>);

/// A number became assigned or unassigned at a time (Teams applied the change).
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct AssignmentChanged {
    /// The number.
    pub telephone_number: String,
    /// When.
    pub at: UnixMillis,
    /// Assigned from then on, or not.
    pub assigned: bool,
}

/// Asks the traffic for the calls that start during a tick.
#[derive(Message)]
#[rtype(result = "PlacedCalls")]
pub struct CallsDuring(pub Tick);

/// A later version of a call's record: `(callId, connect, end, available)`.
pub type Correction = (String, Option<UnixMillis>, UnixMillis, UnixMillis);

/// Calls placed during a tick, and the corrections Teams will make to some of them.
#[derive(Debug, Default, Clone)]
pub struct PlacedCalls {
    /// The calls, in start order.
    pub calls: Vec<NewCall>,
    /// The corrections, one per corrected call.
    pub corrections: Vec<Correction>,
}

/// An exchange the Teams side observed.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ExchangeObserved(pub Exchange);

/// Exchanges the Teams side observed and number events it generated, gathered into one
/// message in the order they happened (exchanges not necessarily in `seq` order: the checker
/// orders them).
#[derive(Message)]
#[rtype(result = "()")]
pub struct ExchangesObserved(pub Vec<Gathered>);

/// One item of [`ExchangesObserved`]: what [`ExchangeObserved`] or [`EventsGenerated`] carry.
#[expect(
    clippy::large_enum_variant,
    reason = "nearly every item is an exchange: boxing them would add an allocation each"
)]
pub enum Gathered {
    /// An exchange.
    Exchange(Exchange),
    /// Number events, shared with Teams' webhook sender (a load's: copying each for the
    /// checker was the largest part of Teams' store change on the generator's thread).
    Events(Vec<Arc<NumberEvent>>),
}

/// Number events Teams generated.
#[derive(Message)]
#[rtype(result = "()")]
pub struct EventsGenerated(pub Vec<NumberEvent>);

/// Asks a certification's legs to post those due at a time.
#[derive(Message)]
#[rtype(result = "()")]
pub struct PostDueLegs(pub UnixMillis);

/// Asks a certification's legs how many are made and not yet posted.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct PendingLegs;

/// A certification's legs are done with: why posts failed, one line each.
#[derive(Message)]
#[rtype(result = "Vec<String>")]
pub struct FinishLegs;

/// Every leg a certification made, posted or not (tests).
#[cfg(test)]
#[derive(Message)]
#[rtype(result = "Vec<LegFact>")]
pub struct MadeLegs;

/// Certification legs about to be posted to the carrier.
#[derive(Message)]
#[rtype(result = "()")]
pub struct LegsPosted(pub Vec<LegFact>);

/// Teams closed these calls (`Store::close_settled`): each is judged now, as the end of a run
/// judges a call, and is gone from Teams' store by the end. In a run, the mock carrier closed
/// them too, and the second field holds the ground truth of each, in the same order; a load
/// test has none.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CallsClosed(
    pub Vec<mock_teams::ClosedCall>,
    pub Option<Vec<Option<oc_observe::CallTruth>>>,
);

/// Asks the checker to keep, from now on, the rules that found failures so far in the slot it
/// answers with (a load test's progress reads it).
#[derive(Message)]
#[rtype(result = "VerdictSoFar")]
pub struct WatchVerdict;

/// The rules that found failures so far, in catalogue order, as the checker last saw them.
pub type VerdictSoFar = std::sync::Arc<std::sync::Mutex<Vec<oc_protocol::RuleId>>>;

/// A poll cycle of the carrier ended.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CycleEnded(pub PollCycle);

/// The run is over: the checker hands over what it observed (once; `None` after).
#[derive(Message)]
#[rtype(result = "Option<Box<crate::actors::checker::Observed>>")]
pub struct Handover;
