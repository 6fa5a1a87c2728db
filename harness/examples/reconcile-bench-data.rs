//! Writes the two inputs of `scripts/bench-reconcile.sh`: `teams.csv` (the CSV shape of
//! `m365 teams report pstncalls`, a subset of its columns) and `carrier.csv` (the shape of
//! `oc-harness run --export`), ROWS rows each, seeded: about 3 % of Teams' calls have no
//! carrier row (missing), as many carrier rows have no Teams call (unexpected), 5 % drift by
//! more than the 1 s tolerance, the rest by less; 5 % of Teams' rows fell back to Microsoft's
//! duration. Every call id is a distinct UUID; times have microsecond precision (Teams' seven
//! digits end in 0) so that DuckDB's timestamps read them exactly.
//!
//! `cargo run --release -p oc-harness --example reconcile-bench-data -- ROWS SEED DIR`

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn digits(out: &mut Vec<u8>, value: i64, width: usize) {
    let mut buffer = [b'0'; 20];
    let mut v = value.unsigned_abs();
    let mut i = buffer.len();
    while v > 0 || buffer.len() - i < width {
        i -= 1;
        buffer[i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
    if value < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&buffer[i..]);
}

/// `2026-01-05T10:00:00.123456` + `fraction_tail` + `Z` from microseconds since the epoch.
fn timestamp(out: &mut Vec<u8>, us: i64, fraction_digits: usize) {
    let (days, rest) = (us.div_euclid(86_400_000_000), us.rem_euclid(86_400_000_000));
    let (year, month, day) = oc_protocol::timestamp::civil_from_days(days);
    let seconds = rest / 1_000_000;
    digits(out, year, 4);
    out.push(b'-');
    digits(out, month, 2);
    out.push(b'-');
    digits(out, day, 2);
    out.push(b'T');
    digits(out, seconds / 3600, 2);
    out.push(b':');
    digits(out, seconds / 60 % 60, 2);
    out.push(b':');
    digits(out, seconds % 60, 2);
    out.push(b'.');
    match fraction_digits {
        3 => digits(out, rest % 1_000_000 / 1000, 3),
        _ => {
            digits(out, rest % 1_000_000, 6);
            out.push(b'0');
        }
    }
    out.push(b'Z');
}

fn uuid(out: &mut Vec<u8>, rng: &mut ChaCha8Rng) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bits: u128 = rng.random();
    for (i, shift) in (0..32).rev().enumerate() {
        if matches!(i, 8 | 12 | 16 | 20) {
            out.push(b'-');
        }
        out.push(HEX[(bits >> (shift * 4)) as usize & 15]);
    }
}

fn number(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(b"+1");
    digits(out, n as i64, 10);
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, rows, seed, dir] = args.as_slice() else {
        eprintln!("usage: reconcile-bench-data ROWS SEED DIR");
        std::process::exit(2);
    };
    let rows: u64 = rows.parse().expect("ROWS is a whole number");
    let seed: u64 = seed.parse().expect("SEED is a whole number");
    let dir = Path::new(dir);
    std::fs::create_dir_all(dir)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut teams = BufWriter::with_capacity(8 << 20, File::create(dir.join("teams.csv"))?);
    let mut carrier = BufWriter::with_capacity(8 << 20, File::create(dir.join("carrier.csv"))?);
    teams.write_all(b"callId,startDateTime,endDateTime,duration,charge,callType,currency,callerNumber,calleeNumber,operator,callDurationSource\n")?;
    carrier
        .write_all(b"call_id,calling_number,called_number,connect_time,end_time,duration_ms\n")?;
    // A month from 2026-01-01, calls evenly spread.
    let start_us = 1_767_225_600_000_000i64;
    let step_us = 30 * 86_400_000_000 / rows.max(1) as i64;
    let (mut t, mut c) = (Vec::with_capacity(256), Vec::with_capacity(256));
    let users = 100_000u64;
    for i in 0..rows as i64 {
        t.clear();
        c.clear();
        let at = start_us + i * step_us + rng.random_range(0..step_us.max(1));
        let user = 4_255_000_000 + rng.random_range(0..users);
        let other = 2_065_000_000 + rng.random_range(0..9_000_000);
        let outbound = rng.random_bool(0.6);
        let measured_us = rng.random_range(1_000_000..1_800_000_000i64);
        let kind: f64 = rng.random();
        // Missing, unexpected (a carrier row of another call instead), drift, or matched.
        let (teams_row, carrier_row, drift_us) = if kind < 0.03 {
            (true, false, 0)
        } else if kind < 0.06 {
            (false, true, 0)
        } else if kind < 0.11 {
            let magnitude = rng.random_range(1_001_000..30_000_000i64);
            (
                true,
                true,
                if rng.random_bool(0.5) {
                    magnitude
                } else {
                    -magnitude
                },
            )
        } else {
            (
                true,
                true,
                rng.random_range(-250_000..=250_000i64) / 1000 * 1000,
            )
        };
        let carrier_ms = ((measured_us + drift_us) / 1000).max(0);
        let (caller, callee) = if outbound {
            (user, other)
        } else {
            (other, user)
        };
        let mut id = Vec::with_capacity(36);
        uuid(&mut id, &mut rng);
        if teams_row {
            let microsoft = rng.random_bool(0.05);
            let billed = if microsoft || !carrier_row {
                (measured_us + 999_999) / 1_000_000
            } else {
                (carrier_ms + 999) / 1000
            };
            t.extend_from_slice(&id);
            t.push(b',');
            timestamp(&mut t, at, 7);
            t.push(b',');
            timestamp(&mut t, at + measured_us, 7);
            t.push(b',');
            digits(&mut t, billed, 1);
            t.extend_from_slice(if outbound {
                b",0.01,user_out,USD,"
            } else {
                b",0,user_in,USD,"
            });
            number(&mut t, caller);
            t.push(b',');
            number(&mut t, callee);
            t.extend_from_slice(if microsoft {
                b",Contoso Telecom,microsoft\n"
            } else {
                b",Contoso Telecom,operator\n"
            });
            teams.write_all(&t)?;
        }
        if carrier_row {
            c.extend_from_slice(&id);
            c.push(b',');
            number(&mut c, caller);
            c.push(b',');
            number(&mut c, callee);
            c.push(b',');
            let connect = at / 1000 * 1000;
            timestamp(&mut c, connect, 3);
            c.push(b',');
            timestamp(&mut c, connect + carrier_ms * 1000, 3);
            c.push(b',');
            digits(&mut c, carrier_ms, 1);
            c.push(b'\n');
            carrier.write_all(&c)?;
        }
    }
    teams.flush()?;
    carrier.flush()?;
    Ok(())
}
