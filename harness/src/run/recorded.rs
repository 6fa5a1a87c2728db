//! Calls the harness itself makes to the carrier (state probes, forged notifications, call
//! legs), each recorded as an exchange beside Teams' own so that rules can cite it, each with a
//! timeout of its own that its error names; a post that a carrier may get twice is sent again
//! while its connection closed unanswered.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mock_teams::{HarnessCall, HarnessCalls};
use oc_observe::ExchangeDetail;
use oc_protocol::UnixMillis;

/// Where the harness's own calls to the carrier are recorded (beside Teams' exchanges, so that
/// rules can cite them), and as which carrier.
#[derive(Clone, Copy)]
pub(crate) struct Recording<'a> {
    pub(crate) calls: &'a HarnessCalls,
    pub(crate) carrier: &'a str,
    /// Simulated time now.
    pub(crate) sim_time: UnixMillis,
}

/// What became of one recorded call: the status, the body (read up to a limit) or why there
/// is none, and the exchange's `seq`.
pub(crate) struct Answer {
    pub(crate) status: Option<u16>,
    pub(crate) body: Result<Vec<u8>, String>,
    pub(crate) seq: u64,
    /// No answer came, and not for want of time: the connection failed or closed first.
    pub(crate) unanswered: bool,
}

/// One request to the carrier, as [`send`] makes and records it.
#[derive(Clone)]
pub(crate) struct Request<'a> {
    pub(crate) method: reqwest::Method,
    pub(crate) url: &'a str,
    pub(crate) headers: &'a [(&'a str, String)],
    pub(crate) body: Vec<u8>,
    /// The most of the answer's body read.
    pub(crate) limit: usize,
    /// The longest the request may take, from connecting to the answer's last byte (it
    /// overrides the client's own).
    pub(crate) timeout: Duration,
    /// What the exchange is about, for the checker.
    pub(crate) detail: ExchangeDetail,
}

/// One call to the carrier, recorded as an exchange with its `detail`.
pub(crate) async fn send(
    client: &reqwest::Client,
    rec: Recording<'_>,
    request: Request<'_>,
) -> Answer {
    let Request {
        method,
        url,
        headers,
        body,
        limit,
        timeout,
        detail,
    } = request;
    let wall_time_ms = wall_ms();
    let started = std::time::Instant::now();
    let mut request = client.request(method.clone(), url).timeout(timeout);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    if !body.is_empty() {
        request = request.body(body.clone());
    }
    let (status, answer, unanswered) = match request.send().await {
        Err(err) => (None, Err(transport_error(&err, timeout)), !err.is_timeout()),
        Ok(response) => {
            let status = response.status().as_u16();
            (
                Some(status),
                read_limited(response, limit, timeout).await,
                false,
            )
        }
    };
    let header_refs: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let recorded = match (status, &answer) {
        (Some(status), Ok(b)) => Ok((status, b.as_slice())),
        (Some(status), Err(_)) => Ok((status, &[][..])),
        (None, Err(why)) => Err(why.clone()),
        (None, Ok(_)) => Err("no answer".to_owned()),
    };
    let seq = rec.calls.record(HarnessCall {
        carrier: rec.carrier,
        method: method.as_str(),
        url,
        headers: &header_refs,
        body: &body,
        sim_time: rec.sim_time,
        wall_time_ms,
        latency: started.elapsed(),
        answer: recorded,
        detail,
    });
    Answer {
        status,
        body: answer,
        seq,
        unanswered,
    }
}

/// How long [`send_until_answered`] waits before each new attempt.
pub(crate) const RESEND_AFTER: [Duration; 2] = [Duration::from_millis(250), Duration::from_secs(1)];

