//! The carrier's clock in a run: each tick, the mock carrier runs one poll cycle at the tick's
//! end (feeds, reports), marked for the checker; then the calls final on both sides close
//! (see `close_calls`). A certified carrier polls on its own clock instead, and has no such
//! actor.

use std::sync::Arc;

use actix::{Actor, Context, Handler, ResponseFuture};
use mock_carrier::MockCarrier;

use super::messages::{CallsClosed, TickStarted};
use crate::run::{RunError, Sides, poll};

/// Runs the mock carrier's poll cycles, and closes the calls they finished.
pub struct CarrierActor {
    sides: Sides,
    carrier: Arc<MockCarrier>,
    /// Whether calls close as they become final (see `close_calls`).
    close: bool,
}

impl CarrierActor {
    /// The poller of `carrier`, against Teams in `sides`; with `close`, closing the calls
    /// final on both sides after each cycle.
    pub(crate) fn new(sides: Sides, carrier: Arc<MockCarrier>, close: bool) -> Self {
        Self {
            sides,
            carrier,
            close,
        }
    }
}

/// Closes every call that is final on both sides, oldest first: on Teams' side settled (its
/// report in, or its deadline past, and every record of it read: `Store::close_settled`), on
/// the carrier's nothing of it due, held back or unanswered. Both sides drop it, and the
/// checker judges it now with its ground truth, so that a run holds its open calls, not
/// every call it placed. Called between two poll cycles, when neither side moves: what closes
/// is decided by simulated time alone.
pub(crate) async fn close_calls(sides: &Sides, carrier: &MockCarrier) {
    let closed = carrier.with_finality(|is_final| {
        sides.teams.with_store(|s| {
            s.close_settled_where(0, is_final);
            s.take_closed()
        })
    });
    if closed.is_empty() {
        return;
    }
    let truths = carrier.close_calls(closed.iter().map(|c| c.call_id.as_str()));
    // In the checker's mailbox before the next tick sends it anything, so it judges them in
    // the same order whatever the threads do; judged while the next tick runs. A full mailbox
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
        Box::pin(async move {
            poll(&sides, &carrier, msg.0.to).await;
            if close {
                close_calls(&sides, &carrier).await;
            }
            Ok(())
        })
    }
}
