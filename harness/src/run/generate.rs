//! The traffic of a run or a certification, tick by tick: the admins' changes applied to Teams
//! at their times, then the calls placed on what is assigned, recorded in Teams (whose store the
//! checker reads them from at the end). `run` and `certify` play the same ticks, so that a seed generates the same changes
//! and calls, relative to the start, in both.

use actix::Addr;
use mock_teams::NumberChange;
use oc_protocol::{NumberEvent, UnixMillis};

use super::{RunError, Sides, store_error};
use crate::actors::admin::AdminActor;
use crate::actors::messages::{
    AssignmentChanged, CallsDuring, CallsRinging, ChangesDuring, ClosingUnassignments,
    EventsGenerated, InitialAssignments, PlacedCalls, Tick,
};
use crate::actors::traffic::TrafficActor;

/// What a tick generated, shown before Teams has it.
pub(crate) struct Generated<'a> {
    /// The admins' changes, each with its time, in time order.
    pub(crate) changes: &'a [(UnixMillis, NumberChange)],
    /// The calls and their corrections.
    pub(crate) placed: &'a PlacedCalls,
}

/// Applies the admins' assignments at `start`, before the first tick; `observe` sees them.
pub(crate) async fn play_start(
    sides: &Sides,
    admin: &Addr<AdminActor>,
    traffic: &Addr<TrafficActor>,
    start: UnixMillis,
    observe: impl FnOnce(&[(UnixMillis, NumberChange)]),
) -> Result<(), RunError> {
    let initial: Vec<(UnixMillis, NumberChange)> = admin
        .send(InitialAssignments)
        .await?
        .into_iter()
        .map(|change| (start, change))
        .collect();
    observe(&initial);
    tell_traffic(traffic, &initial);
    apply(sides, &initial)
}

/// What the admins and the traffic decided for a tick, not yet in Teams.
pub(crate) struct Decided {
    /// The tick.
    pub(crate) tick: Tick,
    /// The admins' changes, each with its time, in time order.
    pub(crate) changes: Vec<(UnixMillis, NumberChange)>,
    /// The calls and their corrections.
    pub(crate) placed: PlacedCalls,
}

/// Decides a tick: asks the admins for their changes (the traffic hears of them first: its
/// mailbox keeps the order they were sent in), then the traffic for the calls placed on what
/// is assigned. Nothing reaches Teams: the admins and the traffic know what they decided, and
/// nothing they decide depends on what Teams or the carrier do, so a tick can be decided while
/// the carrier still polls the one before ([`TickAhead`](crate::actors::messages::TickAhead)).
pub(crate) async fn decide_tick(
    admin: &Addr<AdminActor>,
    traffic: &Addr<TrafficActor>,
    tick: Tick,
) -> Result<Decided, RunError> {
    let changes = admin.send(ChangesDuring(tick)).await?;
    tell_traffic(traffic, &changes);
    let placed = traffic.send(CallsDuring(tick)).await?;
    admin.do_send(ringing(&placed));
    Ok(Decided {
        tick,
        changes,
        placed,
    })
}

