//! Calls as Teams recorded them, in compact rows: interned ids, times as integers, quality as
//! integers. Rendering to the wire types happens only when a record is served.

use std::collections::VecDeque;
use std::ops::{Index, IndexMut, Range};

use hashbrown::HashTable;

use oc_protocol::ids::UuidText;
use oc_protocol::timestamp::TimestampText;
use oc_protocol::{
    AudioCodec, CallDurationSource, CallRecord, Direction, QualityRecord, StreamDirection,
    UnixMillis, is_poor_stream,
};

/// A call to add to the store: what the traffic generator decided happened.
#[derive(Debug, Clone, PartialEq)]
pub struct NewCall {
    /// 1 to 128 characters, unique per carrier.
    pub call_id: String,
    /// The carrier's number that was used; it must be assigned when the call starts.
    pub telephone_number: String,
    /// From the Teams user's point of view.
    pub direction: Direction,
    /// The other party, E.164.
    pub other_number: String,
    /// Call set-up began.
    pub start: UnixMillis,
    /// Answered, or `None`.
    pub connect: Option<UnixMillis>,
    /// The call ended.
    pub end: UnixMillis,
    /// The final SIP code: 200 when answered, 300 to 699 otherwise.
    pub final_sip_code: u16,
    /// How long after `end` the record enters the feeds.
    pub availability_delay_ms: u32,
    /// Media quality of both directions, for answered calls.
    pub quality: Option<[StreamQuality; 2]>,
}

/// The quality of one media direction, in integers (rates in parts per million, degradation in
/// thousandths) so that it is compact and renders to exact decimals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamQuality {
    /// Which way the media flowed.
    pub direction: StreamDirection,
    /// The codec.
    pub codec: AudioCodec,
    /// Packets sent.
    pub packets: u32,
    /// Average jitter, ms.
    pub avg_jitter_ms: u16,
    /// Maximum jitter, ms.
    pub max_jitter_ms: u16,
    /// Average round trip, ms.
    pub avg_rtt_ms: u16,
    /// Maximum round trip, ms.
    pub max_rtt_ms: u16,
    /// Average packet loss rate, parts per million.
    pub avg_loss_ppm: u32,
    /// Maximum packet loss rate, parts per million.
    pub max_loss_ppm: u32,
    /// Average network MOS degradation, thousandths (0 to 5000).
    pub degradation_milli: u16,
    /// Average ratio of concealed samples, parts per million.
    pub concealed_ppm: u32,
}

impl StreamQuality {
    /// The CQD classification of this stream.
    pub fn is_poor(&self) -> bool {
        is_poor_stream(
            u64::from(self.packets),
            u64::from(self.avg_rtt_ms),
            ppm(self.avg_loss_ppm),
            u64::from(self.avg_jitter_ms),
        )
    }
}

fn ppm(value: u32) -> f64 {
    f64::from(value) / 1_000_000.0
}

/// Marks an unanswered call in [`CallRow::connect_offset`].
const NOT_ANSWERED: u32 = u32::MAX;

/// One call, compactly. Times are offsets from `start` in ms.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CallRow {
    pub(crate) start: i64,
    /// The other party's E.164 digits as an integer (the first digit is never 0).
    pub(crate) other: u64,
    pub(crate) tenant: u32,
    pub(crate) number: u32,
    pub(crate) connect_offset: u32,
    pub(crate) end_offset: u32,
    pub(crate) availability_delay: u32,
    pub(crate) carrier: u16,
    pub(crate) final_sip_code: u16,
    pub(crate) version: u16,
    pub(crate) direction: Direction,
}

impl CallRow {
    pub(crate) fn connect(&self) -> Option<i64> {
        (self.connect_offset != NOT_ANSWERED).then(|| self.start + i64::from(self.connect_offset))
    }

    pub(crate) fn end(&self) -> i64 {
        self.start + i64::from(self.end_offset)
    }

    pub(crate) fn is_answered(&self) -> bool {
        self.connect_offset != NOT_ANSWERED
    }

    /// Teams' duration: `end − connect`, 0 when not answered.
    pub(crate) fn duration_ms(&self) -> i64 {
        self.connect().map_or(0, |c| self.end() - c)
    }

    pub(crate) fn available_at(&self) -> i64 {
        self.end() + i64::from(self.availability_delay)
    }