/// [`send`], sent again after each wait of [`RESEND_AFTER`] while the connection failed or
/// closed before any answer; each attempt is recorded. HTTP/1.1 has a race no client avoids: a
/// server closes a kept-alive connection as a request goes out on it, and the request is lost
/// unanswered ("connection closed before message completed"; an hour of legs at 200 a second
/// lost 30 so, each a call the carrier then never knew of). Only for posts a carrier may get
/// twice: a leg is identified by its call id (PROTOCOL 2.3). A post that timed out is not sent
/// again: the carrier had it and was slow, which is for the figures to show.
pub(crate) async fn send_until_answered(
    client: &reqwest::Client,
    rec: Recording<'_>,
    request: Request<'_>,
) -> Answer {
    let mut waits = RESEND_AFTER.iter();
    loop {
        let answer = send(client, rec, request.clone()).await;
        match waits.next() {
            Some(wait) if answer.unanswered => tokio::time::sleep(*wait).await,
            _ => return answer,
        }
    }
}

/// Wall-clock Unix ms: signatures' `t`, and simulated time in a certification.
pub(crate) fn wall_ms() -> UnixMillis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Wall-clock Unix seconds, for an `OC-Signature`'s `t`.
pub(crate) fn wall_secs() -> i64 {
    wall_ms() / 1000
}

/// Reads at most `limit` bytes of a body: a carrier that streams without end is cut off;
/// `timeout`: the request's, for the error that names it.
pub(crate) async fn read_limited(
    mut response: reqwest::Response,
    limit: usize,
    timeout: Duration,
) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > limit {
                    return Err(format!("the answer is longer than {limit} bytes"));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(err) => {
                return Err(format!(
                    "the answer broke off: {}",
                    transport_error(&err, timeout)
                ));
            }
        }
    }
}

/// A transport error with its causes, e.g. "error sending request: connection reset by peer";
/// `timeout`: the request's, named when it ran out.
pub(crate) fn transport_error(err: &reqwest::Error, timeout: Duration) -> String {
    let mut text = if err.is_timeout() {
        format!("no answer within {}", describe_timeout(timeout))
    } else {
        err.to_string()
    };
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
        source = cause_source(source);
    }
    text
}

/// `5s`, or `300 ms` for a timeout that is not whole seconds.
fn describe_timeout(timeout: Duration) -> String {
    if timeout.subsec_millis() == 0 {
        format!("{}s", timeout.as_secs())
    } else {
        format!("{} ms", timeout.as_millis())
    }
}

