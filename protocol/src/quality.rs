//! Media quality records (PROTOCOL.md 3.3), named as Graph's `mediaStream`, and the Call
//! Quality Dashboard's classification of a poor audio stream.

use serde::{Deserialize, Serialize};

use crate::validate::{Findings, Path, Validate};

/// A stream with this many packets or fewer is never poor.
pub const POOR_MIN_PACKETS: u64 = 500;
/// A stream whose average round trip is over this is poor.
pub const POOR_ROUND_TRIP_MS: u64 = 500;
/// A stream whose average packet loss rate is over this is poor.
pub const POOR_PACKET_LOSS_RATE: f64 = 0.1;
/// A stream whose average jitter is over this is poor.
pub const POOR_JITTER_MS: u64 = 30;

/// The Teams Call Quality Dashboard's audio classification [QUA-CLASS]: a stream of more than
/// 500 packets is poor when its average round trip is over 500 ms, its average packet loss rate
/// over 0.1, or its average jitter over 30 ms.
pub fn is_poor_stream(
    packets: u64,
    average_round_trip_ms: u64,
    average_packet_loss_rate: f64,
    average_jitter_ms: u64,
) -> bool {
    packets > POOR_MIN_PACKETS
        && (average_round_trip_ms > POOR_ROUND_TRIP_MS
            || average_packet_loss_rate > POOR_PACKET_LOSS_RATE
            || average_jitter_ms > POOR_JITTER_MS)
}

/// The quality of one media direction of one call. Its text is `String`s; Teams renders a
/// page of `QualityRecord<&str>`, borrowing the call id and formatting the time on the stack
/// (as [`crate::CallRecord`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QualityRecord<S = String> {
    /// The call.
    pub call_id: S,
    /// Which way the media flowed.
    pub stream_direction: StreamDirection,
    /// The audio codec.
    pub audio_codec: AudioCodec,
    /// Packets sent in this direction.
    pub packet_utilization: u64,
    /// Average jitter, ms.
    pub average_jitter_ms: u64,
    /// Maximum jitter, ms.
    pub max_jitter_ms: u64,
    /// Average packet loss rate, 0 to 1.
    pub average_packet_loss_rate: f64,
    /// Maximum packet loss rate, 0 to 1.
    pub max_packet_loss_rate: f64,
    /// Average round trip time, ms.
    pub average_round_trip_time_ms: u64,
    /// Maximum round trip time, ms.
    pub max_round_trip_time_ms: u64,
    /// Average degradation of the network MOS, 0 to 5.
    pub average_audio_degradation: f64,
    /// Average ratio of concealed samples, 0 to 1.
    pub average_ratio_of_concealed_samples: f64,
    /// Computed by Teams with [`is_poor_stream`].
    pub poor: bool,
    /// When the record entered the feed.
    pub available_date_time: S,
}

impl<S> QualityRecord<S> {
    /// What [`is_poor_stream`] says of this record's fields.
    pub fn classify(&self) -> bool {
        is_poor_stream(
            self.packet_utilization,
            self.average_round_trip_time_ms,
            self.average_packet_loss_rate,
            self.average_jitter_ms,
        )
    }
}

wire_enum! {
    /// Which way a media stream flowed.
    pub enum StreamDirection {
        /// From the caller to the callee.
        CallerToCallee = "callerToCallee",
        /// From the callee to the caller.
        CalleeToCaller = "calleeToCaller",
    }
}

wire_enum! {
    /// The audio codec of a stream.
    pub enum AudioCodec {
        /// G.711 A-law.
        Pcma = "pcma",
        /// G.711 µ-law.
        Pcmu = "pcmu",
        /// G.722.
        G722 = "g722",
        /// G.729.
        G729 = "g729",
        /// Opus.
        Opus = "opus",
        /// SILK.
        Silk = "silk",
        /// Satin.
        Satin = "satin",
    }
}

