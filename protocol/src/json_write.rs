//! Writing the change feeds' pages and the number webhooks' notifications as JSON by hand: the
//! very bytes `serde_json` writes for a [`Page`](crate::Page) of [`CallRecord`]s or
//! [`QualityRecord`]s and for a [`NumberAssignmentNotification`] (tests hold the two equal),
//! without serde's escape scan of every key.
//!
//! Teams renders a record per call and two per answered call's media, a month is millions of
//! them, and serialising through serde was the largest share of Teams' thread in a `run`: each
//! of a record's fifteen keys went through the same byte-by-byte escape loop as its values.
//! Here keys are literals, texts known to need no escape (timestamps, UUIDs made here) are
//! still checked, cheaply, and numbers are written with `itoa` (integers) and `serde_json`'s
//! own formatter (floats), so the output cannot drift from serde's. A load test signs and sends
//! tens of thousands of notifications a second, each written once.

use crate::{CallRecord, NumberAssignmentNotification, NumberEvent, QualityRecord};

/// A wire type written as JSON by hand, byte for byte as `serde_json::to_vec` writes it.
pub trait WriteJson {
    /// Appends this value's JSON to `out`.
    fn write_json(&self, out: &mut Vec<u8>);
}

/// A page's JSON written item by item: `{"value":[` on [`PageWriter::new`], each item with
/// [`PageWriter::item`], and the links with [`PageWriter::finish`], as
/// `serde_json::to_vec(&Page { value, next_link, delta_link })` writes them.
pub struct PageWriter {
    out: Vec<u8>,
    items: usize,
}

impl PageWriter {
    /// A page with room for about `capacity` bytes.
    pub fn new(capacity: usize) -> Self {
        let mut out = Vec::with_capacity(capacity);
        out.extend_from_slice(b"{\"value\":[");
        Self { out, items: 0 }
    }

    /// Appends one item.
    pub fn item(&mut self, item: &impl WriteJson) {
        if self.items > 0 {
            self.out.push(b',');
        }
        item.write_json(&mut self.out);
        self.items += 1;
    }

    /// How many items were appended.
    pub fn len(&self) -> usize {
        self.items
    }

    /// Whether no item was appended.
    pub fn is_empty(&self) -> bool {
        self.items == 0
    }

    /// The page's JSON, with its links (`nextLink` is `null` when absent; `deltaLink` is left
    /// out when absent, as [`crate::Page`] serialises).
    pub fn finish(mut self, next_link: Option<&str>, delta_link: Option<&str>) -> Vec<u8> {
        self.out.extend_from_slice(b"],\"nextLink\":");
        match next_link {
            Some(link) => write_str(&mut self.out, link),
            None => self.out.extend_from_slice(b"null"),
        }
        if let Some(link) = delta_link {
            self.out.extend_from_slice(b",\"deltaLink\":");
            write_str(&mut self.out, link);
        }
        self.out.push(b'}');
        self.out
    }
}

