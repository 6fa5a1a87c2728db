//! Hostile clients of the carrier API: trickled bodies are cut off at the deadline, bodies past
//! the budget and connections past an address's cap get `503` with `Retry-After`, unsigned
//! webhooks are refused unread, and every path names its methods.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mock_carrier::MockCarrier;
use oc_protocol::signing::{SIGNATURE_HEADER, sign};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::timeout;

use crate::teams::{FakeTeams, SECRET};
use crate::webhooks::unix_now;

/// Sends a POST head to `path` declaring `length` bytes, then `sent` of them.
pub(crate) async fn stalled_post(
    addr: SocketAddr,
    path: &str,
    signature: Option<String>,
    length: usize,
    sent: usize,
) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let signature = signature.map_or(String::new(), |s| format!("{SIGNATURE_HEADER}: {s}\r\n"));
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\n{signature}Content-Type: application/json\r\n\
         Content-Length: {length}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // The server may answer and close before it has all of it.
    let _ = stream.write_all(&vec![b' '; sent]).await;
    stream
}

/// A signature that passes every check but the HMAC: fresh, well-formed, wrong.
pub(crate) fn fresh_wrong_signature() -> String {
    sign(SECRET.as_bytes(), unix_now(), b"another body")
}

/// The answer's head, or `""` when the server closed without one.
pub(crate) async fn answer(stream: &mut TcpStream, within: Duration) -> Option<String> {
    let mut buf = vec![0; 16 * 1024];
    match timeout(within, stream.read(&mut buf)).await {
        Ok(Ok(n)) => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
        Ok(Err(_)) => Some(String::new()),
        Err(_) => None,
    }
}

const WEBHOOK: &str = oc_protocol::paths::NUMBER_ASSIGNMENTS;

/// Issue 12: a trickled body was never given up on. Now each is answered `400` and closed at
/// the body deadline.
#[tokio::test]
async fn trickled_bodies_are_cut_off_at_the_deadline() {
    let teams = FakeTeams::start(10).await;
    let mut config = teams.config();
    config.limits.body_deadline_ms = 500;
    let carrier = MockCarrier::start(config).unwrap();
    let mut stalled = Vec::new();
    for _ in 0..20 {
        let signature = Some(fresh_wrong_signature());
        stalled.push(stalled_post(carrier.addr(), WEBHOOK, signature, 1_000, 10).await);
    }
    for stream in &mut stalled {
        let head = answer(stream, Duration::from_secs(10))
            .await
            .expect("answered within 10 s of a 0.5 s deadline");
        assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    }
    carrier.stop().await;
}

/// An unsigned or stale webhook is refused before its body is read: nothing is held for it.
#[tokio::test]
async fn unsigned_and_stale_webhooks_are_refused_unread() {
    let teams = FakeTeams::start(10).await;
    let carrier = MockCarrier::start(teams.config()).unwrap();
    let stale = sign(SECRET.as_bytes(), unix_now() - 3_600, b"{}");
    for signature in [None, Some(stale), Some("t=1".to_owned())] {
        let mut stream = stalled_post(
            carrier.addr(),
            WEBHOOK,
            signature.clone(),
            oc_protocol::MAX_BODY_BYTES,
            0,
        )
        .await;
        let head = answer(&mut stream, Duration::from_secs(5))
            .await
            .expect("answered without the body");
        assert!(head.starts_with("HTTP/1.1 401"), "{signature:?}: {head}");
    }
    carrier.stop().await;
}

