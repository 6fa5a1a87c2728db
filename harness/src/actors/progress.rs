//! Progress of a run for the person watching: a subscriber of the clock that shows how much
//! simulated time has passed.

use actix::{Actor, Context, Handler};
use oc_protocol::UnixMillis;

use super::messages::TickStarted;
use crate::run::RunError;
use crate::run::report::Progress;

/// Shows a run's progress.
pub struct ProgressActor {
    progress: Progress,
    start: UnixMillis,
}

impl ProgressActor {
    /// Progress of a run from `start`.
    pub(crate) fn new(progress: Progress, start: UnixMillis) -> Self {
        Self { progress, start }
    }
}

impl Actor for ProgressActor {
    type Context = Context<Self>;

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.progress.finish();
    }
}

impl Handler<TickStarted> for ProgressActor {
    type Result = Result<(), RunError>;

    fn handle(&mut self, msg: TickStarted, _: &mut Context<Self>) -> Self::Result {
        self.progress.tick(msg.0.to - self.start);
        Ok(())
    }
}