/// Appends `text` as a JSON string, byte for byte as `serde_json` writes it: `"`, `\` and the
/// control characters escaped (`\n`, `\t`… where JSON has a short form, else `\u00XX`),
/// everything else copied.
///
/// A text with nothing to escape (most of a feed record's: ids, numbers, timestamps) is copied
/// whole, after a check that does not branch per byte. Else the text is read and written eight
/// bytes at a time: a captured body is JSON inside a JSON string, an escape every dozen bytes,
/// and serde_json's byte-by-byte loop through its writer cost a load test's checker thread
/// more than compressing the line (`cargo bench -p oc-protocol --bench json_write`). Each word
/// is stored whole into room made beforehand, clean or not. A text without control characters
/// (every captured JSON body: JSON has none unescaped) takes a path (`escape_marks`) that gives
/// all of a word's quotes and backslashes their backslash without reading the word again; one
/// with them takes one (`escape_into`) that stops at each.
pub fn write_str(out: &mut Vec<u8>, text: &str) {
    // Room is made a piece at a time, so that a long body does not zero twice its length.
    const PIECE: usize = 4096;
    out.push(b'"');
    let mut rest = text.as_bytes();
    let (controls, marks) = rest.iter().fold((false, false), |(controls, marks), &b| {
        (controls | (b < 0x20), marks | (b == b'"') | (b == b'\\'))
    });
    if !(controls | marks) {
        out.extend_from_slice(rest);
        out.push(b'"');
        return;
    }
    while !rest.is_empty() {
        let piece = &rest[..rest.len().min(PIECE)];
        let at = out.len();
        // The most a piece can take without a control character (every byte a two-byte
        // escape), and slack for the whole-word stores.
        out.resize(at + 2 * piece.len() + SLACK, 0);
        if !controls {
            let written = escape_marks(&mut out[at..], piece);
            out.truncate(at + written);
            rest = &rest[piece.len()..];
            continue;
        }
        let (read, written) = escape_into(&mut out[at..], piece);
        out.truncate(at + written);
        rest = &rest[read..];
        if let Some((&control, after)) = rest.split_first().filter(|_| read < piece.len()) {
            push_control(out, control);
            rest = after;
        }
    }
    out.push(b'"');
}

/// The room made beyond twice a piece's length: [`escape_marks`] stores up to 24 bytes from
/// where a word's output starts.
const SLACK: usize = 16;

/// Writes `bytes`, which hold no control character, escaped at the start of `room` (at least
/// `2 * bytes.len() + SLACK` long); returns how many bytes it wrote. Each word is stored
/// whole, then each of its quotes and backslashes, lowest first, gets its backslash by storing
/// the rest of the word again one byte further on: a word is read once however many escapes
/// it holds, where [`escape_into`] reads from each escape on again (on a captured
/// notification, an escape every ten bytes, 4,650 instructions against 3,640 here).
fn escape_marks(room: &mut [u8], bytes: &[u8]) -> usize {
    let mut written = 0;
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        // Within the room: at most twice what was read so far is written, and 8 bytes still
        // to read leave 16 + SLACK.
        let to = &mut room[written..written + 24];
        let mut eight = [0; 8];
        eight.copy_from_slice(word);
        to[..8].copy_from_slice(&eight);
        let word = u64::from_le_bytes(eight);
        let mut marks = quotes_and_backslashes(word);
        let mut moved = 0;
        while marks != 0 {
            let byte = (marks.trailing_zeros() / 8) as usize;
            let at = byte + moved;
            to[at] = b'\\';
            to[at + 1..at + 9].copy_from_slice(&(word >> (8 * byte)).to_le_bytes());
            moved += 1;
            marks &= marks - 1;
        }
        written += 8 + moved;
    }
    for &byte in words.remainder() {
        if byte == b'"' || byte == b'\\' {
            room[written] = b'\\';
            written += 1;
        }
        room[written] = byte;
        written += 1;
    }
    written
}