/// Issue 12: 150 stalled 1 MB bodies held 214 MB. Bodies past the budget now get `503` with
/// `Retry-After`, unread.
#[tokio::test]
async fn bodies_past_the_budget_get_503_with_retry_after() {
    let teams = FakeTeams::start(10).await;
    let mut config = teams.config();
    config.limits.body_budget_bytes = oc_protocol::MAX_BODY_BYTES;
    let carrier = MockCarrier::start(config).unwrap();
    let legs = oc_protocol::paths::CALL_LEGS;
    let held = stalled_post(carrier.addr(), legs, None, oc_protocol::MAX_BODY_BYTES, 100).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut refused = stalled_post(carrier.addr(), legs, None, 20, 20).await;
    let head = answer(&mut refused, Duration::from_secs(5)).await.unwrap();
    assert!(head.starts_with("HTTP/1.1 503"), "{head}");
    let lower = head.to_ascii_lowercase();
    assert!(lower.contains("retry-after: 1"), "{head}");
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut again = stalled_post(carrier.addr(), legs, None, 2, 2).await;
        let head = answer(&mut again, Duration::from_secs(5)).await.unwrap();
        if !head.starts_with("HTTP/1.1 503") {
            // `  ` is not JSON: the body was read, so the budget is back.
            assert!(head.starts_with("HTTP/1.1 400"), "{head}");
            break;
        }
        assert!(Instant::now() < deadline, "the budget never came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    carrier.stop().await;
}

async fn connect_from(source: [u8; 4], addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((source, 0))).unwrap();
    socket.connect(addr).await.unwrap()
}

async fn probe_on(stream: &mut TcpStream) -> String {
    stream
        .write_all(b"GET /oc/v1/numbers/+14255550100 HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    answer(stream, Duration::from_secs(10)).await.unwrap()
}

#[tokio::test]
async fn an_address_past_its_connection_cap_gets_503_and_others_are_served() {
    let teams = FakeTeams::start(10).await;
    let mut config = teams.config();
    config.limits.connections_per_peer = 3;
    let carrier = MockCarrier::start(config).unwrap();
    let addr = carrier.addr();
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut stream = connect_from([127, 0, 0, 1], addr).await;
        let head = probe_on(&mut stream).await;
        assert!(head.starts_with("HTTP/1.1 404"), "{head}");
        held.push(stream);
    }
    let mut fourth = connect_from([127, 0, 0, 1], addr).await;
    let head = probe_on(&mut fourth).await;
    assert!(head.starts_with("HTTP/1.1 503"), "{head}");
    let lower = head.to_ascii_lowercase();
    assert!(lower.contains("retry-after: 1"), "{head}");
    assert!(lower.contains("connection: close"), "{head}");
    let mut other = connect_from([127, 0, 0, 3], addr).await;
    assert!(probe_on(&mut other).await.starts_with("HTTP/1.1 404"));
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut again = connect_from([127, 0, 0, 1], addr).await;
        if probe_on(&mut again).await.starts_with("HTTP/1.1 404") {
            break;
        }
        assert!(Instant::now() < deadline, "the slot never came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    carrier.stop().await;
}

/// Issue 12: the carrier's `405` had no `Allow` header, and `HEAD` on a GET endpoint got `405`.
#[tokio::test]
async fn head_is_answered_as_get_and_405_names_the_allowed_methods() {
    let teams = FakeTeams::start(10).await;
    let carrier = MockCarrier::start(teams.config()).unwrap();
    let url = carrier.base_url();
    let client = reqwest::Client::new();
    let truth = client
        .get(format!("{url}{}", mock_carrier::GROUND_TRUTH_PATH))
        .send()
        .await
        .unwrap();
    let length = truth.bytes().await.unwrap().len();
    let head = client
        .head(format!("{url}{}", mock_carrier::GROUND_TRUTH_PATH))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status().as_u16(), 200);
    assert_eq!(
        head.headers()["content-length"],
        length.to_string().as_str()
    );
    assert!(head.bytes().await.unwrap().is_empty());
    let probe = client
        .head(format!("{url}/oc/v1/numbers/+14255550100"))
        .send()
        .await
        .unwrap();
    assert_eq!(probe.status().as_u16(), 404, "as GET answers");
    for (method, path, allow) in [
        (reqwest::Method::GET, WEBHOOK, "POST"),
        (reqwest::Method::HEAD, oc_protocol::paths::CALL_LEGS, "POST"),
        (
            reqwest::Method::DELETE,
            "/oc/v1/numbers/+14255550100",
            "GET, HEAD",
        ),
        (
            reqwest::Method::POST,
            mock_carrier::GROUND_TRUTH_PATH,
            "GET, HEAD",
        ),
    ] {
        let response = client
            .request(method.clone(), format!("{url}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 405, "{method} {path}");
        assert_eq!(response.headers()["allow"], allow, "{method} {path}");
    }
    carrier.stop().await;
}
