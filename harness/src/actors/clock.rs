//! The clock: owns simulated time and hands it out tick by tick until the run's length is over.

use actix::{Actor, Context, Handler};
use oc_protocol::UnixMillis;

use super::messages::{NextTick, Tick};

/// Simulated time of a run.
pub struct ClockActor {
    now: UnixMillis,
    end: UnixMillis,
    tick_ms: i64,
}

impl ClockActor {
    /// A clock at `start` that runs `length_ms` in ticks of `tick_ms`.
    pub fn new(start: UnixMillis, length_ms: i64, tick_ms: i64) -> Self {
        Self {
            now: start,
            end: start + length_ms,
            tick_ms: tick_ms.max(1),
        }
    }
}

impl Actor for ClockActor {
    type Context = Context<Self>;
}

impl Handler<NextTick> for ClockActor {
    type Result = Option<Tick>;

    fn handle(&mut self, _: NextTick, _: &mut Context<Self>) -> Option<Tick> {
        if self.now >= self.end {
            return None;
        }
        let from = self.now;
        self.now = (from + self.tick_ms).min(self.end);
        Some(Tick { from, to: self.now })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_rt::test]
    async fn ticks_cover_the_length_exactly_once() {
        let clock = ClockActor::new(1_000, 25, 10).start();
        let mut ticks = Vec::new();
        while let Some(t) = clock.send(NextTick).await.unwrap() {
            ticks.push((t.from, t.to));
        }
        assert_eq!(ticks, [(1_000, 1_010), (1_010, 1_020), (1_020, 1_025)]);
    }
}