    pub(crate) fn set_times(&mut self, connect: Option<i64>, end: i64) -> Result<(), &'static str> {
        let connect_offset = match connect {
            Some(c) => offset(self.start, c).ok_or("connect must be within 49 days after start")?,
            None => NOT_ANSWERED,
        };
        let end_offset = offset(self.start, end).ok_or("end must be within 49 days after start")?;
        if connect_offset != NOT_ANSWERED && end_offset < connect_offset {
            return Err("end must not be before connect");
        }
        self.connect_offset = connect_offset;
        self.end_offset = end_offset;
        Ok(())
    }
}

fn offset(start: i64, at: i64) -> Option<u32> {
    u32::try_from(at.checked_sub(start)?)
        .ok()
        .filter(|&o| o != NOT_ANSWERED)
}

/// Items numbered from 0 in the order they came, of which only the newest are kept: those
/// before `base` were closed (`Store::close_settled`) and are gone. Indexed by the item's number,
/// as a `Vec` would be, so that nothing else changes when the oldest leave.
#[derive(Debug)]
pub(crate) struct Window<T> {
    base: u32,
    items: VecDeque<T>,
}

impl<T> Default for Window<T> {
    fn default() -> Self {
        Self {
            base: 0,
            items: VecDeque::new(),
        }
    }
}

impl<T> Window<T> {
    /// Makes room for `items` more items, as far as the allocator grants it.
    pub(crate) fn try_reserve(&mut self, items: usize) {
        let _ = self.items.try_reserve_exact(items);
    }

    /// The number of the first item still kept.
    pub(crate) fn base(&self) -> u32 {
        self.base
    }

    /// The number the next item will get: every item ever pushed.
    pub(crate) fn end(&self) -> u32 {
        self.base + u32::try_from(self.items.len()).unwrap_or(u32::MAX)
    }

    /// The numbers of the items kept.
    pub(crate) fn range(&self) -> Range<u32> {
        self.base..self.end()
    }

    /// How many items are kept.
    pub(crate) fn live(&self) -> usize {
        self.items.len()
    }

    pub(crate) fn push(&mut self, item: T) {
        self.items.push_back(item);
    }

    pub(crate) fn get(&self, index: usize) -> Option<&T> {
        self.items.get(index.checked_sub(self.base as usize)?)
    }

    /// The number of the first kept item for which `pred` is false, the kept items being
    /// partitioned by it.
    pub(crate) fn partition_point(&self, pred: impl FnMut(&T) -> bool) -> usize {
        self.base as usize + self.items.partition_point(pred)
    }

    /// The kept items from number `from` on.
    pub(crate) fn iter_from(&self, from: usize) -> impl Iterator<Item = &T> {
        self.items
            .iter()
            .skip(from.saturating_sub(self.base as usize))
    }

    /// Drops the `n` oldest items kept.
    pub(crate) fn drop_front(&mut self, n: usize) {
        // Held before the drop: the most held since the last one (only pushes come between).
        let held = self.items.len();
        let n = n.min(held);
        self.items.drain(..n);
        self.base += u32::try_from(n).unwrap_or(u32::MAX);
        // Give memory back once the window holds well below what it held at its fullest since
        // the last drop; not measured after the drop, or a window that fills and empties each
        // tick (a run closing its calls) would give its room back and grow again every tick.
        if self.items.capacity() > 4 * held.max(1024) {
            self.items.shrink_to(2 * held);
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.items.capacity()
    }
}

impl<T> Index<usize> for Window<T> {
    type Output = T;

    fn index(&self, index: usize) -> &T {
        &self.items[index - self.base as usize]
    }
}

impl<T> IndexMut<usize> for Window<T> {
    fn index_mut(&mut self, index: usize) -> &mut T {
        &mut self.items[index - self.base as usize]
    }
}

/// Call ids in one arena, found by a 64-bit hash; the rare collision goes to an overflow map.
/// Numbered like a [`Window`]: the ids of closed calls leave the arena.
#[derive(Debug, Default)]
pub(crate) struct CallIds {
    arena: String,
    /// Where each kept id starts, counted from the first byte ever pushed.
    starts: Window<u64>,
    /// Bytes dropped from the arena's front.
    dropped_bytes: u64,
    /// Indices of the kept ids, found by the id's hash and compared in full (5 bytes an id:
    /// the hash is recomputed from the arena when the table grows).
    index: HashTable<u32>,
}

/// The id of `index` in an arena whose first `dropped` bytes were dropped.
fn id_at<'a>(arena: &'a str, starts: &Window<u64>, dropped: u64, index: u32) -> &'a str {
    let i = index as usize;
    let start = starts[i] - dropped;
    let end = starts
        .get(i + 1)
        .map_or(arena.len(), |&s| (s - dropped) as usize);
    &arena[start as usize..end]
}

