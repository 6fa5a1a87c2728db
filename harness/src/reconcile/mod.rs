//! `oc-harness reconcile`: a carrier's CDR export against Teams' call log (Microsoft Graph
//! `pstnCallLogRow`s), call by call, in the classes of PROTOCOL.md 3.5. Teams' rows are read into
//! a compact index (one side in memory), the carrier's are streamed past it; both are parsed on
//! several threads, in chunks, without a string per field. Writes `report.json`, `summary.md`,
//! `report.html` and `mismatches.csv`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use oc_reports::reconcile::{
    Charge, Charges, InputFile, RECONCILE_SCHEMA_VERSION, ReconcileInputs, ReconcileReport,
    ReconcileTiming, ReconcileVerdict, RowCounts, RowErrorEntry,
};

mod carrier;
mod direct;
mod drifts;
mod figures;
mod format;
mod matching;
mod mismatches;
mod pairs;
mod pipeline;
mod rows;
mod source;
mod spill;
mod teams;
mod text;

use figures::Figures;
use matching::{Claims, Index, row_ref};
use pipeline::{Feeder, Job, JobKind, Pool, partitioned};
use rows::{CarrierRow, Filters, Parsed, Problem, ReadTeamsRow};

/// How many rejected rows the report lists (all are counted).
const ERRORS_LISTED: usize = 1000;

/// What to reconcile, and how.
#[derive(Debug, Clone)]
pub struct ReconcileOptions {
    /// Teams' call log files (Graph JSON pages, NDJSON rows or the m365 CLI's CSV; gzip or not).
    pub teams: Vec<PathBuf>,
    /// The carrier's CDR CSV files.
    pub carrier: Vec<PathBuf>,
    /// The carrier format file; the bundled `oc-harness` format when `None`.
    pub carrier_format: Option<PathBuf>,
    /// The largest |carrier − Teams| duration still `matched`, and the widest connect-time gap
    /// of a match by numbers, ms.
    pub tolerance_ms: i64,
    /// Only calls starting at or after this time (RFC 3339, or a date: its midnight UTC).
    pub from: Option<String>,
    /// Only calls starting before this time.
    pub to: Option<String>,
    /// Only Teams rows of this `operator` (ASCII case ignored).
    pub operator: Option<String>,
    /// Where the files go.
    pub out: PathBuf,
    /// Stop (bad input) after more rejected rows than this.
    pub max_errors: Option<u64>,
    /// How many numbers the report lists by gap.
    pub top_numbers: usize,
    /// Parsing threads.
    pub threads: usize,
}

/// Why a reconciliation did not run to its end.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// A flag, format file or input file that cannot be used (exit code 2).
    #[error("{0}")]
    BadInput(String),
    /// More rejected rows than `--max-errors` (exit code 2); the first ones are listed.
    #[error("more than {limit} rows rejected; stopped at:\n  {}", listed.iter().map(RowErrorEntry::located).collect::<Vec<_>>().join("\n  "))]
    TooManyErrors {
        /// `--max-errors`.
        limit: u64,
        /// The first rejected rows (up to 20).
        listed: Vec<RowErrorEntry>,
    },
    /// The output could not be written (exit code 3).
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file or folder.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl ReconcileError {
    /// The exit code this error means.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::BadInput(_) | Self::TooManyErrors { .. } => crate::EXIT_BAD_INPUT,
            Self::Write { .. } => crate::EXIT_COULD_NOT_RUN,
        }
    }
}

/// A finished reconciliation.
#[derive(Debug)]
pub struct ReconcileOutcome {
    /// The report, as written.
    pub report: ReconcileReport,
    /// The folder of the files.
    pub out: PathBuf,
    /// Whether the lines of Teams rows in `mismatches.csv` were merged as they were read back
    /// (they came in time order) rather than through runs: for tests.
    #[doc(hidden)]
    pub teams_lines_streamed: bool,
}

impl ReconcileOutcome {
    /// 0 when everything reconciled, 1 when something did not (a call not matched, a billed
    /// duration that differs from the carrier's CDR, a rejected row).
    pub fn exit_code(&self) -> u8 {
        match self.report.verdict {
            ReconcileVerdict::Reconciled => crate::EXIT_PASSED,
            ReconcileVerdict::Mismatches => crate::EXIT_FAILED,
        }
    }
}

