//! The clock: owns simulated time, pushes each tick to its subscribers in order, and starts the
//! next one only when every subscriber answered (a conservative barrier), so that no actor runs
//! ahead and what a seed generates never depends on thread timing. One subscriber may be told
//! each tick ahead ([`ClockActor::with_lookahead`]): it prepares the next tick while the
//! others still do their part of the current one, which puts both cores to work without
//! letting anyone see the next tick early.

use std::time::Duration;

use actix::{Actor, Context, Handler, Recipient, ResponseFuture};
use oc_protocol::UnixMillis;

use super::messages::{RunTicks, Tick, TickAhead, TickStarted};

/// How simulated time relates to the wall clock.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// As fast as the subscribers go.
    Virtual,
    /// Each tick lasts its length divided by `speed` on the wall clock, after the subscribers
    /// answered.
    Realtime {
        /// Simulated time per wall-clock time.
        speed: f64,
    },
    /// Simulated time is the wall clock: a tick starts when the wall clock reaches its end, so
    /// that what it generates is in the past, never ahead of a carrier's clock.
    WallClock,
}

/// Simulated time of a run.
pub struct ClockActor {
    start: UnixMillis,
    end: UnixMillis,
    tick_ms: i64,
    pace: Pace,
    /// Told of each tick, in this order.
    subscribers: Vec<Recipient<TickStarted>>,
    /// Told of each tick ahead: the first before the first tick, each next one as soon as the
    /// first subscriber answered the tick before.
    lookahead: Option<Recipient<TickAhead>>,
}

impl ClockActor {
    /// A clock at `start` that runs `length_ms` in ticks of `tick_ms` at `pace`, to
    /// `subscribers` in this order.
    pub fn new(
        start: UnixMillis,
        length_ms: i64,
        tick_ms: i64,
        pace: Pace,
        subscribers: Vec<Recipient<TickStarted>>,
    ) -> Self {
        Self {
            start,
            end: start + length_ms,
            tick_ms: tick_ms.max(1),
            pace,
            subscribers,
            lookahead: None,
        }
    }

    /// Tells `to` each tick ahead: the first before the first tick starts, then each next
    /// tick as soon as the first subscriber answered the current one, while the later
    /// subscribers do their part of it. The clock starts the next tick only when `to` also
    /// answered. `to` is meant to be the first subscriber (Teams' player deciding the next
    /// tick's changes and calls while the carrier polls the current one).
    pub fn with_lookahead(mut self, to: Recipient<TickAhead>) -> Self {
        self.lookahead = Some(to);
        self
    }

    /// Every tick, in order: `(from, to]` slices of `tick_ms` covering the length once.
    fn ticks(&self) -> impl Iterator<Item = Tick> + use<> {
        let (end, tick_ms) = (self.end, self.tick_ms);
        let mut now = self.start;
        std::iter::from_fn(move || {
            (now < end).then(|| {
                let from = now;
                now = (from + tick_ms).min(end);
                Tick { from, to: now }
            })
        })
    }
}

impl Actor for ClockActor {
    type Context = Context<Self>;
}

impl Handler<RunTicks> for ClockActor {
    type Result = ResponseFuture<Result<UnixMillis, crate::run::RunError>>;

    fn handle(&mut self, _: RunTicks, _: &mut Context<Self>) -> Self::Result {
        let mut ticks = self.ticks().peekable();
        let subscribers = self.subscribers.clone();
        let lookahead = self.lookahead.clone();
        let (start, pace) = (self.start, self.pace);
        Box::pin(async move {
            let tell_ahead = |next: Option<Tick>| {
                let lookahead = lookahead.clone();
                async move {
                    match (lookahead, next) {
                        (Some(to), Some(tick)) => to.send(TickAhead(tick)).await?,
                        _ => Ok(()),
                    }
                }
            };
            tell_ahead(ticks.peek().copied()).await?;
            let mut end = start;
            while let Some(tick) = ticks.next() {
                if pace == Pace::WallClock {
                    sleep_until_wall(tick.to).await;
                }
                let (first, later) = match subscribers.split_first() {
                    Some((first, later)) => (Some(first), later),
                    None => (None, &[][..]),
                };
                if let Some(first) = first {
                    first.send(TickStarted(tick)).await??;
                }
                let later = async {
                    for subscriber in later {
                        subscriber.send(TickStarted(tick)).await??;
                    }
                    Ok::<(), crate::run::RunError>(())
                };
                let (later, ahead) = futures_util::join!(later, tell_ahead(ticks.peek().copied()));
                later?;
                ahead?;
                if let Pace::Realtime { speed } = pace {
                    let wall = (tick.to - tick.from) as f64 / speed.max(f64::MIN_POSITIVE);
                    tokio::time::sleep(Duration::from_millis(wall as u64)).await;
                }
                end = tick.to;
            }
            Ok(end)
        })
    }
}