/// The hash of a call id: a fast one, fixed (no random state), as every lookup and every
/// growth of the table hashes ids.
pub(crate) fn call_id_hash(call_id: &str) -> u64 {
    oc_protocol::hash::of_str(call_id)
}

impl CallIds {
    /// Makes room for `calls` more ids of about `id_bytes` bytes each, as far as the
    /// allocator grants it.
    pub(crate) fn reserve(&mut self, calls: usize, id_bytes: usize) {
        let _ = self.arena.try_reserve_exact(calls.saturating_mul(id_bytes));
        self.starts.try_reserve(calls);
        let Self {
            arena,
            starts,
            dropped_bytes,
            index,
        } = self;
        let _ = index.try_reserve(calls, |&i| {
            call_id_hash(id_at(arena, starts, *dropped_bytes, i))
        });
    }

    /// Every id ever pushed (the next index).
    pub(crate) fn len(&self) -> usize {
        self.starts.end() as usize
    }

    /// The indices of the ids kept.
    pub(crate) fn range(&self) -> Range<u32> {
        self.starts.range()
    }

    pub(crate) fn get(&self, index: u32) -> &str {
        id_at(&self.arena, &self.starts, self.dropped_bytes, index)
    }

    pub(crate) fn find(&self, call_id: &str) -> Option<u32> {
        self.index
            .find(call_id_hash(call_id), |&i| self.get(i) == call_id)
            .copied()
    }

    /// Adds a call id that [`CallIds::find`] does not know; returns its index.
    pub(crate) fn push(&mut self, call_id: &str) -> u32 {
        let index = self.starts.end();
        self.starts
            .push(self.dropped_bytes + self.arena.len() as u64);
        self.arena.push_str(call_id);
        let Self {
            arena,
            starts,
            dropped_bytes,
            index: table,
        } = self;
        table.insert_unique(call_id_hash(call_id), index, |&i| {
            call_id_hash(id_at(arena, starts, *dropped_bytes, i))
        });
        index
    }

    /// Forgets the ids before index `cut`: they are found no more.
    pub(crate) fn drop_before(&mut self, cut: u32) {
        let cut = cut.min(self.starts.end());
        if cut <= self.starts.base() {
            return;
        }
        for index in self.starts.base()..cut {
            let hash = call_id_hash(self.get(index));
            if let Ok(entry) = self.index.find_entry(hash, |&i| i == index) {
                entry.remove();
            }
        }
        let bytes = self
            .starts
            .get(cut as usize)
            .map_or(self.arena.len() as u64, |&s| s - self.dropped_bytes);
        // Held before the drop: the most held since the last one (see `Window::drop_front`).
        let held = self.arena.len();
        self.arena.drain(..bytes as usize);
        self.dropped_bytes += bytes;
        self.starts.drop_front((cut - self.starts.base()) as usize);
        if self.arena.capacity() > 4 * held.max(16 * 1024) {
            self.arena.shrink_to(2 * held);
        }
    }

    /// Heap bytes held, for the memory figures.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.arena.capacity() + self.starts.capacity() * 8 + self.index.capacity() * (4 + 1)
    }
}

/// Parses E.164 digits into an integer (see [`CallRow::other`]).
pub(crate) fn e164_to_int(number: &str) -> Option<u64> {
    number.strip_prefix('+')?.parse().ok()
}

/// Everything needed to render a call's records besides its row.
pub(crate) struct RenderContext<'a> {
    pub(crate) call_id: &'a str,
    pub(crate) tenant_id: &'a str,
    pub(crate) telephone_number: &'a str,
    pub(crate) record_id_seed: u64,
    pub(crate) call_index: u32,
    pub(crate) operator_source: bool,
}

/// The record id of a call: stable for the call across versions, derived from the store's seed
/// through the one seed derivation (FNV-1a, fixed forever), so that the same seed gives the same
/// ids on every machine and Rust release (std's `DefaultHasher` promises neither).
pub(crate) fn record_id(seed: u64, call_index: u32) -> UuidText {
    let index = call_index.to_le_bytes();
    let high = oc_protocol::seed::derive(seed, &[b"teams/record-id/high", &index]);
    let low = oc_protocol::seed::derive(seed, &[b"teams/record-id/low", &index]);
    UuidText::from_bits((u128::from(high) << 64) | u128::from(low))
}

/// The texts of a call record that are not in the store, formatted on the stack: a record
/// borrows them while it is written into a page, so rendering allocates nothing.
pub(crate) struct CdrTexts {
    id: UuidText,
    other: PlusDigits,
    start: TimestampText,
    connect: Option<TimestampText>,
    end: TimestampText,
    available: TimestampText,
}