/// `--from`/`--to`: RFC 3339, or a date (`2026-01-05`, midnight UTC).
fn parse_bound(flag: &str, value: &str) -> Result<text::Nanos, ReconcileError> {
    let date_only = value.len() == 10 && value.as_bytes().get(4) == Some(&b'-');
    let full = if date_only {
        format!("{value}T00:00:00Z")
    } else {
        value.to_owned()
    };
    text::parse_rfc3339(full.as_bytes(), None)
        .map_err(|why| ReconcileError::BadInput(format!("{flag}: {why}: `{value}`")))
}

/// A `--from`/`--to` bound in Unix milliseconds (rounded down), for a live pull's window.
pub fn bound_millis(flag: &str, value: &str) -> Result<oc_protocol::UnixMillis, ReconcileError> {
    parse_bound(flag, value).map(|nanos| nanos.div_euclid(1_000_000))
}

/// Rejected rows as the report gives them, with the running line count of every file.
struct Rejections<'a> {
    side: &'static str,
    paths: &'a [PathBuf],
    next_line: Vec<u64>,
    /// Files not read past a chunk ([`Parsed::stopped`]): their later chunks are left out.
    stopped: Vec<bool>,
    /// [`Parsed::array_balance`] summed by file.
    array_balance: Vec<i64>,
    counts: RowCounts,
    limit: Option<u64>,
}

impl<'a> Rejections<'a> {
    fn new(side: &'static str, paths: &'a [PathBuf], limit: Option<u64>) -> Self {
        Self {
            side,
            paths,
            next_line: vec![1; paths.len()],
            stopped: vec![false; paths.len()],
            array_balance: vec![0; paths.len()],
            counts: RowCounts::default(),
            limit,
        }
    }

    /// Takes a chunk's counts and problems (in order): whether its rows are to be used (not
    /// when its file was not read past an earlier chunk); an error past `--max-errors`.
    fn take<R>(
        &mut self,
        parsed: &mut Parsed<R>,
        listed: &mut Vec<RowErrorEntry>,
        total_rejected: u64,
    ) -> Result<bool, ReconcileError> {
        let file = usize::from(parsed.file);
        if self.stopped[file] {
            return Ok(false);
        }
        self.stopped[file] = parsed.stopped;
        self.array_balance[file] += parsed.array_balance;
        let base = parsed.first_line.unwrap_or(self.next_line[file]);
        self.next_line[file] = base + parsed.lines;
        self.counts.read += parsed.read;
        self.counts.filtered += parsed.filtered;
        self.counts.rejected += parsed.problems.len() as u64;
        for Problem {
            line,
            column,
            field,
            message,
        } in parsed.problems.drain(..)
        {
            if listed.len() < ERRORS_LISTED {
                listed.push(RowErrorEntry {
                    side: self.side.into(),
                    file: self.paths[file].display().to_string(),
                    line: base + line,
                    column,
                    field,
                    message,
                });
            }
        }
        self.check(listed, total_rejected).map(|()| true)
    }

    /// After the last chunk: a JSON file whose top-level array does not close (cut short), or
    /// that closes one it did not open, is one more rejected row, at the line where it ends.
    fn finish(
        &mut self,
        listed: &mut Vec<RowErrorEntry>,
        total_rejected: u64,
    ) -> Result<(), ReconcileError> {
        for file in 0..self.paths.len() {
            let message = match self.array_balance[file] {
                0 => continue,
                _ if self.stopped[file] => continue,
                b if b > 0 => "the top-level JSON array does not close: the file ends early",
                _ => "a `]` closes no array",
            };
            self.counts.read += 1;
            self.counts.rejected += 1;
            if listed.len() < ERRORS_LISTED {
                listed.push(RowErrorEntry {
                    side: self.side.into(),
                    file: self.paths[file].display().to_string(),
                    line: self.next_line[file],
                    column: None,
                    field: None,
                    message: message.into(),
                });
            }
        }
        self.check(listed, total_rejected)
    }

    fn check(&self, listed: &[RowErrorEntry], total_rejected: u64) -> Result<(), ReconcileError> {
        match self.limit {
            Some(limit) if total_rejected + self.counts.rejected > limit => {
                Err(ReconcileError::TooManyErrors {
                    limit,
                    listed: listed.iter().take(20).cloned().collect(),
                })
            }
            _ => Ok(()),
        }
    }
}

/// What a parsing thread gives for a carrier chunk: its counts and problems, its rows by
/// partition (their heads looked up), and the `mismatches.csv` lines of its rows whose id
/// Teams does not have.
type CarrierChunk = (Parsed<CarrierRow>, Vec<Vec<CarrierRow>>, spill::Block);