/// The high bit of each byte of `word` that is a quote or a backslash, exact for every byte.
fn quotes_and_backslashes(word: u64) -> u64 {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const LOWS: u64 = u64::from_ne_bytes([0x7f; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    // A byte's low seven bits, xor the one looked for, plus 0x7f reach the high bit unless
    // they were zero (no carry leaves the byte); a byte with its high bit set is neither.
    let low = word & LOWS;
    let quote = (low ^ (ONES * u64::from(b'"'))) + LOWS;
    let backslash = (low ^ (ONES * u64::from(b'\\'))) + LOWS;
    !((quote & backslash) | word) & HIGHS
}

/// Writes `bytes` escaped at the start of `room` (at least `2 * bytes.len() + 8` long), up to
/// the first control character (whose escape is longer); returns how many bytes it read and
/// how many it wrote.
fn escape_into(room: &mut [u8], bytes: &[u8]) -> (usize, usize) {
    let (mut read, mut written) = (0, 0);
    while let Some(word) = bytes.get(read..read + 8) {
        let mut eight = [0; 8];
        eight.copy_from_slice(word);
        room[written..written + 8].copy_from_slice(&eight);
        let found = escapes(u64::from_le_bytes(eight));
        if found == 0 {
            read += 8;
            written += 8;
            continue;
        }
        let clean = (found.trailing_zeros() / 8) as usize;
        read += clean;
        written += clean;
        let byte = bytes[read];
        if byte < 0x20 {
            return (read, written);
        }
        room[written] = b'\\';
        room[written + 1] = byte;
        written += 2;
        read += 1;
    }
    for &byte in &bytes[read..] {
        if byte < 0x20 {
            break;
        }
        if byte == b'"' || byte == b'\\' {
            room[written] = b'\\';
            written += 1;
        }
        room[written] = byte;
        written += 1;
        read += 1;
    }
    (read, written)
}

/// The high bit of each byte of `word` that needs an escape (a quote, a backslash, a control
/// character), exact for the lowest such byte (higher ones may be false alarms: only the
/// lowest is used).
fn escapes(word: u64) -> u64 {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    // (x - k) & !x has a byte's high bit set for each byte of x below k, exactly in the lowest
    // such byte (a borrow can only reach the bytes above it).
    let below = |x: u64, k: u8| x.wrapping_sub(ONES * u64::from(k)) & !x;
    let quote = below(word ^ (ONES * u64::from(b'"')), 1);
    let backslash = below(word ^ (ONES * u64::from(b'\\')), 1);
    (quote | backslash | below(word, 0x20)) & HIGHS
}

/// Appends the escape of a control character: its short form where JSON has one, else
/// `\u00XX`.
fn push_control(out: &mut Vec<u8>, byte: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    match byte {
        0x08 => out.extend_from_slice(b"\\b"),
        0x0c => out.extend_from_slice(b"\\f"),
        b'\n' => out.extend_from_slice(b"\\n"),
        b'\r' => out.extend_from_slice(b"\\r"),
        b'\t' => out.extend_from_slice(b"\\t"),
        _ => out.extend_from_slice(&[
            b'\\',
            b'u',
            b'0',
            b'0',
            HEX[usize::from(byte >> 4)],
            HEX[usize::from(byte & 0xf)],
        ]),
    }
}

/// Appends an integer as JSON writes it.
pub fn write_int(out: &mut Vec<u8>, value: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

fn write_f64(out: &mut Vec<u8>, value: f64) {
    // serde_json's own float formatting (and `null` for what is not finite), so the bytes
    // are serde's whatever the value.
    let _ = serde_json::to_writer(&mut *out, &value);
}

/// Appends a JSON array of `items`, each written by `write`.
pub fn write_array<T>(
    out: &mut Vec<u8>,
    items: impl IntoIterator<Item = T>,
    mut write: impl FnMut(&mut Vec<u8>, T),
) {
    out.push(b'[');
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write(out, item);
    }
    out.push(b']');
}

/// Appends a text as a JSON string, or `null`.
pub fn write_opt_str(out: &mut Vec<u8>, text: Option<&str>) {
    match text {
        Some(text) => write_str(out, text),
        None => out.extend_from_slice(b"null"),
    }
}

impl WriteJson for NumberAssignmentNotification {
    fn write_json(&self, out: &mut Vec<u8>) {
        write_notification(
            out,
            &self.notification_id,
            &self.sent_date_time,
            &self.events,
        );
    }
}

/// Appends a [`NumberAssignmentNotification`]'s JSON from its parts, the events borrowed
/// wherever they are kept: Teams' webhook sender shares each event with the harness's checker
/// rather than owning a copy for a notification of its own.
pub fn write_notification<E: std::borrow::Borrow<NumberEvent>>(
    out: &mut Vec<u8>,
    notification_id: &str,
    sent_date_time: &str,
    events: &[E],
) {
    out.extend_from_slice(b"{\"notificationId\":");
    write_str(out, notification_id);
    out.extend_from_slice(b",\"sentDateTime\":");
    write_str(out, sent_date_time);
    out.extend_from_slice(b",\"events\":");
    write_array(out, events, |out, event| event.borrow().write_json(out));
    out.push(b'}');
}

impl WriteJson for NumberEvent {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"eventId\":");
        write_str(out, &self.event_id);
        out.extend_from_slice(b",\"sequence\":");
        write_int(out, self.sequence);
        out.extend_from_slice(b",\"type\":");
        write_str(out, self.kind.as_str());
        out.extend_from_slice(b",\"tenantId\":");
        write_str(out, &self.tenant_id);
        out.extend_from_slice(b",\"telephoneNumber\":");
        write_str(out, &self.telephone_number);
        // Absent fields are left out, as the type's `skip_serializing_if` says.
        if let Some(sip_uri) = &self.sip_uri {
            out.extend_from_slice(b",\"sipUri\":");
            write_str(out, sip_uri);
        }
        if let Some(usage) = self.usage {
            out.extend_from_slice(b",\"usage\":");
            write_str(out, usage.as_str());
        }
        if let Some(assignee) = &self.assignee {
            out.extend_from_slice(b",\"assignee\":{\"id\":");
            write_str(out, &assignee.id);
            out.extend_from_slice(b",\"type\":");
            write_str(out, assignee.kind.as_str());
            out.push(b'}');
        }
        out.extend_from_slice(b",\"effectiveDateTime\":");
        write_str(out, &self.effective_date_time);
        out.push(b'}');
    }
}

