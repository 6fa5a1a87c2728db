//! Teams' player: each tick, asks the admins for their changes (telling the traffic) and the
//! traffic for the calls placed on what is assigned, then applies the changes to Teams (telling
//! the checker), records the calls in Teams and tells its watchers what it played. Told a tick
//! ahead ([`TickAhead`]), it decides the tick then and applies it only when the tick starts, so
//! that the admins and the traffic work while the carrier polls the tick before. It owns when
//! the last record of what it played becomes available.

use actix::{
    Actor, ActorFutureExt, Addr, AtomicResponse, Context, Handler, MessageResult, Recipient,
    WrapFuture,
};
use mock_teams::NumberChange;
use oc_protocol::UnixMillis;

use super::admin::AdminActor;
use super::messages::{PlayClosing, PlayStart, RecordsUntil, TickAhead, TickPlayed, TickStarted};
use super::traffic::TrafficActor;
use crate::run::generate::{Decided, apply_tick, decide_tick, play_closing, play_start};
use crate::run::{RunError, Sides};

/// Plays the Teams side of a run or a certification.
pub struct TeamsActor {
    sides: Sides,
    admin: Addr<AdminActor>,
    traffic: Addr<TrafficActor>,
    /// Told what each tick generated, in this order.
    watchers: Vec<Recipient<TickPlayed>>,
    records_until: UnixMillis,
    /// The tick decided ahead, not yet applied.
    ahead: Option<Decided>,
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
            ahead: None,
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

impl Handler<TickAhead> for TeamsActor {
    type Result = AtomicResponse<Self, Result<(), RunError>>;

    fn handle(&mut self, msg: TickAhead, _: &mut Context<Self>) -> Self::Result {
        let (admin, traffic) = (self.admin.clone(), self.traffic.clone());
        AtomicResponse::new(Box::pin(
            async move { decide_tick(&admin, &traffic, msg.0).await }
                .into_actor(self)
                .map(|decided, act, _| {
                    act.ahead = Some(decided?);
                    Ok(())
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
        let ahead = self.ahead.take().filter(|decided| decided.tick == tick);
        AtomicResponse::new(Box::pin(
            async move {
                let decided = match ahead {
                    Some(decided) => decided,
                    None => decide_tick(&admin, &traffic, tick).await?,
                };
                apply_tick(&sides, decided, |generated| {
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
