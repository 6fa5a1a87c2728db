//! What a shard of a sharded run (`run --shard I/N`) writes for `oc-harness merge`: a
//! `shard.json` mark when it starts (`"finished": false`) and again when its report is written
//! (`true`), and the report's `shard` section: the scenario file's digest and the figures that
//! merge without loss (histograms, drift bins, quality records per minute, the reconciled
//! window).

use std::collections::BTreeMap;
use std::path::Path;

use mock_teams::MockTeams;
use oc_reports::{ShardSection, WriteError};
use serde::{Deserialize, Serialize};

use super::figures::RunFigures;
use super::{CARRIER_ID, RunError, store_error};
use crate::shard::Shard;

/// The name of the mark a shard leaves in its folder.
pub(crate) const MARK_FILE: &str = "shard.json";

/// `shard.json`: which shard of which scenario, and whether it finished.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ShardMark {
    /// `I/N`.
    pub shard: String,
    /// The scenario file as given.
    pub scenario_file: String,
    /// `sha256:…` of its bytes.
    pub scenario_digest: String,
    /// Whether the shard wrote its report.
    pub finished: bool,
}

/// A shard that started: what its mark says.
#[derive(Debug, Clone)]
pub(crate) struct Started {
    shard: Shard,
    scenario_file: String,
    scenario_digest: String,
}

/// Reads the scenario file for its digest and leaves the unfinished mark in `out` (which
/// exists: the caller checked it is writable).
pub(crate) fn started(file: &Path, shard: Shard, out: &Path) -> Result<Started, RunError> {
    let bytes = std::fs::read(file).map_err(|e| {
        RunError::Unsupported(format!(
            "--shard needs the scenario file's digest, but {} cannot be read: {e}",
            file.display()
        ))
    })?;
    let started = Started {
        shard,
        scenario_file: file.display().to_string(),
        scenario_digest: crate::shard::digest(&bytes),
    };
    write_mark(&started, false, out)?;
    Ok(started)
}

fn write_mark(started: &Started, finished: bool, out: &Path) -> Result<(), WriteError> {
    let mark = ShardMark {
        shard: started.shard.to_string(),
        scenario_file: started.scenario_file.clone(),
        scenario_digest: started.scenario_digest.clone(),
        finished,
    };
    let path = out.join(MARK_FILE);
    let text = serde_json::to_string_pretty(&mark).unwrap_or_default() + "\n";
    std::fs::write(&path, text).map_err(|source| WriteError {
        path: path.display().to_string(),
        source,
    })
}

/// Marks the shard finished, once its report is written.
pub(crate) fn mark_finished(section: &ShardSection, out: &Path) -> Result<(), WriteError> {
    let started = Started {
        shard: Shard {
            index: section.index.unwrap_or(0),
            count: section.count,
        },
        scenario_file: section.scenario_file.clone(),
        scenario_digest: section.scenario_digest.clone(),
    };
    write_mark(&started, true, out)
}

/// The quality records Teams served the carrier, counted per minute of availability:
/// `[Unix minute, streams, poor]` ascending. Every bucket size of the report's quality chart
/// is a whole number of minutes from the epoch, so a merge buckets these exactly as one run
/// buckets the records.
pub(crate) fn quality_minutes(teams: &MockTeams) -> Result<Vec<[i64; 3]>, RunError> {
    teams
        .with_store(|s| {
            let mut minutes: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
            for (at, poor) in s.quality_availability(CARRIER_ID)? {
                let m = minutes.entry(at.div_euclid(60_000)).or_default();
                m.0 += 1;
                m.1 += i64::from(poor);
            }
            Ok(minutes
                .into_iter()
                .map(|(minute, (streams, poor))| [minute, streams, poor])
                .collect())
        })
        .map_err(store_error("quality"))
}

/// The report's shard section of a finished shard.
pub(crate) fn finished(
    started: Started,
    figures: &RunFigures,
    quality_minutes: Vec<[i64; 3]>,
    reconciled: [i64; 2],
) -> ShardSection {
    ShardSection {
        index: Some(started.shard.index),
        count: started.shard.count,
        scenario_file: started.scenario_file,
        scenario_digest: started.scenario_digest,
        finished: true,
        drift: figures.shard_drift.clone(),
        latency: figures.shard_latency.clone(),
        quality_minutes,
        reconciled,
    }
}
