//! The parsing pipeline: one side's files cut into jobs (a chunk of lines, or a whole JSON
//! file) by a feeder that the parsing threads take from in turn, parsed on those threads, and
//! handed back to the calling thread in file order, so that matching sees the rows in the
//! order of the files whatever the threads' timing.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use oc_reports::reconcile::InputFile;

use super::ReconcileError;
use super::carrier::CarrierColumns;
use super::format::CarrierFormat;
use super::source::{self, Lines};
use super::teams::{self, CsvColumns, Detected, TeamsShape};

/// How a job's bytes are read.
#[derive(Clone)]
pub(crate) enum JobKind {
    Teams(TeamsShape),
    Carrier(Arc<CarrierColumns>),
}

/// Bytes for one parsing thread.
pub(crate) struct Job {
    pub(crate) file: u16,
    pub(crate) offset: u64,
    pub(crate) data: Vec<u8>,
    pub(crate) first_line: Option<u64>,
    pub(crate) kind: JobKind,
}

/// One side's files, opened in turn and cut into jobs.
pub(crate) struct Feeder<'a> {
    paths: &'a [PathBuf],
    format: Option<&'a CarrierFormat>,
    next_file: usize,
    current: Option<(u16, Lines, JobKind, Option<u64>)>,
    /// What each file was read as, in order.
    pub(crate) files: Vec<(InputFile, JobKind)>,
    /// Chunks handed back once parsed, to read the next ones into.
    spare: Vec<Vec<u8>>,
}

impl<'a> Feeder<'a> {
    /// Teams files (`format` `None`) or carrier files read through `format`.
    pub(crate) fn new(paths: &'a [PathBuf], format: Option<&'a CarrierFormat>) -> Self {
        Self {
            paths,
            format,
            next_file: 0,
            current: None,
            files: Vec::new(),
            spare: Vec::new(),
        }
    }

    fn open_next(&mut self) -> Result<Option<Job>, ReconcileError> {
        let Some(path) = self.paths.get(self.next_file) else {
            return Ok(None);
        };
        let file = u16::try_from(self.next_file)
            .map_err(|_| ReconcileError::BadInput("more than 65,535 files on one side".into()))?;
        self.next_file += 1;
        let unreadable = |e: std::io::Error| {
            ReconcileError::BadInput(format!("{}: cannot read: {e}", path.display()))
        };
        let gzip = source::is_gzip(path).map_err(unreadable)?;
        let mut lines = Lines::new(source::open(path).map_err(unreadable)?);
        let name = path.display().to_string();
        let (kind, shape, first_line) = match self.format {
            None => {
                let head = lines.peek(64 << 10).map_err(unreadable)?;
                if head.iter().all(u8::is_ascii_whitespace) {
                    self.files.push((
                        InputFile {
                            path: name,
                            shape: "empty".into(),
                            gzip,
                        },
                        JobKind::Teams(TeamsShape::Json),
                    ));
                    return self.next_job();
                }
                match teams::detect(head) {
                    Detected::Json => {
                        let (offset, data) = lines.read_rest().map_err(unreadable)?;
                        let kind = JobKind::Teams(TeamsShape::Json);
                        self.files.push((
                            InputFile {
                                path: name,
                                shape: "graph-json".into(),
                                gzip,
                            },
                            kind.clone(),
                        ));
                        return Ok(Some(Job {
                            file,
                            offset,
                            data,
                            first_line: Some(1),
                            kind,
                        }));
                    }
                    Detected::Ndjson => (JobKind::Teams(TeamsShape::Ndjson), "ndjson", Some(1)),
                    Detected::Csv => {
                        let header = lines.take_line().map_err(unreadable)?.unwrap_or_default();
                        let columns = CsvColumns::from_header(&header)
                            .map_err(|why| ReconcileError::BadInput(format!("{name}:1: {why}")))?;
                        (
                            JobKind::Teams(TeamsShape::Csv(columns)),
                            "m365-csv",
                            Some(2),
                        )
                    }
                }
            }
            Some(format) => {
                let header = if format.header {
                    match lines.take_line().map_err(unreadable)? {
                        Some(header) => Some(header),
                        None => {
                            self.files.push((
                                InputFile {
                                    path: name,
                                    shape: "empty".into(),
                                    gzip,
                                },
                                JobKind::Teams(TeamsShape::Json),
                            ));
                            return self.next_job();
                        }
                    }
                } else {
                    None
                };
                let columns = CarrierColumns::resolve(format, header.as_deref())
                    .map_err(|why| ReconcileError::BadInput(format!("{name}:1: {why}")))?;
                (
                    JobKind::Carrier(Arc::new(columns)),
                    "csv",
                    Some(if format.header { 2 } else { 1 }),
                )
            }
        };
        self.files.push((
            InputFile {
                path: name,
                shape: shape.into(),
                gzip,
            },
            kind.clone(),
        ));
        self.current = Some((file, lines, kind, first_line));
        self.next_job()
    }

    /// The next job, `None` after the last file.
    pub(crate) fn next_job(&mut self) -> Result<Option<Job>, ReconcileError> {
        if let Some((file, lines, kind, first_line)) = &mut self.current {
            let path = &self.paths[usize::from(*file)];
            let spare = self.spare.pop().unwrap_or_default();
            match lines.next_chunk_reusing(spare).map_err(|e| {
                ReconcileError::BadInput(format!("{}: cannot read: {e}", path.display()))
            })? {
                Some((offset, data)) => {
                    return Ok(Some(Job {
                        file: *file,
                        offset,
                        data,
                        first_line: first_line.take(),
                        kind: kind.clone(),
                    }));
                }
                None => self.current = None,
            }
        }
        self.open_next()
    }
}

/// Parses every job of `feeder` on `threads` threads and gives the results to `consume` in
/// job order. Stops at the first error (the feeder's or `consume`'s), which it returns.
pub(crate) fn run<R: Send>(
    feeder: &mut Feeder<'_>,
    threads: usize,
    parse: &(dyn Fn(&Job) -> R + Sync),
    mut consume: impl FnMut(R) -> Result<(), ReconcileError>,
) -> Result<(), ReconcileError> {
    let feeder = Mutex::new((feeder, 0u64));
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::sync_channel::<(u64, Result<R, ReconcileError>)>(threads * 2);
        for _ in 0..threads {
            let tx = tx.clone();
            let (feeder, stop) = (&feeder, &stop);
            scope.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let (seq, job) = {
                        let Ok(mut guard) = feeder.lock() else { return };
                        let seq = guard.1;
                        guard.1 += 1;
                        match guard.0.next_job() {
                            Ok(Some(job)) => (seq, job),
                            Ok(None) => return,
                            Err(err) => {
                                stop.store(true, Ordering::Relaxed);
                                let _ = tx.send((seq, Err(err)));
                                return;
                            }
                        }
                    };
                    let parsed = parse(&job);
                    if let Ok(mut guard) = feeder.lock()
                        && guard.0.spare.len() < threads
                    {
                        guard.0.spare.push(job.data);
                    }
                    if tx.send((seq, Ok(parsed))).is_err() {
                        return;
                    }
                }
            });
        }
        drop(tx);
        let mut pending = BTreeMap::new();
        let mut next = 0u64;
        for (seq, result) in rx.iter() {
            pending.insert(seq, result);
            while let Some(result) = pending.remove(&next) {
                next += 1;
                if let Err(err) = result.and_then(&mut consume) {
                    stop.store(true, Ordering::Relaxed);
                    return Err(err);
                }
            }
        }
        Ok(())
    })
}
