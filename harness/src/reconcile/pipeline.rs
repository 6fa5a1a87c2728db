//! The parsing pipeline: one side's files cut into jobs (a chunk of lines, or of whole JSON
//! items) by a feeder that the parsing threads take from in turn, parsed on those threads, and
//! handed back to the calling thread in file order, which hands each partition of the index
//! its rows, in that order, on a thread of its own: matching sees the rows in the order of the
//! files whatever the threads' timing.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use oc_reports::reconcile::InputFile;

use super::ReconcileError;
use super::carrier::CarrierColumns;
use super::format::CarrierFormat;
use super::source::{self, JsonCut, Lines};
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
    /// The 0-based column of the job's first byte in its line: 0 but for a JSON file cut
    /// within a line.
    pub(crate) first_column: u64,
    pub(crate) kind: JobKind,
}

/// The file being cut into jobs.
struct Current {
    file: u16,
    lines: Lines,
    kind: JobKind,
    first_line: Option<u64>,
    /// How a JSON file is cut (between whole items), and the column where its next job starts.
    json: Option<(JsonCut, u64)>,
}

/// One side's files, opened in turn and cut into jobs.
pub(crate) struct Feeder<'a> {
    paths: &'a [PathBuf],
    format: Option<&'a CarrierFormat>,
    next_file: usize,
    current: Option<Current>,
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
                    Detected::Json => (JobKind::Teams(TeamsShape::Json), "graph-json", Some(1)),
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
        let json =
            matches!(kind, JobKind::Teams(TeamsShape::Json)).then(|| (JsonCut::default(), 0));
        self.current = Some(Current {
            file,
            lines,
            kind,
            first_line,
            json,
        });
        self.next_job()
    }

    /// The next job, `None` after the last file.
    pub(crate) fn next_job(&mut self) -> Result<Option<Job>, ReconcileError> {
        if let Some(current) = &mut self.current {
            let path = &self.paths[usize::from(current.file)];
            let spare = self.spare.pop().unwrap_or_default();
            let first_column = current.json.as_ref().map_or(0, |(_, column)| *column);
            let next = match &mut current.json {
                Some((cut, _)) => current.lines.next_json_chunk(cut, spare),
                None => current.lines.next_chunk_reusing(spare),
            };
            match next.map_err(|e| {
                ReconcileError::BadInput(format!("{}: cannot read: {e}", path.display()))
            })? {
                Some((offset, data)) => {
                    if let Some((_, column)) = &mut current.json {
                        *column = match memchr::memrchr(b'\n', &data) {
                            Some(end) => (data.len() - end - 1) as u64,
                            None => *column + data.len() as u64,
                        };
                    }
                    return Ok(Some(Job {
                        file: current.file,
                        offset,
                        data,
                        first_line: current.first_line.take(),
                        first_column,
                        kind: current.kind.clone(),
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

/// Runs `feed` with a `send(partition, message)` that hands each message to the thread of
/// its partition, which folds it into its state with `fold`, in the order sent; gives the
/// states back once `feed` has returned and every message is folded. A thread that panics
/// ends the reconciliation with an error rather than a wrong figure.
pub(crate) fn partitioned<S: Send, M: Send>(
    states: Vec<S>,
    fold: impl Fn(&mut S, M) + Sync,
    feed: impl FnOnce(&mut dyn FnMut(usize, M)) -> Result<(), ReconcileError>,
) -> Result<Vec<S>, ReconcileError> {
    std::thread::scope(|scope| {
        let fold = &fold;
        let mut senders = Vec::with_capacity(states.len());
        let mut handles = Vec::with_capacity(states.len());
        for mut state in states {
            // A few chunks in flight per partition: a slow partition slows the parsing
            // instead of growing memory.
            let (tx, rx) = mpsc::sync_channel::<M>(4);
            senders.push(tx);
            handles.push(scope.spawn(move || {
                for message in rx {
                    fold(&mut state, message);
                }
                state
            }));
        }
        let mut dead = false;
        let fed = feed(&mut |k, message| {
            if senders[k].send(message).is_err() {
                dead = true;
            }
        });
        drop(senders);
        let states: Vec<Option<S>> = handles.into_iter().map(|h| h.join().ok()).collect();
        fed?;
        if dead || states.iter().any(Option::is_none) {
            return Err(ReconcileError::BadInput(
                "a matching thread stopped unexpectedly (a bug: please report it)".into(),
            ));
        }
        Ok(states.into_iter().flatten().collect())
    })
}

/// Row vectors handed back once their rows are folded, to be filled again: fresh memory costs
/// a page fault and a page clear every 4 KiB, which was a tenth of the CPU.
pub(crate) struct Pool<R>(Mutex<Vec<Vec<R>>>);

/// The rows every vector of a [`Pool`] has room for: a chunk's worth of rows of 64 bytes or
/// more, what a parser reserves for each partition's share of a chunk's rows, however they
/// fall, so that a vector never grows: growing
/// copies the old capacity into fresh memory that the kernel must clear (in the profile of the
/// 10 M × 10 M benchmark, 5 % of the samples). Room not filled is never touched, so costs
/// nothing.
pub(crate) const POOL_ROWS: usize = source::CHUNK_BYTES / 64 + 1;

/// Vectors a [`Pool`] keeps: more than are ever in flight at once (the channels' bounds), so
/// that none is freed only to be allocated, and cleared by the kernel, again.
const POOL_KEPT: usize = 64;

impl<R> Pool<R> {
    pub(crate) fn new() -> Self {
        Self(Mutex::new(Vec::new()))
    }

    pub(crate) fn take(&self) -> Vec<R> {
        self.0
            .lock()
            .ok()
            .and_then(|mut pool| pool.pop())
            .unwrap_or_else(|| Vec::with_capacity(POOL_ROWS))
    }

    pub(crate) fn give(&self, mut rows: Vec<R>) {
        rows.clear();
        if let Ok(mut pool) = self.0.lock()
            && pool.len() < POOL_KEPT
        {
            pool.push(rows);
        }
    }
}