/// Parses one job on a parsing thread, its rows kept in `rows` (one vector per partition): the
/// CSV parser puts each row in its partition as it reads it; the JSON ones keep theirs in one
/// vector, split here.
fn parse_teams(job: &Job, filters: &Filters, rows: Vec<Vec<ReadTeamsRow>>) -> Parsed<ReadTeamsRow> {
    let (mut parsed, unsplit) = match &job.kind {
        JobKind::Teams(teams::TeamsShape::Json) => (
            teams::parse_json(
                &job.data,
                job.offset,
                job.file,
                job.first_line,
                job.first_column,
                filters,
            ),
            Some(rows),
        ),
        JobKind::Teams(teams::TeamsShape::Ndjson) => (
            teams::parse_ndjson(&job.data, job.offset, job.file, job.first_line, filters),
            Some(rows),
        ),
        JobKind::Teams(teams::TeamsShape::Csv(columns)) => (
            teams::parse_csv(
                columns,
                &job.data,
                job.offset,
                job.file,
                job.first_line,
                filters,
                rows,
            ),
            None,
        ),
        JobKind::Carrier(_) => unreachable!("a carrier job among Teams jobs"),
    };
    if let Some(rows) = unsplit {
        parsed.repartition(rows, |r| r.row.id);
    }
    parsed.chunk_bytes = job.data.len() as u64;
    parsed
}

/// Reconciles, writes the files into `options.out`, and gives the report.
pub fn reconcile(options: &ReconcileOptions) -> Result<ReconcileOutcome, ReconcileError> {
    reconcile_tuned(options, Tuning::default())
}

/// How `mismatches.csv` is put together: for tests, which make the sizes small so that every
/// way is exercised on small inputs.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct Tuning {
    /// The bytes of lines a thread that makes them holds in memory at most: past it, sorted
    /// runs go to temporary files in the output folder.
    pub spill_bytes: usize,
    /// The lines of Teams rows read back in a block when they come in time order in their
    /// files, merged as they come; 0: never so, always through runs.
    pub window_lines: usize,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            spill_bytes: spill::SPILL_BYTES,
            window_lines: mismatches::WINDOW_LINES,
        }
    }
}

