//! Where a run keeps its exchanges while the checker only folds them: every exchange of the
//! carrier under test, written as it is observed to `exchanges.ndjson.gz` in the output folder
//! (one JSON object per line, bodies cut at the capture limit, credentials masked), and read
//! back once at the end for the evidence. Memory stays flat however long the run; the file is
//! the run's full exchange log, kept beside the report.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use oc_observe::Exchange;

/// The file's name in the output folder.
pub(crate) const FILE_NAME: &str = "exchanges.ndjson.gz";

/// How many bytes of lines gather before the compressor gets them, in one call.
const BLOCK: usize = 1 << 17;

/// Writes exchanges as they come. A write that fails is logged once and ends the spill: the
/// verdicts stand, only evidence bodies after that point are lost.
pub(crate) struct Spill {
    path: PathBuf,
    writer: Option<GzEncoder<BufWriter<File>>>,
    /// Lines written and not yet compressed: a line is written in many small pieces (every
    /// escape in a captured body is one), which cost little into a `Vec` and a call each
    /// through a writer in front of the compressor; the compressor gets whole blocks.
    block: Vec<u8>,
    written: u64,
}

impl Spill {
    /// Creates `dir/exchanges.ndjson.gz`; without a file (it cannot be created), exchanges are
    /// only counted, and the reason logged. Without `dir` (a load test told to keep no
    /// exchange log), they are only counted.
    pub(crate) fn create(dir: Option<&Path>) -> Self {
        let Some(dir) = dir else {
            return Self {
                path: PathBuf::new(),
                writer: None,
                block: Vec::new(),
                written: 0,
            };
        };
        let path = dir.join(FILE_NAME);
        let writer = std::fs::create_dir_all(dir)
            .and_then(|()| File::create(&path))
            .map(|file| GzEncoder::new(BufWriter::new(file), Compression::fast()))
            .map_err(|e| {
                tracing::warn!(
                    "cannot keep the exchanges in {}: {e}; evidence will cite exchanges without \
                     their bodies",
                    path.display()
                );
            })
            .ok();
        Self {
            path,
            writer,
            block: Vec::with_capacity(BLOCK + (1 << 12)),
            written: 0,
        }
    }

    /// Appends one exchange.
    pub(crate) fn write(&mut self, exchange: &Exchange) {
        if self.writer.is_none() {
            return;
        }
        exchange.write_json(&mut self.block);
        self.block.push(b'\n');
        self.written += 1;
        if self.block.len() >= BLOCK {
            self.compress();
        }
    }

    /// Hands the gathered lines to the compressor.
    fn compress(&mut self) {
        let Some(writer) = &mut self.writer else {
            return;
        };
        let result = writer.write_all(&self.block);
        self.block.clear();
        if let Err(e) = result {
            self.stop(&e);
        }
    }

    /// Logs why the spill stops and stops it.
    fn stop(&mut self, e: &std::io::Error) {
        tracing::warn!(
            "stopped keeping the exchanges in {} after {}: {e}",
            self.path.display(),
            self.written
        );
        self.writer = None;
    }

    /// Finishes the file; returns where it is, when it was kept whole.
    pub(crate) fn finish(mut self) -> Option<Kept> {
        self.compress();
        let writer = self.writer?;
        let done = writer.finish().and_then(|mut file| file.flush());
        match done {
            Ok(()) => Some(Kept { path: self.path }),
            Err(e) => {
                tracing::warn!("failed to finish {}: {e}", self.path.display());
                None
            }
        }
    }
}

/// A finished spill file.
#[derive(Debug, Clone)]
pub(crate) struct Kept {
    pub(crate) path: PathBuf,
}

impl Kept {
    /// Reads every exchange back, in the order written (`seq` order), handing each to `f`. A
    /// line that does not read stops the reading, logged: what was read stands.
    pub(crate) fn for_each(&self, mut f: impl FnMut(&Exchange)) {
        let file = match File::open(&self.path) {
            Ok(file) => file,
            Err(e) => {
                tracing::warn!("cannot read {}: {e}", self.path.display());
                return;
            }
        };
        let reader = BufReader::with_capacity(1 << 16, GzDecoder::new(BufReader::new(file)));
        for (n, line) in reader.lines().enumerate() {
            let exchange = line
                .map_err(|e| e.to_string())
                .and_then(|l| serde_json::from_str::<Exchange>(&l).map_err(|e| e.to_string()));
            match exchange {
                Ok(e) => f(&e),
                Err(e) => {
                    tracing::warn!("{} line {}: {e}; reading stops", self.path.display(), n + 1);
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use oc_observe::ExchangeDirection;

    use super::*;

    fn exchange(seq: u64, body: &str) -> Exchange {
        Exchange {
            seq,
            direction: ExchangeDirection::CarrierToTeams,
            carrier: Some("carrier".into()),
            method: "POST".into(),
            url: "/oc/v1/call-durations".into(),
            status: Some(200),
            error: None,
            sim_time: 1,
            wall_time_ms: 2,
            latency_us: 3,
            request_headers: vec![("idempotency-key".into(), "k".into())],
            request_body: Some(body.into()),
            response_body: None,
            fault: None,
            detail: None,
        }
    }

    #[test]
    fn exchanges_come_back_whole_and_in_order() {
        let dir = std::env::temp_dir().join(format!("oc-spill-{}", std::process::id()));
        let mut spill = Spill::create(Some(&dir));
        let written: Vec<Exchange> = (1..=500)
            .map(|i| exchange(i, &format!("{{\"records\":[\"call-{i}\"]}}\n\"quoted\"")))
            .collect();
        for e in &written {
            spill.write(e);
        }
        let kept = spill.finish().expect("kept");
        let mut read = Vec::new();
        kept.for_each(|e| read.push(e.clone()));
        assert_eq!(read, written);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
