//! The certification hook's call legs: what the carrier's own switches would have recorded
//! (PROTOCOL.md 2.3).

use serde::{Deserialize, Serialize};

use crate::validate::{Findings, Path, Validate};

/// The most legs one request carries.
pub const MAX_LEGS_PER_REQUEST: usize = 1000;

/// `POST /oc/v1/test/call-legs` on the carrier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallLegBatch {
    /// 1 to 1000 legs.
    pub legs: Vec<CallLeg>,
}

/// One answered call as the carrier's switch saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallLeg {
    /// The call, as in Teams' records.
    pub call_id: String,
    /// The carrier's number that was used.
    pub telephone_number: String,
    /// When the switch saw the call answered.
    pub connect_date_time: String,
    /// When the switch saw the call end.
    pub end_date_time: String,
}

/// The answer to [`CallLegBatch`]: `202` with how many legs were taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallLegsAccepted {
    /// How many legs the carrier took.
    pub accepted: u32,
}

impl Validate for CallLegBatch {
    fn validate_at(&self, at: Path<'_>, out: &mut Findings) {
        let legs = at.key("legs");
        out.count(legs, self.legs.len(), 1, MAX_LEGS_PER_REQUEST);
        for (i, leg) in self.legs.iter().enumerate() {
            leg.validate_at(legs.index(i), out);
        }
    }
}

impl Validate for CallLeg {
    fn validate_at(&self, at: Path<'_>, out: &mut Findings) {
        out.call_id(at.key("callId"), &self.call_id);
        out.e164(at.key("telephoneNumber"), &self.telephone_number);
        let connect = out.timestamp(at.key("connectDateTime"), &self.connect_date_time);
        let end = out.timestamp(at.key("endDateTime"), &self.end_date_time);
        if let (Some(c), Some(e)) = (connect, end)
            && e < c
        {
            out.push(at.key("endDateTime"), "must not be before connectDateTime");
        }
    }
}
