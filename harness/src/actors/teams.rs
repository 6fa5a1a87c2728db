//! Teams' player: each tick, asks the admins for their changes and applies them to Teams
//! (telling the traffic and the checker), asks the traffic for the calls placed on what is
//! assigned and records them in Teams, then tells its watchers what it played. It owns when the
//! last record of what it played becomes available.

use actix::{
    Actor, ActorFutureExt, Addr, AtomicResponse, Context, Handler, MessageResult, Recipient,
    WrapFuture,
};
use mock_teams::NumberChange;
use oc_protocol::UnixMillis;

use super::admin::AdminActor;
use super::messages::{PlayClosing, PlayStart, RecordsUntil, TickPlayed, TickStarted};
use super::traffic::TrafficActor;
use crate::run::generate::{play_closing, play_start, play_tick};
use crate::run::{RunError, Sides};

/// Plays the Teams side of a run or a certification.
pub struct TeamsActor {
    sides: Sides,
    admin: Addr<AdminActor>,
    traffic: Addr<TrafficActor>,
    /// Told what each tick generated, in this order.
    watchers: Vec<Recipient<TickPlayed>>,
    records_until: UnixMillis,
}

impl TeamsActor {
    /// Teams' player over `sides`, asking `admin` and `traffic`, telling `watchers` what each
    /// tick generated.
    pub(crate) fn new(
        sides: Sides,
        admin: Addr<AdminActor>,
        traffic: Addr<TrafficActor>,
        watchers: Vec<Recipient<TickPlayed>>,
    ) -> Self {
        Self {
            sides,
            admin,
            traffic,
            watchers,
            records_until: UnixMillis::MIN,
        }
    }
}

impl Actor for TeamsActor {
    type Context = Context<Self>;
}

impl Handler<PlayStart> for TeamsActor {
    type Result = AtomicResponse<Self, Result<Vec<(UnixMillis, NumberChange)>, RunError>>;

    fn handle(&mut self, msg: PlayStart, _: &mut Context<Self>) -> Self::Result {
        let (sides, admin, traffic) =
            (self.sides.clone(), self.admin.clone(), self.traffic.clone());
        let start = msg.0;
        AtomicResponse::new(Box::pin(
            async move {
                let mut initial = Vec::new();
                play_start(&sides, &admin, &traffic, start, |changes| {
                    initial = changes.to_vec();
                })
                .await
                .map(|()| initial)
            }
            .into_actor(self)
            .map(move |result, act, _| {
                act.records_until = act.records_until.max(start);
                result
            }),
        ))
    }
}

impl Handler<TickStarted> for TeamsActor {
    type Result = AtomicResponse<Self, Result<(), RunError>>;

    fn handle(&mut self, msg: TickStarted, _: &mut Context<Self>) -> Self::Result {
        let (sides, admin, traffic) =
            (self.sides.clone(), self.admin.clone(), self.traffic.clone());
        let watchers = self.watchers.clone();
        let tick = msg.0;
        AtomicResponse::new(Box::pin(
            async move {
                play_tick(&sides, &admin, &traffic, tick, |generated| {
                    if watchers.is_empty() {
                        return;
                    }
                    let played = TickPlayed {
                        tick,
                        changes: generated.changes.to_vec(),
                        placed: generated.placed.clone(),
                    };
                    for watcher in &watchers {
                        watcher.do_send(played.clone());
                    }
                })
                .await
            }
            .into_actor(self)
            .map(|result, act, _| {
                let last_record = result?;
                act.records_until = act.records_until.max(last_record);
                Ok(())
            }),
        ))
    }
}

impl Handler<PlayClosing> for TeamsActor {
    type Result = AtomicResponse<Self, Result<(), RunError>>;

    fn handle(&mut self, msg: PlayClosing, _: &mut Context<Self>) -> Self::Result {
        let (sides, admin, traffic) =
            (self.sides.clone(), self.admin.clone(), self.traffic.clone());
        AtomicResponse::new(Box::pin(
            async move { play_closing(&sides, &admin, &traffic, msg.at, msg.count).await }
                .into_actor(self),
        ))
    }
}

impl Handler<RecordsUntil> for TeamsActor {
    type Result = MessageResult<RecordsUntil>;

    fn handle(&mut self, _: RecordsUntil, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.records_until)
    }
}
