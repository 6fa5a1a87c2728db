//! Carriers that cannot be certified and must not hurt the harness: one that never answers,
//! and one that answers garbage, resets connections and floods the Teams API. Each gets a
//! written report, a clean "not certified" and an exit within the time limit.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use oc_reports::{CertificationVerdict, Outcome};

use super::{CERTIFY_LIMIT, case_outcomes, start_certify};

/// A TCP server on a free loopback port that treats every connection with `serve`, until
/// dropped.
struct RawServer {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl RawServer {
    fn start(serve: impl Fn(u64, TcpStream) + Send + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("an address").port();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            let mut n = 0u64;
            // Bounded by the stop flag and, in any case, by the longest certification.
            let deadline = Instant::now() + CERTIFY_LIMIT;
            while !stopping.load(Ordering::Relaxed) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((stream, _)) => {
                        n += 1;
                        let _ = stream.set_nonblocking(false);
                        let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
                        if let Ok(copy) = stream.try_clone() {
                            held.push(copy);
                        }
                        serve(n, stream);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        Self {
            port,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[test]
fn a_carrier_that_never_answers_fails_cleanly_within_the_wait() {
    // Accepts every connection and never says a word.
    let server = RawServer::start(|_, _| {});
    let started = Instant::now();
    let certification = start_certify(&server.url(), "silent", &["--ready-timeout", "3s"]);
    let finished = certification.finish(started);
    assert_eq!(finished.code, 1, "not certified is exit 1");
    assert!(
        finished.took < Duration::from_secs(60),
        "took {:?} for a 3 s wait",
        finished.took
    );
    let certification = finished.certification();
    assert_eq!(certification.verdict, CertificationVerdict::NotCertified);
    let aborted = certification.aborted.as_deref().expect("why it stopped");
    assert!(aborted.contains("did not answer within 3 s"), "{aborted}");
    for (id, outcome) in case_outcomes(&finished.report) {
        assert_eq!(outcome, Outcome::NotExercised, "{id}");
    }
    assert!(
        finished.stdout.iter().any(|l| l.contains("NOT CERTIFIED")),
        "{:#?}",
        finished.stdout
    );
}

/// Garbage: every other connection gets bytes that are not HTTP and a close; the others an
/// HTTP 200 whose body is not JSON.
fn garbage(n: u64, mut stream: TcpStream) {
    let mut buffer = [0u8; 4096];
    let _ = stream.read(&mut buffer);
    if n.is_multiple_of(2) {
        let _ = stream.write_all(b"\x16\x03\x01\x00garbage, not HTTP\r\n\r\n");
    } else {
        let _ = stream.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 12\r\n\
              Connection: close\r\n\r\n{not json!!",
        );
    }
    let _ = stream.shutdown(std::net::Shutdown::Both);
}

/// Sends requests to the Teams API as fast as it can with the carrier's token, never waiting
/// out a 429, for at most `length` or `max` requests; returns how many got an answer.
fn flood(teams_url: &str, token: &str, length: Duration, max: u64) -> u64 {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let answered = Arc::new(AtomicU64::new(0));
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let url = format!("{teams_url}/oc/v1/cdrs/delta");
        let until = Instant::now() + length;
        let mut sent = 0u64;
        while Instant::now() < until && sent < max {
            let batch: Vec<_> = (0..16)
                .map(|_| client.get(&url).bearer_auth(token).send())
                .collect();
            sent += 16;
            for answer in futures_util::future::join_all(batch).await {
                if answer.is_ok() {
                    answered.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    });
    answered.load(Ordering::Relaxed)
}

#[test]
fn a_carrier_speaking_garbage_and_flooding_fails_cleanly() {
    let server = RawServer::start(garbage);
    let started = Instant::now();
    let certification = start_certify(&server.url(), "garbage", &[]);
    let answered = flood(
        &certification.setup.teams_url,
        &certification.setup.token,
        Duration::from_secs(15),
        20_000,
    );
    assert!(
        answered > 100,
        "the Teams API answered only {answered} requests"
    );
    let finished = certification.finish(started);
    assert_eq!(finished.code, 1, "not certified is exit 1");
    assert!(finished.took < CERTIFY_LIMIT);
    let certification = finished.certification();
    assert_eq!(certification.verdict, CertificationVerdict::NotCertified);
    assert!(
        certification.aborted.is_none(),
        "{:?}",
        certification.aborted
    );
    let outcomes = case_outcomes(&finished.report);
    let outcome = |id: &str| {
        outcomes
            .iter()
            .find(|(case, _)| case == id)
            .map(|(_, o)| *o)
            .unwrap_or_else(|| panic!("no case {id}"))
    };
    // Garbage is no state; a 200 to a forged notification is no refusal; requests after a 429
    // without waiting are early.
    assert_eq!(outcome("provisioning-convergence"), Outcome::Failed);
    assert_eq!(
        outcome("forged-and-replayed-notifications"),
        Outcome::Failed
    );
    assert_eq!(outcome("throttling"), Outcome::Failed);
    let evidence = std::fs::read_to_string(finished.out.join("report/evidence.ndjson"))
        .expect("evidence.ndjson");
    assert!(!evidence.is_empty(), "failures come with their exchanges");
}