impl<S: AsRef<str>> WriteJson for CallRecord<S> {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"id\":");
        write_str(out, self.id.as_ref());
        out.extend_from_slice(b",\"version\":");
        write_int(out, self.version);
        out.extend_from_slice(b",\"callId\":");
        write_str(out, self.call_id.as_ref());
        out.extend_from_slice(b",\"tenantId\":");
        write_str(out, self.tenant_id.as_ref());
        out.extend_from_slice(b",\"telephoneNumber\":");
        write_str(out, self.telephone_number.as_ref());
        out.extend_from_slice(b",\"direction\":");
        write_str(out, self.direction.as_str());
        out.extend_from_slice(b",\"callerNumber\":");
        write_str(out, self.caller_number.as_ref());
        out.extend_from_slice(b",\"calleeNumber\":");
        write_str(out, self.callee_number.as_ref());
        out.extend_from_slice(b",\"startDateTime\":");
        write_str(out, self.start_date_time.as_ref());
        out.extend_from_slice(b",\"connectDateTime\":");
        write_opt_str(out, self.connect_date_time.as_ref().map(AsRef::as_ref));
        out.extend_from_slice(b",\"endDateTime\":");
        write_str(out, self.end_date_time.as_ref());
        out.extend_from_slice(b",\"durationMs\":");
        write_int(out, self.duration_ms);
        out.extend_from_slice(b",\"finalSipCode\":");
        write_int(out, self.final_sip_code);
        out.extend_from_slice(b",\"callDurationSource\":");
        write_str(out, self.call_duration_source.as_str());
        out.extend_from_slice(b",\"availableDateTime\":");
        write_str(out, self.available_date_time.as_ref());
        out.push(b'}');
    }
}

