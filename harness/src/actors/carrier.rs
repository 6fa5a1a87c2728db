//! The carrier's clock in a run: each tick, the mock carrier runs one poll cycle at the tick's
//! end (feeds, reports), marked for the checker; then the calls final on both sides close
//! (see `close_calls`). A certified carrier polls on its own clock instead, and has no such
//! actor.

use std::sync::Arc;

use actix::{Actor, Context, Handler, ResponseFuture};
use mock_carrier::MockCarrier;
use mock_teams::ClosedCalls;

use super::messages::{CallsClosed, TickStarted};
use crate::run::{RunError, Sides, poll};

/// Held from the start of a tick's part here to the end of its closing on the carrier's side,
/// which goes on after the tick was answered (see [`CarrierActor`]): the next tick's part, and
/// the end of the run, wait for it.
pub(crate) type Closing = Arc<tokio::sync::Mutex<()>>;

/// Runs the mock carrier's poll cycles, and closes the calls they finished.
///
/// A tick is answered once Teams closed its calls; the carrier closes them on its side and
/// hands them to the checker after that, on this actor's thread, while Teams' player applies
/// the next tick on its own: the two sides' shares of a tick's end run on both cores. The
/// carrier's part touches only those calls in its ledger, which nothing else reads or writes
/// meanwhile, so what it gives the checker depends on simulated time alone.
pub struct CarrierActor {
    sides: Sides,
    carrier: Arc<MockCarrier>,
    /// Whether calls close as they become final (see `close_calls`).
    close: bool,
    closing: Closing,
}

impl CarrierActor {
    /// The poller of `carrier`, against Teams in `sides`; with `close`, closing the calls
    /// final on both sides after each cycle, holding `closing` until they are closed.
    pub(crate) fn new(
        sides: Sides,
        carrier: Arc<MockCarrier>,
        close: bool,
        closing: Closing,
    ) -> Self {
        Self {
            sides,
            carrier,
            close,
            closing,
        }
    }
}

/// Closes every call that is final on both sides, oldest first: on Teams' side settled (its
/// report in, or its deadline past, and every record of it read: `Store::close_settled`), on
/// the carrier's nothing of it due, held back or unanswered. Both sides drop it, and the
/// checker judges it now with its ground truth, so that a run holds its open calls, not
/// every call it placed. Called between two poll cycles, when neither side moves: what closes
/// is decided by simulated time alone. This is Teams' share, done before the tick is
/// answered and kept short, as both sides are locked meanwhile (the calls come out in one
/// text); [`close_on_carrier`] is the rest.
pub(crate) fn close_calls(sides: &Sides, carrier: &MockCarrier) -> ClosedCalls {
    carrier.with_finality(|is_final| {
        sides.teams.with_store(|s| {
            s.close_settled_where(0, is_final);
            s.take_closed_calls()
        })
    })
}

/// The carrier's share of closing `closed` (see [`close_calls`]): drops them from its ledger
/// and hands them to the checker with their ground truth.
pub(crate) async fn close_on_carrier(sides: &Sides, carrier: &MockCarrier, closed: ClosedCalls) {
    let truths = carrier.close_calls(closed.call_ids());
    let closed = closed.into_calls();
    // In the checker's mailbox before the next poll cycle sends it anything, so it judges them
    // in the same order whatever the threads do (judging a closed call reads nothing of the
    // changes the next tick applies meanwhile); judged while the next tick runs. A full mailbox
    // is waited for (and the judging with it): a checker that falls behind slows the run rather
    // than queueing closed calls, and every exchange waits for room in the same mailbox.
    let message = CallsClosed(closed, Some(truths));
    let sent = match sides.checker.try_send(message) {
        Ok(()) => Ok(()),
        Err(actix::dev::SendError::Full(message)) => sides.checker.send(message).await,
        Err(actix::dev::SendError::Closed(_)) => Err(actix::MailboxError::Closed),
    };
    if let Err(err) = sent {
        tracing::error!(%err, "the checker stopped before it judged closed calls");
    }
}

impl Actor for CarrierActor {
    type Context = Context<Self>;
}

impl Handler<TickStarted> for CarrierActor {
    type Result = ResponseFuture<Result<(), RunError>>;

    /// Webhooks go on in the background, as Teams sends them: the cycle does not wait for
    /// acknowledgements, so notifications can overtake each other.
    fn handle(&mut self, msg: TickStarted, _: &mut Context<Self>) -> Self::Result {
        let (sides, carrier, close) = (self.sides.clone(), self.carrier.clone(), self.close);
        let closing = self.closing.clone();
        Box::pin(async move {
            // The tick before closed on the carrier's side.
            let held = closing.lock_owned().await;
            poll(&sides, &carrier, msg.0.to).await;
            if close {
                let closed = close_calls(&sides, &carrier);
                if !closed.is_empty() {
                    actix::spawn(async move {
                        close_on_carrier(&sides, &carrier, closed).await;
                        drop(held);
                    });
                }
            }
            Ok(())
        })
    }
}