/// Plays a decided tick into Teams: the admins' changes at their times, each call recorded
/// before the clock passes its start ([`apply_with_calls`]), and Teams' clock to the tick's
/// end; `observe` sees what was generated first. Returns when the tick's last record becomes
/// available.
pub(crate) fn apply_tick(
    sides: &Sides,
    decided: Decided,
    observe: impl FnOnce(Generated<'_>),
) -> Result<UnixMillis, RunError> {
    observe(Generated {
        changes: &decided.changes,
        placed: &decided.placed,
    });
    let last_record = apply_with_calls(sides, &decided.changes, decided.placed)?;
    sides
        .teams
        .advance_to(decided.tick.to)
        .map_err(store_error("the clock"))?;
    Ok(last_record)
}

/// Applies a tick's changes at their times and records its calls in between, each call (and its
/// correction) before the clock passes its start: so every record is scheduled before the
/// clock reaches its availability and becomes available at its own time, whatever other
/// numbers' changes moved the clock to. (Recorded after the changes, a call that ended before
/// the tick's last change would become available then instead, and a shard, which has other
/// changes, would differ from the whole run.) Returns when the last record becomes available.
fn apply_with_calls(
    sides: &Sides,
    changes: &[(UnixMillis, NumberChange)],
    placed: PlacedCalls,
) -> Result<UnixMillis, RunError> {
    let mut last = i64::MIN;
    for call in &placed.calls {
        last = last.max(call.end + i64::from(call.availability_delay_ms));
    }
    for (_, _, _, available) in &placed.corrections {
        last = last.max(*available);
    }
    let mut calls = placed.calls.into_iter().peekable();
    let mut corrections = placed.corrections.into_iter().peekable();
    let mut record_before = |until: Option<UnixMillis>| -> Result<(), RunError> {
        sides.teams.with_store(|s| -> Result<(), RunError> {
            while let Some(call) = calls.next_if(|c| until.is_none_or(|u| c.start < u)) {
                let call_id = call.call_id.clone();
                s.add_call(call).map_err(store_error("a call"))?;
                if let Some((_, connect, end, available)) = corrections.next_if(|c| c.0 == call_id)
                {
                    s.correct_call(&call_id, connect, end, available)
                        .map_err(store_error("a correction"))?;
                }
            }
            Ok(())
        })
    };
    let mut from = 0;
    while from < changes.len() {
        let at = changes[from].0;
        let to = from + changes[from..].iter().take_while(|(t, _)| *t == at).count();
        record_before(Some(at))?;
        apply(sides, &changes[from..to])?;
        from = to;
    }
    record_before(None)?;
    Ok(last)
}

/// Applies the admins' closing unassignments at `at`, after the last tick (a certification's
/// closing changes, so that convergence after an unassignment is always probed).
pub(crate) async fn play_closing(
    sides: &Sides,
    admin: &Addr<AdminActor>,
    traffic: &Addr<TrafficActor>,
    at: UnixMillis,
    count: u32,
) -> Result<(), RunError> {
    if count == 0 {
        return Ok(());
    }
    let changes = admin.send(ClosingUnassignments { at, count }).await?;
    tell_traffic(traffic, &changes);
    apply(sides, &changes)
}

/// Tells the traffic which numbers the admins' changes assign and unassign, and when. The
/// admins only decide possible changes, so Teams applies every one of them ([`apply`] logs a
/// refusal as the harness bug it would be).
fn tell_traffic(traffic: &Addr<TrafficActor>, changes: &[(UnixMillis, NumberChange)]) {
    for (at, change) in changes {
        let (telephone_number, assigned) = match change {
            NumberChange::Assign {
                telephone_number, ..
            } => (telephone_number, true),
            NumberChange::Unassign { telephone_number } => (telephone_number, false),
            NumberChange::Update { .. } => continue,
        };
        traffic.do_send(AssignmentChanged {
            telephone_number: telephone_number.clone(),
            at: *at,
            assigned,
        });
    }
}

/// Applies admin changes at their times, telling the checker.
fn apply(sides: &Sides, changes: &[(UnixMillis, NumberChange)]) -> Result<(), RunError> {
    let mut events: Vec<NumberEvent> = Vec::new();
    let mut batch: Vec<NumberChange> = Vec::new();
    let mut batch_at = None;
    let mut flush =
        |at: Option<UnixMillis>, batch: &mut Vec<NumberChange>| -> Result<(), RunError> {
            let Some(at) = at else { return Ok(()) };
            if batch.is_empty() {
                return Ok(());
            }
            sides
                .teams
                .advance_to(at)
                .map_err(store_error("the clock"))?;
            for result in sides.teams.apply_changes(std::mem::take(batch)) {
                // The admins only ask for possible changes, so a refusal is a harness bug worth
                // seeing, not a reason to stop the run.
                match result {
                    Ok(event) => events.push(event),
                    Err(err) => tracing::error!(%err, "Teams refused an admin change"),
                }
            }
            Ok(())
        };
    // Changes at the same instant go out together, as one notification per carrier.
    for (at, change) in changes {
        if batch_at != Some(*at) {
            flush(batch_at, &mut batch)?;
            batch_at = Some(*at);
        }
        batch.push(change.clone());
    }
    flush(batch_at, &mut batch)?;
    if !events.is_empty() {
        sides.checker.do_send(EventsGenerated(events));
    }
    Ok(())
}

/// The connect time of every answered call placed, for the admins (see [`CallsRinging`]).
fn ringing(placed: &PlacedCalls) -> CallsRinging {
    CallsRinging(
        placed
            .calls
            .iter()
            .filter_map(|c| c.connect.map(|at| (c.telephone_number.clone(), at)))
            .collect(),
    )
}