fn cause_source<'a>(
    error: Option<&'a (dyn std::error::Error + 'static)>,
) -> Option<&'a (dyn std::error::Error + 'static)> {
    error.and_then(std::error::Error::source)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where the tests' calls are recorded: one carrier, at a fixed simulated time.
    fn at_start(calls: &mock_teams::HarnessCalls) -> Recording<'_> {
        Recording {
            calls,
            carrier: "carrier",
            sim_time: 1_790_000_000_000,
        }
    }

    /// Reads one HTTP/1.1 request (headers, then a `content-length` body) from `socket`;
    /// returns its body.
    async fn read_request(socket: &mut tokio::net::TcpStream) -> Vec<u8> {
        use tokio::io::AsyncReadExt as _;
        let mut bytes = Vec::new();
        let mut buffer = [0u8; 4096];
        loop {
            let n = socket.read(&mut buffer).await.expect("read the request");
            assert!(n > 0, "the connection closed mid-request");
            bytes.extend_from_slice(&buffer[..n]);
            let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            let head = String::from_utf8_lossy(&bytes[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().expect("a content length"));
            if bytes.len() >= end + 4 + length {
                return bytes[end + 4..end + 4 + length].to_vec();
            }
        }
    }

    /// A carrier whose first connection closes once the request is in, unanswered (a
    /// kept-alive connection closed as the request went out), then answers `202`: the post is
    /// sent again and gets there, each attempt recorded.
    #[actix_rt::test]
    async fn a_post_lost_to_a_closed_connection_is_sent_again_until_answered() {
        use tokio::io::AsyncWriteExt as _;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!(
            "http://{}/oc/v1/test/call-legs",
            listener.local_addr().expect("addr")
        );
        let carrier = tokio::spawn(async move {
            let mut received = Vec::new();
            let (mut first, _) = listener.accept().await.expect("accept");
            received.push(read_request(&mut first).await);
            drop(first);
            let (mut second, _) = listener.accept().await.expect("accept");
            received.push(read_request(&mut second).await);
            let answer = b"HTTP/1.1 202 Accepted\r\ncontent-type: application/json\r\n\
                           content-length: 14\r\n\r\n{\"accepted\":1}";
            second.write_all(answer).await.expect("answer");
            received
        });
        let exchanges = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut options = mock_teams::TeamsOptions::loopback(1_790_000_000_000);
        let sink = exchanges.clone();
        options.sink = std::sync::Arc::new(move |e| sink.lock().expect("sink").push(e));
        let teams = mock_teams::MockTeams::start(options).await.expect("Teams");
        let calls = teams.harness_calls();
        let body = br#"{"legs":[]}"#.to_vec();
        let answer = tokio::time::timeout(
            Duration::from_secs(20),
            send_until_answered(
                &reqwest::Client::new(),
                at_start(&calls),
                Request {
                    method: reqwest::Method::POST,
                    url: &url,
                    headers: &[("content-type", "application/json".to_owned())],
                    body: body.clone(),
                    limit: 1024,
                    timeout: Duration::from_secs(5),
                    detail: ExchangeDetail::CallLegs {
                        call_ids: vec!["call-1".to_owned()],
                    },
                },
            ),
        )
        .await
        .expect("answered within 20 s");
        assert_eq!(answer.status, Some(202));
        assert_eq!(answer.body.as_deref(), Ok(&br#"{"accepted":1}"#[..]));
        let received = tokio::time::timeout(Duration::from_secs(5), carrier)
            .await
            .expect("the carrier finished")
            .expect("the carrier's task");
        assert_eq!(received, vec![body.clone(), body]);
        let statuses: Vec<(Option<u16>, bool)> = exchanges
            .lock()
            .expect("exchanges")
            .iter()
            .map(|e| (e.status, e.error.is_some()))
            .collect();
        assert_eq!(statuses, vec![(None, true), (Some(202), false)]);
    }

    /// A post the carrier keeps without answering is not sent again: it timed out, and the
    /// carrier has it.
    #[actix_rt::test]
    async fn a_post_that_timed_out_is_not_sent_again() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        let carrier = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            read_request(&mut socket).await;
            // Held, unanswered, until the client gives up; a second connection would be a
            // second attempt.
            tokio::time::timeout(Duration::from_secs(2), listener.accept())
                .await
                .is_ok()
        });
        let options = mock_teams::TeamsOptions::loopback(1_790_000_000_000);
        let teams = mock_teams::MockTeams::start(options).await.expect("Teams");
        let calls = teams.harness_calls();
        // The client's own timeout is longer: the request's is the one that holds.
        let patient = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("a client");
        let answer = send_until_answered(
            &patient,
            at_start(&calls),
            Request {
                method: reqwest::Method::POST,
                url: &url,
                headers: &[],
                body: b"{}".to_vec(),
                limit: 1024,
                timeout: Duration::from_millis(300),
                detail: ExchangeDetail::CallLegs {
                    call_ids: Vec::new(),
                },
            },
        )
        .await;
        assert_eq!(answer.status, None);
        assert!(!answer.unanswered, "a timeout is not sent again");
        let why = answer.body.expect_err("no body");
        assert!(why.starts_with("no answer within 300 ms"), "{why}");
        let again = tokio::time::timeout(Duration::from_secs(5), carrier)
            .await
            .expect("the carrier finished")
            .expect("the carrier's task");
        assert!(!again, "the post was sent a second time");
    }
}