/// [`reconcile`], `mismatches.csv` put together as `tuning` says.
#[doc(hidden)]
pub fn reconcile_tuned(
    options: &ReconcileOptions,
    tuning: Tuning,
) -> Result<ReconcileOutcome, ReconcileError> {
    let started = Instant::now();
    let (format, format_name) = match &options.carrier_format {
        Some(path) => (
            format::load(path).map_err(|e| ReconcileError::BadInput(e.to_string()))?,
            path.display().to_string(),
        ),
        None => (
            format::parse(format::OC_HARNESS_FORMAT, "oc-harness.toml")
                .map_err(|e| ReconcileError::BadInput(e.to_string()))?,
            "oc-harness (bundled)".to_owned(),
        ),
    };
    if options.tolerance_ms < 0 {
        return Err(ReconcileError::BadInput(
            "--tolerance: must not be negative".into(),
        ));
    }
    let filters = Filters {
        operator: options.operator.clone(),
        from: options
            .from
            .as_deref()
            .map(|v| parse_bound("--from", v))
            .transpose()?,
        to: options
            .to
            .as_deref()
            .map(|v| parse_bound("--to", v))
            .transpose()?,
    };
    if let (Some(from), Some(to)) = (filters.from, filters.to)
        && from >= to
    {
        return Err(ReconcileError::BadInput(
            "--from must be before --to".into(),
        ));
    }
    let write_error = |path: &Path| {
        let path = path.display().to_string();
        move |source| ReconcileError::Write { path, source }
    };
    std::fs::create_dir_all(&options.out).map_err(write_error(&options.out))?;
    let tolerance = options.tolerance_ms * 1_000_000;
    let threads = options.threads.max(1);
    // The index in as many partitions as there are threads, each built and probed by a thread
    // of its own (matching decides an id from its own rows alone).
    let parts = threads;
    let mut listed = Vec::new();
    let mut charges = std::collections::BTreeMap::new();

    // Teams: parsed on the threads, indexed by partition in file order.
    let teams_bytes: u64 = options
        .teams
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    let mut teams_feeder = Feeder::new(&options.teams, None);
    let mut teams_rejections = Rejections::new("teams", &options.teams, options.max_errors);
    let mut reserved = false;
    let teams_vectors = Pool::new();
    let teams_pool = &teams_vectors;
    let states = partitioned(
        (0..parts)
            .map(|_| (Index::default(), Figures::new(tolerance)))
            .collect(),
        |(index, figures), (reserve, mut rows): (usize, Vec<ReadTeamsRow>)| {
            if reserve > 0 {
                index.reserve(reserve);
            }
            figures.teams_rows(&mut rows);
            index.insert_all(&rows);
            teams_pool.give(rows);
        },
        |send| {
            pipeline::run(
                &mut teams_feeder,
                threads,
                &|job| {
                    let rows = (0..parts).map(|_| teams_pool.take()).collect();
                    let mut parsed = parse_teams(job, &filters, rows);
                    let split = std::mem::take(&mut parsed.rows);
                    (parsed, split)
                },
                |(mut parsed, split): (Parsed<ReadTeamsRow>, Vec<Vec<ReadTeamsRow>>)| {
                    if !teams_rejections.take(&mut parsed, &mut listed, 0)? {
                        return Ok(());
                    }
                    for (currency, amount) in std::mem::take(&mut parsed.charges).into_sums() {
                        *charges.entry(currency).or_insert(0i64) += amount;
                    }
                    let rows: usize = split.iter().map(Vec::len).sum();
                    let mut reserve = 0;
                    if !reserved && parsed.chunk_bytes > 0 && rows > 0 {
                        // Room for as many rows as the inputs hold at the first chunk's
                        // density, so that the index does not grow by rehashing.
                        reserved = true;
                        let estimate = teams_bytes.saturating_mul(rows as u64) / parsed.chunk_bytes;
                        reserve =
                            usize::try_from(estimate.min(u64::from(u32::MAX))).unwrap_or(0) / parts;
                    }
                    for (k, rows) in split.into_iter().enumerate() {
                        send(k, (reserve, rows));
                    }
                    Ok(())
                },
            )
        },
    )?;
    // The vectors kept for Teams' rows are freed for the carrier's.
    drop(teams_vectors);
    teams_rejections.finish(&mut listed, 0)?;
    let teams_files = std::mem::take(&mut teams_feeder.files);
    let teams_done = started.elapsed().as_secs_f64();
    let mut known = figures::KnownNumbers::default();
    for (_, figures) in &states {
        figures.numbers_known(&mut known);
    }

    // The carrier: streamed past the index; rows without an id kept aside for the end.
    let mut carrier_feeder = Feeder::new(&options.carrier, Some(&format));
    let mut carrier_rejections = Rejections::new("carrier", &options.carrier, options.max_errors);
    let teams_rejected = teams_rejections.counts.rejected;
    let carrier_pool = Pool::new();
    let carrier_pool = &carrier_pool;
    let parse_carrier = |job: &Job| match &job.kind {
        JobKind::Carrier(columns) => carrier::parse_csv(
            &format,
            columns,
            &job.data,
            job.offset,
            job.file,
            job.first_line,
            &filters,
            (0..parts).map(|_| carrier_pool.take()).collect(),
        ),
        JobKind::Teams(_) => unreachable!("a Teams job among carrier jobs"),
    };
    let known = &known;
    let mut indexes = Vec::with_capacity(parts);
    let mut all_figures = Vec::with_capacity(parts);
    for (index, figures) in states {
        indexes.push(index);
        all_figures.push(figures);
    }
    let indexes = indexes;
    let teams_kept: usize = indexes.iter().map(|index| index.len() as usize).sum();
    // The `mismatches.csv` lines of the carrier rows whose id Teams does not have at all,
    // made while their text is in hand: neither kept as rows nor read again from the files.
    let mismatches_path = options.out.join("mismatches.csv");
    let mut streamed = spill::Spill::new(&options.out, "streamed", tuning.spill_bytes);
    let states = partitioned(
        all_figures
            .into_iter()
            .enumerate()
            .map(|(k, mut figures)| {
                // The first partition's room is for every partition's drifts, which are
                // merged into it at the end: copied once, into room that was never touched,
                // rather than grown (a copy of its own and twice the fresh memory).
                let pairs = if k == 0 {
                    teams_kept
                } else {
                    indexes[k].len() as usize
                };
                figures.reserve_pairs(pairs);
                (k, Claims::new(indexes[k].len()), figures, Vec::new())
            })
            .collect(),
        |(k, claims, figures, idless), rows: Vec<CarrierRow>| {
            let index = &indexes[*k];
            for batch in rows.chunks(figures::TOUCH_BATCH) {
                // The Teams rows that the claims read, and their numbers' sums, are read
                // first, all of them, so that their cache misses overlap.
                figures.touch(
                    batch
                        .iter()
                        .filter(|row| row.head != rows::NONE)
                        .map(|row| index.row(row.head)),
                );
                for row in batch {
                    figures.carrier(row);
                    if row.id == 0 {
                        idless.push(*row);
                        continue;
                    }
                    match index.claim_from(claims, row.head, row.connect) {
                        Some(i) => figures.pair(row_ref(*k, i), index.row(i), row),
                        // Without a head, the row's line was made on its parsing thread.
                        None => figures.unexpected(row, known, row.head != rows::NONE),
                    }
                }
            }
            carrier_pool.give(rows);
        },
        |send| {
            pipeline::run(
                &mut carrier_feeder,
                threads,
                &|job| {
                    let mut parsed = parse_carrier(job);
                    let mut split = std::mem::take(&mut parsed.rows);
                    // The lookups, which miss the cache, here on the parsing threads; claims
                    // do not change a chain's head, so they hold when the rows are claimed.
                    let mut lines = spill::Block::default();
                    let (mut ids, mut heads) = (Vec::new(), Vec::new());
                    for (rows, index) in split.iter_mut().zip(&indexes) {
                        ids.clear();
                        ids.extend(rows.iter().map(|row| row.id));
                        index.heads(&ids, &mut heads);
                        let mut table = [0; _];
                        for (row, &head) in rows.iter_mut().zip(&heads) {
                            row.head = head;
                            if head == rows::NONE
                                && row.id != 0
                                && let JobKind::Carrier(columns) = &job.kind
                            {
                                let at =
                                    (source::unpack_source(row.source).1 - job.offset) as usize;
                                let text = mismatches::Text::carrier(
                                    &format,
                                    columns,
                                    &job.data[at..],
                                    &mut table,
                                );
                                mismatches::push_unexpected(&mut lines, row, &text);
                            }
                        }
                    }
                    (parsed, split, lines)
                },
                |(mut parsed, split, mut lines): CarrierChunk| {
                    if !carrier_rejections.take(&mut parsed, &mut listed, teams_rejected)? {
                        return Ok(());
                    }
                    streamed
                        .add(&mut lines)
                        .map_err(write_error(&mismatches_path))?;
                    for (k, rows) in split.into_iter().enumerate() {
                        send(k, rows);
                    }
                    Ok(())
                },
            )
        },
    )?;
    let carrier_files = std::mem::take(&mut carrier_feeder.files);
    let mut all_claims = Vec::with_capacity(parts);
    let mut all_figures = Vec::with_capacity(parts);
    let mut idless = Vec::new();
    for (_, claims, figures, rows) in states {
        all_claims.push(claims);
        all_figures.push(figures);
        idless.extend(rows);
    }
    let (teams_paths, teams_kinds): (Vec<InputFile>, Vec<JobKind>) =
        teams_files.into_iter().unzip();
    let (carrier_paths, carrier_kinds): (Vec<InputFile>, Vec<JobKind>) =
        carrier_files.into_iter().unzip();
    let sides = mismatches::Sides {
        teams: &options.teams,
        teams_kinds: &teams_kinds,
        carrier: &options.carrier,
        carrier_kinds: &carrier_kinds,
        format: &format,
    };
    // Rows without an id are all in the first partition, in file order; the numbers of the
    // Teams rows they may match are read back for them.
    let pairs = match idless.is_empty() {
        true => Vec::new(),
        false => pairs::unclaimed_pairs(&indexes, &all_claims, &sides).map_err(|e| {
            ReconcileError::BadInput(format!("cannot read the Teams files again: {e}"))
        })?,
    };
    for (row, matched) in idless.iter().zip(matching::claim_by_numbers(
        &indexes,
        &mut all_claims,
        &pairs,
        &idless,
        tolerance,
    )) {
        match matched {
            Some(r) => all_figures[(r >> 32) as usize].pair(r, matching::row_of(&indexes, r), row),
            None => all_figures[0].unexpected(row, known, true),
        }
    }
    drop((idless, pairs));
    std::thread::scope(|scope| {
        for ((index, figures), claims) in
            indexes.iter().zip(all_figures.iter_mut()).zip(&all_claims)
        {
            scope.spawn(move || {
                // Found a word of claims at a time: most rows are claimed, and are not read.
                let mut i = claims.first_unclaimed(0, index.len());
                while i < index.len() {
                    figures.missing(index.row(i));
                    i = claims.first_unclaimed(i + 1, index.len());
                }
            });
        }
    });
    // The mismatches of each partition, kept apart (not copied into one list: fresh memory).
    let mut found: Vec<Vec<_>> = all_figures
        .iter_mut()
        .map(|figures| std::mem::take(&mut figures.mismatches))
        .collect();

    let carrier_done = started.elapsed().as_secs_f64();
    let mut teams_rows = teams_rejections.counts;
    teams_rows.reconciled = indexes.iter().map(|i| u64::from(i.len())).sum();
    let mut carrier_rows = carrier_rejections.counts;
    carrier_rows.reconciled = all_figures
        .iter()
        .map(|f| {
            let classes = f.classes();
            classes.matched + classes.drift + classes.unexpected
        })
        .sum();
    // The figures (the partitions' merged, the drifts sorted for their percentiles) on a
    // thread of their own while `mismatches.csv` is written.
    let top_numbers = options.top_numbers;
    let (finished, mismatch_lines) = std::thread::scope(|scope| {
        let finishing = scope.spawn(move || {
            let mut all_figures = all_figures.into_iter();
            let mut figures = all_figures
                .next()
                .unwrap_or_else(|| Figures::new(tolerance));
            for other in all_figures {
                figures.merge(other);
            }
            figures.finish(top_numbers)
        });
        let lines = mismatches::write(
            &options.out,
            &mut found,
            &indexes,
            &all_claims,
            &sides,
            streamed,
            (tuning.spill_bytes, threads, tuning.window_lines),
        );
        (finishing.join(), lines)
    });
    let (mismatch_lines, teams_lines_streamed) =
        mismatch_lines.map_err(write_error(&mismatches_path))?;
    let finished = finished.map_err(|_| {
        ReconcileError::BadInput(
            "the figures' thread stopped unexpectedly (a bug: please report it)".into(),
        )
    })?;
    let rejected = teams_rows.rejected + carrier_rows.rejected;
    let reconciled =
        finished.classes.drift + finished.classes.missing + finished.classes.unexpected == 0
            && finished.sources.operator_billed_differs == 0
            && rejected == 0;
    let mut report = ReconcileReport {
        schema_version: RECONCILE_SCHEMA_VERSION,
        kind: "reconcile".into(),
        harness_version: env!("CARGO_PKG_VERSION").into(),
        verdict: if reconciled {
            ReconcileVerdict::Reconciled
        } else {
            ReconcileVerdict::Mismatches
        },
        inputs: ReconcileInputs {
            teams: teams_paths,
            carrier: carrier_paths,
            carrier_format: format_name,
            tolerance_ms: options.tolerance_ms,
            from: filters.from.map(text::format_rfc3339),
            to: filters.to.map(text::format_rfc3339),
            operator: options.operator.clone(),
        },
        teams_rows,
        carrier_rows,
        classes: finished.classes,
        drift: finished.drift,
        duration_source: finished.sources,
        minutes: finished.minutes,
        charges: Charges {
            teams: charges
                .into_iter()
                .map(|(currency, amount)| Charge {
                    currency,
                    amount: amount as f64 / 1e6,
                })
                .collect(),
            carrier: format
                .charge
                .is_some()
                .then_some(finished.carrier_charge as f64 / 1e6),
        },
        by_day: finished.by_day,
        top_numbers: finished.top_numbers,
        distinct_numbers: finished.distinct_numbers,
        errors: listed,
        mismatch_lines,
        timing: ReconcileTiming::default(),
    };
    // Up to the report files themselves, which take milliseconds.
    let total = started.elapsed().as_secs_f64();
    report.timing = ReconcileTiming {
        teams_seconds: teams_done,
        carrier_seconds: carrier_done - teams_done,
        output_seconds: total - carrier_done,
        total_seconds: total,
    };
    report
        .write_all(&options.out)
        .map_err(|e| ReconcileError::Write {
            path: e.path,
            source: e.source,
        })?;
    Ok(ReconcileOutcome {
        report,
        out: options.out.clone(),
        teams_lines_streamed,
    })
}