/// Waits until the wall clock reaches `at`.
async fn sleep_until_wall(at: UnixMillis) {
    let wait = at - crate::run::recorded::wall_ms();
    if wait > 0 {
        tokio::time::sleep(Duration::from_millis(u64::try_from(wait).unwrap_or(0))).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Who was told of which tick, in order.
    type Log = Arc<Mutex<Vec<(&'static str, i64, i64)>>>;

    /// Records the ticks it is told of, as `name`, into a shared log.
    struct Listener {
        name: &'static str,
        log: Log,
    }

    impl Actor for Listener {
        type Context = Context<Self>;
    }

    impl Handler<TickStarted> for Listener {
        type Result = ResponseFuture<Result<(), crate::run::RunError>>;

        fn handle(&mut self, msg: TickStarted, _: &mut Context<Self>) -> Self::Result {
            let (name, log) = (self.name, self.log.clone());
            Box::pin(async move {
                // An answer that takes a while: the clock must still wait for it.
                tokio::task::yield_now().await;
                log.lock().unwrap().push((name, msg.0.from, msg.0.to));
                Ok(())
            })
        }
    }

    impl Handler<TickAhead> for Listener {
        type Result = ResponseFuture<Result<(), crate::run::RunError>>;

        fn handle(&mut self, msg: TickAhead, _: &mut Context<Self>) -> Self::Result {
            let log = self.log.clone();
            Box::pin(async move {
                log.lock().unwrap().push(("ahead", msg.0.from, msg.0.to));
                Ok(())
            })
        }
    }

    fn listener(name: &'static str, log: &Log) -> actix::Addr<Listener> {
        Listener {
            name,
            log: log.clone(),
        }
        .start()
    }

    #[actix_rt::test]
    async fn a_tick_is_told_ahead_only_after_the_first_subscriber_answered_the_one_before() {
        let log = Log::default();
        let (first, second) = (listener("first", &log), listener("second", &log));
        let clock = ClockActor::new(
            0,
            20,
            10,
            Pace::Virtual,
            vec![first.clone().recipient(), second.recipient()],
        )
        .with_lookahead(first.recipient())
        .start();
        assert_eq!(clock.send(RunTicks).await.unwrap().unwrap(), 20);
        let log = log.lock().unwrap().clone();
        // Ahead of the first tick; then each tick's first answer before the next is told
        // ahead (the second subscriber's part of a tick and the next tick ahead may come in
        // either order); nothing is told ahead after the last tick.
        assert_eq!(log[0], ("ahead", 0, 10));
        assert_eq!(log[1], ("first", 0, 10));
        let mut middle = log[2..4].to_vec();
        middle.sort_unstable();
        assert_eq!(middle, [("ahead", 10, 20), ("second", 0, 10)]);
        assert_eq!(log[4..], [("first", 10, 20), ("second", 10, 20)]);
    }

    #[actix_rt::test]
    async fn ticks_cover_the_length_once_each_to_every_subscriber_in_order() {
        let log = Log::default();
        let (first, second) = (listener("first", &log), listener("second", &log));
        let clock = ClockActor::new(
            1_000,
            25,
            10,
            Pace::Virtual,
            vec![first.recipient(), second.recipient()],
        )
        .start();
        assert_eq!(clock.send(RunTicks).await.unwrap().unwrap(), 1_025);
        assert_eq!(
            *log.lock().unwrap(),
            [
                ("first", 1_000, 1_010),
                ("second", 1_000, 1_010),
                ("first", 1_010, 1_020),
                ("second", 1_010, 1_020),
                ("first", 1_020, 1_025),
                ("second", 1_020, 1_025),
            ]
        );
    }
}