impl<S: AsRef<str>> WriteJson for QualityRecord<S> {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"callId\":");
        write_str(out, self.call_id.as_ref());
        out.extend_from_slice(b",\"streamDirection\":");
        write_str(out, self.stream_direction.as_str());
        out.extend_from_slice(b",\"audioCodec\":");
        write_str(out, self.audio_codec.as_str());
        out.extend_from_slice(b",\"packetUtilization\":");
        write_int(out, self.packet_utilization);
        out.extend_from_slice(b",\"averageJitterMs\":");
        write_int(out, self.average_jitter_ms);
        out.extend_from_slice(b",\"maxJitterMs\":");
        write_int(out, self.max_jitter_ms);
        out.extend_from_slice(b",\"averagePacketLossRate\":");
        write_f64(out, self.average_packet_loss_rate);
        out.extend_from_slice(b",\"maxPacketLossRate\":");
        write_f64(out, self.max_packet_loss_rate);
        out.extend_from_slice(b",\"averageRoundTripTimeMs\":");
        write_int(out, self.average_round_trip_time_ms);
        out.extend_from_slice(b",\"maxRoundTripTimeMs\":");
        write_int(out, self.max_round_trip_time_ms);
        out.extend_from_slice(b",\"averageAudioDegradation\":");
        write_f64(out, self.average_audio_degradation);
        out.extend_from_slice(b",\"averageRatioOfConcealedSamples\":");
        write_f64(out, self.average_ratio_of_concealed_samples);
        out.extend_from_slice(b",\"poor\":");
        out.extend_from_slice(if self.poor { b"true" } else { b"false" });
        out.extend_from_slice(b",\"availableDateTime\":");
        write_str(out, self.available_date_time.as_ref());
        out.push(b'}');
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::Page;
    use crate::testing;

    fn by_hand<T: WriteJson>(page: &Page<T>) -> Vec<u8> {
        let mut writer = PageWriter::new(16);
        for item in &page.value {
            writer.item(item);
        }
        assert_eq!(writer.len(), page.value.len());
        writer.finish(page.next_link.as_deref(), page.delta_link.as_deref())
    }

    fn text(bytes: &[u8]) -> String {
        String::from_utf8_lossy(bytes).into_owned()
    }

    fn written(value: &impl WriteJson) -> Vec<u8> {
        let mut out = Vec::new();
        value.write_json(&mut out);
        out
    }

    /// A text longer than the pieces room is made for, escapes on and across their borders.
    #[test]
    fn long_strings_are_serdes_bytes() {
        for period in [1, 7, 8, 9, 4095, 4096, 4097] {
            let text: String = (0..3 * 4096 + 5)
                .map(|i| match i % period {
                    0 => '"',
                    1 => '\u{1}',
                    _ => 'a',
                })
                .collect();
            let mut out = Vec::new();
            write_str(&mut out, &text);
            assert_eq!(out, serde_json::to_vec(&text).unwrap(), "period {period}");
        }
    }

    proptest! {
        #[test]
        fn cdr_pages_are_serdes_bytes(page in testing::page(testing::call_record())) {
            prop_assert_eq!(text(&by_hand(&page)), text(&serde_json::to_vec(&page).unwrap()));
        }

        #[test]
        fn quality_pages_are_serdes_bytes(page in testing::page(testing::quality_record())) {
            prop_assert_eq!(text(&by_hand(&page)), text(&serde_json::to_vec(&page).unwrap()));
        }

        /// Any text, escapes and all, and any number: still serde's bytes (the wire types'
        /// own strategies make valid records only).
        #[test]
        fn any_texts_and_numbers_are_serdes_bytes(
            mut cdr in testing::call_record(),
            mut quality in testing::quality_record(),
            texts in proptest::collection::vec(any::<String>(), 6),
            version in any::<u32>(),
            duration_ms in any::<i64>(),
            final_sip_code in any::<u16>(),
            counts in proptest::collection::vec(any::<u64>(), 5),
            rates in proptest::collection::vec(any::<f64>(), 4),
            poor in any::<bool>(),
            next in proptest::option::of(any::<String>()),
        ) {
            cdr.id = texts[0].clone();
            cdr.call_id = texts[1].clone();
            cdr.tenant_id = texts[2].clone();
            cdr.caller_number = texts[3].clone();
            cdr.connect_date_time = Some(texts[4].clone());
            cdr.available_date_time = texts[5].clone();
            cdr.version = version;
            cdr.duration_ms = duration_ms;
            cdr.final_sip_code = final_sip_code;
            let page = Page { value: vec![cdr.clone(), cdr], next_link: next.clone(), delta_link: None };
            prop_assert_eq!(text(&by_hand(&page)), text(&serde_json::to_vec(&page).unwrap()));

            quality.call_id = texts[0].clone();
            quality.available_date_time = texts[1].clone();
            quality.packet_utilization = counts[0];
            quality.average_jitter_ms = counts[1];
            quality.max_jitter_ms = counts[2];
            quality.average_round_trip_time_ms = counts[3];
            quality.max_round_trip_time_ms = counts[4];
            quality.average_packet_loss_rate = rates[0];
            quality.max_packet_loss_rate = rates[1];
            quality.average_audio_degradation = rates[2];
            quality.average_ratio_of_concealed_samples = rates[3];
            quality.poor = poor;
            let page = Page { value: vec![quality], next_link: None, delta_link: next };
            prop_assert_eq!(text(&by_hand(&page)), text(&serde_json::to_vec(&page).unwrap()));
        }

        /// Every kind of event, with or without its assignment, any texts: serde's bytes.
        #[test]
        fn notifications_are_serdes_bytes(
            mut notification in testing::number_assignment_notification(),
            texts in proptest::collection::vec(any::<String>(), 4),
        ) {
            prop_assert_eq!(
                text(&written(&notification)),
                text(&serde_json::to_vec(&notification).unwrap())
            );
            notification.notification_id = texts[0].clone();
            if let Some(event) = notification.events.first_mut() {
                event.event_id = texts[1].clone();
                event.sip_uri = Some(texts[2].clone());
                event.effective_date_time = texts[3].clone();
            }
            prop_assert_eq!(
                text(&written(&notification)),
                text(&serde_json::to_vec(&notification).unwrap())
            );
        }

        /// Every byte's mark exact, whatever the bytes beside it: each escape of a word is
        /// written from them, not only the lowest.
        #[test]
        fn quotes_and_backslashes_are_marked_exactly(
            bytes in proptest::collection::vec(
                prop_oneof![Just(b'"'), Just(b'\\'), any::<u8>()],
                8,
            ),
        ) {
            let word = u64::from_le_bytes(bytes.clone().try_into().unwrap());
            let marked: u64 = bytes
                .iter()
                .enumerate()
                .filter(|&(_, &b)| b == b'"' || b == b'\\')
                .map(|(i, _)| 0x80 << (8 * i))
                .sum();
            prop_assert_eq!(quotes_and_backslashes(word), marked);
        }

        /// Texts without control characters (a captured body's), dense in quotes and
        /// backslashes, up to three pieces long: serde's bytes.
        #[test]
        fn strings_without_controls_are_serdes_bytes(
            parts in proptest::collection::vec(
                prop_oneof![
                    Just("\"".to_owned()),
                    Just("\\".to_owned()),
                    Just("\u{7f}é€😀".to_owned()),
                    "[ -~]{0,12}",
                    "[ -~]{4000,4200}",
                ],
                0..40,
            ),
        ) {
            let text: String = parts.concat();
            let mut out = b"x".to_vec();
            write_str(&mut out, &text);
            prop_assert_eq!(&out[1..], &serde_json::to_vec(&text).unwrap()[..]);
        }

        /// Texts dense in escapes (every control character, quotes, backslashes, non-ASCII) at
        /// every alignment of the eight-byte scan: serde's bytes.
        #[test]
        fn strings_are_serdes_bytes(
            parts in proptest::collection::vec(
                prop_oneof![
                    (0u8..0x20).prop_map(|b| char::from(b).to_string()),
                    Just("\"".to_owned()),
                    Just("\\".to_owned()),
                    Just("\u{7f}é€😀".to_owned()),
                    "[ -~]{0,12}",
                ],
                0..40,
            ),
        ) {
            let text: String = parts.concat();
            let mut out = b"x".to_vec();
            write_str(&mut out, &text);
            prop_assert_eq!(&out[1..], &serde_json::to_vec(&text).unwrap()[..]);
        }
    }

    #[test]
    fn an_empty_page_is_serdes_bytes() {
        let page: Page<CallRecord> = Page {
            value: vec![],
            next_link: None,
            delta_link: Some("https://teams.example/oc/v1/cdrs/delta?token=a\"b".to_owned()),
        };
        assert_eq!(by_hand(&page), serde_json::to_vec(&page).unwrap());
    }
}