/// `+` and an E.164 number's digits, from its integer.
struct PlusDigits {
    buf: [u8; 21],
    len: usize,
}

impl PlusDigits {
    fn new(digits: u64) -> Self {
        let mut buf = [b'+'; 21];
        let mut text = itoa::Buffer::new();
        let written = text.format(digits).as_bytes();
        buf[1..=written.len()].copy_from_slice(written);
        Self {
            buf,
            len: written.len() + 1,
        }
    }

    fn as_str(&self) -> &str {
        // `+` and ASCII digits.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

impl CdrTexts {
    /// The texts of `row`'s record (the row as it was at the version served), made available
    /// at `available`.
    pub(crate) fn of(row: &CallRow, ctx: &RenderContext<'_>, available: UnixMillis) -> Self {
        Self {
            id: record_id(ctx.record_id_seed, ctx.call_index),
            other: PlusDigits::new(row.other),
            start: TimestampText::new(row.start),
            connect: row.connect().map(TimestampText::new),
            end: TimestampText::new(row.end()),
            available: TimestampText::new(available),
        }
    }
}

/// Renders a call record at `version`, whose times are `row`'s (the caller passes the row as it
/// was at that version): the texts of the store are borrowed, the others from `texts`
/// ([`CdrTexts::of`] the same row).
pub(crate) fn render_call_record<'a>(
    row: &CallRow,
    ctx: &RenderContext<'a>,
    texts: &'a CdrTexts,
) -> CallRecord<&'a str> {
    let other = texts.other.as_str();
    let (caller, callee) = match row.direction {
        Direction::Outbound => (ctx.telephone_number, other),
        Direction::Inbound => (other, ctx.telephone_number),
    };
    CallRecord {
        id: texts.id.as_str(),
        version: u32::from(row.version),
        call_id: ctx.call_id,
        tenant_id: ctx.tenant_id,
        telephone_number: ctx.telephone_number,
        direction: row.direction,
        caller_number: caller,
        callee_number: callee,
        start_date_time: texts.start.as_str(),
        connect_date_time: texts.connect.as_ref().map(TimestampText::as_str),
        end_date_time: texts.end.as_str(),
        duration_ms: row.duration_ms(),
        final_sip_code: row.final_sip_code,
        call_duration_source: if ctx.operator_source {
            CallDurationSource::Operator
        } else {
            CallDurationSource::Microsoft
        },
        available_date_time: texts.available.as_str(),
    }
}