impl<S: AsRef<str>> QualityRecord<S> {
    /// The record with its texts copied into `String`s.
    pub fn to_owned_record(&self) -> QualityRecord {
        QualityRecord {
            call_id: self.call_id.as_ref().to_owned(),
            stream_direction: self.stream_direction,
            audio_codec: self.audio_codec,
            packet_utilization: self.packet_utilization,
            average_jitter_ms: self.average_jitter_ms,
            max_jitter_ms: self.max_jitter_ms,
            average_packet_loss_rate: self.average_packet_loss_rate,
            max_packet_loss_rate: self.max_packet_loss_rate,
            average_round_trip_time_ms: self.average_round_trip_time_ms,
            max_round_trip_time_ms: self.max_round_trip_time_ms,
            average_audio_degradation: self.average_audio_degradation,
            average_ratio_of_concealed_samples: self.average_ratio_of_concealed_samples,
            poor: self.poor,
            available_date_time: self.available_date_time.as_ref().to_owned(),
        }
    }
}

impl<S: AsRef<str>> Validate for QualityRecord<S> {
    fn validate_at(&self, at: Path<'_>, out: &mut Findings) {
        out.call_id(at.key("callId"), self.call_id.as_ref());
        out.timestamp(
            at.key("availableDateTime"),
            self.available_date_time.as_ref(),
        );
        let mut rate = |key: &'static str, value: f64| {
            if !(0.0..=1.0).contains(&value) {
                out.push(at.key(key), format!("must be from 0 to 1, is {value}"));
                false
            } else {
                true
            }
        };
        let average_loss_ok = rate("averagePacketLossRate", self.average_packet_loss_rate);
        let max_loss_ok = rate("maxPacketLossRate", self.max_packet_loss_rate);
        rate(
            "averageRatioOfConcealedSamples",
            self.average_ratio_of_concealed_samples,
        );
        if !(0.0..=5.0).contains(&self.average_audio_degradation) {
            out.push(
                at.key("averageAudioDegradation"),
                format!("must be from 0 to 5, is {}", self.average_audio_degradation),
            );
        }
        let max_below_average = "must not be below its average";
        if self.max_jitter_ms < self.average_jitter_ms {
            out.push(at.key("maxJitterMs"), max_below_average);
        }
        if self.max_round_trip_time_ms < self.average_round_trip_time_ms {
            out.push(at.key("maxRoundTripTimeMs"), max_below_average);
        }
        if average_loss_ok
            && max_loss_ok
            && self.max_packet_loss_rate < self.average_packet_loss_rate
        {
            out.push(at.key("maxPacketLossRate"), max_below_average);
        }
        // Only judge the classification when its inputs are sound, so that one bad field gives
        // one error.
        if average_loss_ok && self.poor != self.classify() {
            out.push(
                at.key("poor"),
                format!(
                    "must be {} for these averages (CQD audio classification)",
                    self.classify()
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANY: u64 = POOR_MIN_PACKETS + 1;

    #[test]
    fn a_good_stream_is_not_poor() {
        assert!(!is_poor_stream(MANY, 500, 0.1, 30));
    }

    #[test]
    fn each_threshold_is_exclusive() {
        assert!(!is_poor_stream(MANY, 500, 0.0, 0));
        assert!(is_poor_stream(MANY, 501, 0.0, 0));
        assert!(!is_poor_stream(MANY, 0, 0.1, 0));
        assert!(is_poor_stream(MANY, 0, 0.100_000_1, 0));
        assert!(!is_poor_stream(MANY, 0, 0.0, 30));
        assert!(is_poor_stream(MANY, 0, 0.0, 31));
    }

    #[test]
    fn short_streams_are_never_poor() {
        assert!(!is_poor_stream(POOR_MIN_PACKETS, 5_000, 1.0, 1_000));
        assert!(!is_poor_stream(0, 5_000, 1.0, 1_000));
        assert!(is_poor_stream(POOR_MIN_PACKETS + 1, 5_000, 1.0, 1_000));
    }
}
