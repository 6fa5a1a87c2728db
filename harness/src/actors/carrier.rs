//! The carrier's clock in a run: each tick, the mock carrier runs one poll cycle at the tick's
//! end (feeds, reports), marked for the checker. A certified carrier polls on its own clock
//! instead, and has no such actor.

use std::sync::Arc;

use actix::{Actor, Context, Handler, ResponseFuture};
use mock_carrier::MockCarrier;

use super::messages::TickStarted;
use crate::run::{RunError, Sides, poll};

/// Runs the mock carrier's poll cycles.
pub struct CarrierActor {
    sides: Sides,
    carrier: Arc<MockCarrier>,
}

impl CarrierActor {
    /// The poller of `carrier`, against Teams in `sides`.
    pub(crate) fn new(sides: Sides, carrier: Arc<MockCarrier>) -> Self {
        Self { sides, carrier }
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
        let (sides, carrier) = (self.sides.clone(), self.carrier.clone());
        Box::pin(async move {
            poll(&sides, &carrier, msg.0.to).await;
            Ok(())
        })
    }
}