/// Renders one quality record, borrowing the call id and the time it became available (its
/// wire text); `poor` is computed from the very fields served [QUA-CLASS].
pub(crate) fn render_quality_record<'a>(
    quality: &StreamQuality,
    call_id: &'a str,
    available: &'a TimestampText,
) -> QualityRecord<&'a str> {
    let mut record = QualityRecord {
        call_id,
        stream_direction: quality.direction,
        audio_codec: quality.codec,
        packet_utilization: u64::from(quality.packets),
        average_jitter_ms: u64::from(quality.avg_jitter_ms),
        max_jitter_ms: u64::from(quality.max_jitter_ms),
        average_packet_loss_rate: ppm(quality.avg_loss_ppm),
        max_packet_loss_rate: ppm(quality.max_loss_ppm),
        average_round_trip_time_ms: u64::from(quality.avg_rtt_ms),
        max_round_trip_time_ms: u64::from(quality.max_rtt_ms),
        average_audio_degradation: f64::from(quality.degradation_milli) / 1000.0,
        average_ratio_of_concealed_samples: ppm(quality.concealed_ppm),
        poor: false,
        available_date_time: available.as_str(),
    };
    record.poor = record.classify();
    record
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_that_fills_and_empties_each_tick_keeps_its_room_and_gives_back_what_it_no_longer_fills()
     {
        let mut window = Window::<u64>::default();
        let fill = |window: &mut Window<u64>, n: u64| {
            for i in 0..n {
                window.push(i);
            }
        };
        // A busy tick: 10,000 pushed, then all but 500 dropped (closed).
        fill(&mut window, 10_000);
        window.drop_front(window.live() - 500);
        let room = window.items.capacity();
        assert!(room >= 10_000, "room for the tick kept: {room}");
        // The next busy ticks find it: no growth, no shrinking.
        for _ in 0..3 {
            fill(&mut window, 9_500);
            assert_eq!(window.items.capacity(), room);
            window.drop_front(window.live() - 500);
            assert_eq!(window.items.capacity(), room);
        }
        // Quiet ticks (a night): once a tick's fullest is a quarter of the room, it goes back.
        fill(&mut window, 1_500);
        window.drop_front(window.live() - 100);
        assert!(
            window.items.capacity() <= 4_096,
            "{}",
            window.items.capacity()
        );
        assert_eq!(window.range(), 39_900..40_000);
        assert_eq!(window.get(39_900), Some(&1_400));
    }

    #[test]
    fn call_ids_round_trip_and_survive_collisions() {
        let mut ids = CallIds::default();
        let a = ids.push("call-a");
        let b = ids.push("call-é");
        assert_eq!(ids.get(a), "call-a");
        assert_eq!(ids.get(b), "call-é");
        assert_eq!(ids.find("call-é"), Some(b));
        assert_eq!(ids.find("call-c"), None);
        // Force a collision: another id filed under "call-x"'s hash is compared in full.
        let hash = call_id_hash("call-x");
        ids.index
            .insert_unique(hash, a, |&i| call_id_hash(ids_text(i)));
        let x = ids.push("call-x");
        assert_eq!(ids.find("call-x"), Some(x));
        assert_eq!(ids.find("call-a"), Some(a));
    }

    #[test]
    fn dropped_call_ids_are_found_no_more() {
        let mut ids = CallIds::default();
        ids.push("call-a");
        let b = ids.push("call-é");
        let x = ids.push("call-x");
        ids.drop_before(b);
        assert_eq!(ids.find("call-a"), None);
        assert_eq!(ids.find("call-é"), Some(b));
        assert_eq!(ids.find("call-x"), Some(x));
        assert_eq!(ids.get(x), "call-x");
    }

    /// Only the two ids of the collision test are ever rehashed there.
    fn ids_text(i: u32) -> &'static str {
        ["call-a", "call-é"][i as usize]
    }

    #[test]
    fn rows_keep_times_as_offsets() {
        let mut row = CallRow {
            start: 1_000,
            other: 14_255_550_199,
            tenant: 0,
            number: 0,
            connect_offset: NOT_ANSWERED,
            end_offset: 0,
            availability_delay: 0,
            carrier: 0,
            final_sip_code: 200,
            version: 1,
            direction: Direction::Outbound,
        };
        row.set_times(Some(3_000), 64_000).unwrap();
        assert_eq!(row.connect(), Some(3_000));
        assert_eq!(row.duration_ms(), 61_000);
        assert!(row.set_times(Some(3_000), 2_000).is_err());
        assert!(row.set_times(Some(500), 2_000).is_err());
        row.set_times(None, 20_000).unwrap();
        assert_eq!(row.duration_ms(), 0);
        assert!(!row.is_answered());
    }

    #[test]
    fn rates_render_as_exact_decimals_and_poor_follows_the_fields() {
        let q = StreamQuality {
            direction: StreamDirection::CallerToCallee,
            codec: AudioCodec::Opus,
            packets: 3_000,
            avg_jitter_ms: 12,
            max_jitter_ms: 40,
            avg_rtt_ms: 80,
            max_rtt_ms: 200,
            avg_loss_ppm: 100_000,
            max_loss_ppm: 250_000,
            degradation_milli: 350,
            concealed_ppm: 20_000,
        };
        let at = TimestampText::new(0);
        let r = render_quality_record(&q, "c", &at);
        assert_eq!(r.average_packet_loss_rate, 0.1);
        assert!(!r.poor, "0.1 is not over 0.1");
        assert_eq!(
            serde_json::to_value(&r).unwrap()["averageAudioDegradation"],
            0.35
        );
        let worse = StreamQuality {
            avg_loss_ppm: 100_001,
            ..q
        };
        assert!(render_quality_record(&worse, "c", &at).poor);
        assert!(worse.is_poor());
    }
}

#[cfg(test)]
mod record_id_tests {
    use super::record_id;

    /// Replaying a run must give the same record ids on every machine and Rust release: these
    /// values are fixed, and a change of them is a change of every replay.
    #[test]
    fn record_ids_are_fixed_forever() {
        assert_eq!(
            record_id(7, 0).as_str(),
            "37fb7f08-2eb2-4b45-8e61-5cc2451e9be9"
        );
        assert_eq!(
            record_id(7, 1).as_str(),
            "44ab4032-ac03-4ee2-9b0f-1decc26c1986"
        );
        assert_eq!(
            record_id(2026, 123_456).as_str(),
            "1eb86d25-0b8b-462c-bd9d-920d758f7498"
        );
    }
}
