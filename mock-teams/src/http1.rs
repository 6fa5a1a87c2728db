//! A small HTTP/1.1 client for the webhook sender's hot path: one POST at a time per kept-alive
//! plain-TCP connection, the request written in one call, the answer parsed with `httparse`.
//! reqwest and hyper spent a third of the sender's thread building and dispatching each request
//! (a header map, a boxed future per layer, a task and two channels per connection); a webhook
//! is always the same small POST to the same URL. `https` URLs, and URLs carrying credentials,
//! stay with reqwest ([`crate::webhook::HttpTransport`] chooses).
//!
//! What it answers matches reqwest's: the status and the body (`Content-Length`, chunked, or up
//! to the connection's end), errors in the same words (`no acknowledgement within the
//! deadline`, `could not connect: …`, `transport error: …`).

use std::sync::Mutex;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// The most of an answer's head read; a longer one is an error.
const HEAD_LIMIT: usize = 64 * 1024;
/// The most of an answer's body kept; the rest is not read and the connection is closed (the
/// exchange keeps far less: the recorder's capture limit).
const BODY_LIMIT: usize = 1024 * 1024;
/// How many headers an answer may have.
const MAX_HEADERS: usize = 64;

/// A plain `http://` target: where to connect, what to send as `Host` and as the request path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// `host:port` to connect to (an IPv6 host in brackets).
    pub(crate) addr: String,
    /// The `Host` header: the URL's host, and its port when not 80.
    pub(crate) host: String,
    /// Path and query.
    pub(crate) path: String,
}

impl Target {
    /// The target of `url` when this client can serve it: plain `http`, no credentials.
    pub(crate) fn of(url: &reqwest::Url) -> Option<Self> {
        if url.scheme() != "http" || !url.username().is_empty() || url.password().is_some() {
            return None;
        }
        let host = url.host_str()?;
        let port = url.port_or_known_default()?;
        let path = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        };
        Some(Self {
            addr: format!("{host}:{port}"),
            host: match url.port() {
                Some(port) => format!("{host}:{port}"),
                None => host.to_owned(),
            },
            path,
        })
    }
}

/// An idle kept-alive connection.
struct Idle {
    addr: String,
    stream: TcpStream,
    since: Instant,
}

/// Kept-alive connections, handed out one request at a time.
pub(crate) struct Client {
    idle: Mutex<Vec<Idle>>,
    connect_timeout: Duration,
    /// An idle connection older than this is closed rather than used: the server may be
    /// closing it just then (actix-web's keep-alive is 5 s), and that failed attempt would be
    /// blamed on the carrier [NUM-ACK].
    idle_timeout: Duration,
}

/// Why a request on a connection failed.
enum Failure {
    /// A kept-alive connection closed before a byte of the answer: the server closed it while
    /// it was idle, and did not read the request; worth one try on a new connection.
    Stale,
    /// Anything else, in the words the attempt records.
    Error(String),
}

impl Client {
    pub(crate) fn new(connect_timeout: Duration, idle_timeout: Duration) -> Self {
        Self {
            idle: Mutex::new(Vec::new()),
            connect_timeout,
            idle_timeout,
        }
    }

    /// POSTs `body` (JSON) to `target` with the `OC-Signature` header: the status and body,
    /// within `timeout` for the status (the body only within what is left of it: without it,
    /// the answer's body is empty).
    pub(crate) async fn post(
        &self,
        target: &Target,
        signature: &str,
        body: &[u8],
        timeout: Duration,
    ) -> Result<(u16, Vec<u8>), String> {
        let deadline = Instant::now() + timeout;
        let mut request = Vec::with_capacity(160 + target.path.len() + body.len());
        request.extend_from_slice(b"POST ");
        request.extend_from_slice(target.path.as_bytes());
        request.extend_from_slice(b" HTTP/1.1\r\nhost: ");
        request.extend_from_slice(target.host.as_bytes());
        request.extend_from_slice(b"\r\ncontent-type: application/json\r\noc-signature: ");
        request.extend_from_slice(signature.as_bytes());
        request.extend_from_slice(b"\r\ncontent-length: ");
        request.extend_from_slice(itoa::Buffer::new().format(body.len()).as_bytes());
        request.extend_from_slice(b"\r\n\r\n");
        request.extend_from_slice(body);
        if let Some(stream) = self.take_idle(&target.addr) {
            match self.exchange(stream, target, &request, deadline).await {
                Ok(answer) => return Ok(answer),
                Err(Failure::Error(error)) => return Err(error),
                Err(Failure::Stale) => {}
            }
        }
        let stream = self.connect(&target.addr, deadline).await?;
        match self.exchange(stream, target, &request, deadline).await {
            Ok(answer) => Ok(answer),
            Err(Failure::Error(error)) => Err(error),
            Err(Failure::Stale) => {
                Err("transport error: connection closed before an answer".into())
            }
        }
    }

    /// Opens up to `n` connections to `target` at once and keeps them idle, ready for the first
    /// requests (as wrk and k6 open theirs before they start): a load's first notifications
    /// then do not wait for connects. Returns how many opened; a connect that fails is left to
    /// the requests, which report it.
    pub(crate) async fn preopen(&self, target: &Target, n: usize, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        let opened =
            futures_util::future::join_all((0..n).map(|_| self.connect(&target.addr, deadline)))
                .await;
        let mut count = 0;
        for (stream, _) in opened.into_iter().flatten() {
            self.put_idle(&target.addr, stream);
            count += 1;
        }
        count
    }

    /// The most recently used idle connection to `addr` still fresh, closing the stale ones.
    fn take_idle(&self, addr: &str) -> Option<(TcpStream, bool)> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        // One clock read, not one per idle connection: with 64 of them, those reads were a
        // twentieth of the sender's thread at 12,000 webhooks a second.
        let now = Instant::now();
        idle.retain(|c| now.saturating_duration_since(c.since) < self.idle_timeout);
        let at = idle.iter().rposition(|c| c.addr == addr)?;
        Some((idle.swap_remove(at).stream, true))
    }

    fn put_idle(&self, addr: &str, stream: TcpStream) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        idle.push(Idle {
            addr: addr.to_owned(),
            stream,
            since: Instant::now(),
        });
    }

    async fn connect(&self, addr: &str, deadline: Instant) -> Result<(TcpStream, bool), String> {
        let limit = deadline.min(Instant::now() + self.connect_timeout);
        match tokio::time::timeout_at(limit, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                // Small requests and answers: each is one write, wanted on the wire at once.
                let _ = stream.set_nodelay(true);
                Ok((stream, false))
            }
            Ok(Err(e)) => Err(format!("could not connect: tcp connect error: {e}")),
            Err(_) if limit < deadline => Err("could not connect: connect timed out".into()),
            Err(_) => Err("no acknowledgement within the deadline".into()),
        }
    }

    /// One request and its answer on `stream`; the connection goes back to the idle ones when
    /// the answer left it reusable.
    async fn exchange(
        &self,
        (mut stream, reused): (TcpStream, bool),
        target: &Target,
        request: &[u8],
        deadline: Instant,
    ) -> Result<(u16, Vec<u8>), Failure> {
        let timed_out = || Failure::Error("no acknowledgement within the deadline".into());
        let io = |e: std::io::Error| Failure::Error(format!("transport error: {e}"));
        match tokio::time::timeout_at(deadline, stream.write_all(request)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) if reused => return Err(Failure::Stale),
            Ok(Err(e)) => return Err(io(e)),
            Err(_) => return Err(timed_out()),
        }
        let mut buf = Vec::with_capacity(1024);
        let head = loop {
            // Nothing read yet: no head to look for (and its header array to set up).
            let parsed = if buf.is_empty() {
                Ok(None)
            } else {
                parse_head(&buf)
            };
            match parsed {
                Ok(Some(head)) if head.status < 200 && head.status != 101 => {
                    // An interim answer (100 Continue): the final one follows.
                    buf.drain(..head.len);
                    continue;
                }
                Ok(Some(head)) => break head,
                Ok(None) if buf.len() > HEAD_LIMIT => {
                    return Err(Failure::Error(
                        "transport error: the answer's head is too long".into(),
                    ));
                }
                Ok(None) => {}
                Err(e) => return Err(Failure::Error(format!("transport error: {e}"))),
            }
            let read = tokio::time::timeout_at(deadline, read_more(&mut stream, &mut buf)).await;
            match read {
                Err(_) => return Err(timed_out()),
                Ok(Ok(0) | Err(_)) if reused && buf.is_empty() => return Err(Failure::Stale),
                Ok(Ok(0)) => {
                    return Err(Failure::Error(
                        "transport error: connection closed before an answer".into(),
                    ));
                }
                Ok(Err(e)) => return Err(io(e)),
                Ok(Ok(_)) => {}
            }
        };
        buf.drain(..head.len);
        // The body within what is left of the deadline, and the answer without it otherwise.
        let body = tokio::time::timeout_at(deadline, read_body(&mut stream, buf, &head)).await;
        match body {
            Ok(Ok((body, reusable))) => {
                if reusable && head.keep_alive {
                    self.put_idle(&target.addr, stream);
                }
                Ok((head.status, body))
            }
            Ok(Err(_)) | Err(_) => Ok((head.status, Vec::new())),
        }
    }
}

/// Reads what is there into `buf`; the bytes read (0 at the end of the connection).
async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    if buf.capacity() - buf.len() < 512 {
        buf.reserve(4096);
    }
    stream.read_buf(buf).await
}

/// What the head of an answer says.
#[derive(Debug, PartialEq, Eq)]
struct Head {
    /// Its length in bytes.
    len: usize,
    status: u16,
    framing: Framing,
    /// Whether the connection stays open after the answer.
    keep_alive: bool,
}

#[derive(Debug, PartialEq, Eq)]
enum Framing {
    Length(u64),
    Chunked,
    /// No body (`204`, `304`).
    Empty,
    /// To the connection's end.
    Close,
}

/// The head of an answer in `buf`; `None` while incomplete.
fn parse_head(buf: &[u8]) -> Result<Option<Head>, String> {
    // Left uninitialised for httparse to fill: setting up 64 empty headers first cost more
    // than parsing the few an answer has.
    let mut headers = [const { std::mem::MaybeUninit::uninit() }; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut []);
    let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut response,
        buf,
        &mut headers,
    );
    let len = match parsed {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("invalid answer: {e}")),
    };
    let status = response.code.unwrap_or(0);
    let mut keep_alive = response.version == Some(1);
    let mut length = None;
    let mut chunked = false;
    // A header's value is read only when its name is one of the three that matter here.
    fn value<'a>(header: &httparse::Header<'a>) -> &'a str {
        std::str::from_utf8(header.value).unwrap_or("").trim()
    }
    for header in response.headers.iter() {
        if header.name.eq_ignore_ascii_case("content-length") {
            let value = value(header);
            let n = value
                .parse::<u64>()
                .map_err(|_| format!("invalid content-length {value:?}"))?;
            if length.is_some_and(|m| m != n) {
                return Err("conflicting content-length headers".into());
            }
            length = Some(n);
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value(header)
                .rsplit(',')
                .next()
                .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
        } else if header.name.eq_ignore_ascii_case("connection") {
            for token in value(header).split(',').map(str::trim) {
                if token.eq_ignore_ascii_case("close") {
                    keep_alive = false;
                } else if token.eq_ignore_ascii_case("keep-alive") {
                    keep_alive = true;
                }
            }
        }
    }
    let framing = if status == 204 || status == 304 {
        Framing::Empty
    } else if chunked {
        Framing::Chunked
    } else if let Some(n) = length {
        Framing::Length(n)
    } else {
        keep_alive = false;
        Framing::Close
    };
    Ok(Some(Head {
        len,
        status,
        framing,
        keep_alive,
    }))
}

/// Reads the body `head` announces, `buf` holding what came after the head; the body (at most
/// [`BODY_LIMIT`]) and whether the connection may carry another request.
async fn read_body(
    stream: &mut TcpStream,
    mut buf: Vec<u8>,
    head: &Head,
) -> Result<(Vec<u8>, bool), String> {
    let eof = || "transport error: connection closed within the answer's body".to_owned();
    match head.framing {
        Framing::Empty => Ok((Vec::new(), buf.is_empty())),
        Framing::Length(n) => {
            let want = usize::try_from(n).unwrap_or(usize::MAX);
            let keep = want.min(BODY_LIMIT);
            while buf.len() < keep {
                if read_more(stream, &mut buf)
                    .await
                    .map_err(|e| e.to_string())?
                    == 0
                {
                    return Err(eof());
                }
            }
            let reusable = want <= BODY_LIMIT && buf.len() == want;
            buf.truncate(keep);
            Ok((buf, reusable))
        }
        Framing::Close => {
            while buf.len() < BODY_LIMIT {
                if read_more(stream, &mut buf)
                    .await
                    .map_err(|e| e.to_string())?
                    == 0
                {
                    break;
                }
            }
            buf.truncate(BODY_LIMIT);
            Ok((buf, false))
        }
        Framing::Chunked => {
            let mut chunks = Dechunker::default();
            loop {
                if chunks.feed(&mut buf)? {
                    return Ok((chunks.body, buf.is_empty()));
                }
                if chunks.body.len() > BODY_LIMIT {
                    chunks.body.truncate(BODY_LIMIT);
                    return Ok((chunks.body, false));
                }
                if read_more(stream, &mut buf)
                    .await
                    .map_err(|e| e.to_string())?
                    == 0
                {
                    return Err(eof());
                }
            }
        }
    }
}

/// The longest chunk-size line (with its extensions) and the most trailer bytes taken: a
/// carrier sending a line without end is cut off, not buffered.
const CHUNK_LINE_LIMIT: usize = 4 * 1024;

/// A chunked body decoded as it arrives: each [`Dechunker::feed`] takes what it can from the
/// front of the buffer and keeps its place, so that a body read in many pieces is decoded once,
/// not from its start after every read.
#[derive(Debug, Default)]
struct Dechunker {
    state: ChunkState,
    /// What was decoded so far.
    body: Vec<u8>,
    /// Trailer bytes taken so far.
    trailers: usize,
}

#[derive(Debug, Default, PartialEq, Eq)]
enum ChunkState {
    /// Before a chunk-size line.
    #[default]
    Size,
    /// Within a chunk's data: the bytes of it still to come.
    Data(usize),
    /// After a chunk's data: its CRLF.
    DataEnd,
    /// After the last chunk: trailer lines up to an empty one.
    Trailers,
}

impl Dechunker {
    /// Decodes what `buf` holds, draining what it took; true once the body is complete (`buf`
    /// then holds what followed it), false when more must be read.
    fn feed(&mut self, buf: &mut Vec<u8>) -> Result<bool, String> {
        let mut at = 0;
        let done = loop {
            let rest = &buf[at..];
            match self.state {
                ChunkState::Size => {
                    let Some(line_end) = find_crlf(rest) else {
                        if rest.len() > CHUNK_LINE_LIMIT {
                            return Err("a chunk-size line is too long".into());
                        }
                        break false;
                    };
                    let line =
                        std::str::from_utf8(&rest[..line_end]).map_err(|_| "invalid chunk size")?;
                    let size = line.split(';').next().unwrap_or("").trim();
                    let size = usize::from_str_radix(size, 16)
                        .map_err(|_| format!("invalid chunk size {size:?}"))?;
                    at += line_end + 2;
                    self.state = match size {
                        0 => ChunkState::Trailers,
                        n => ChunkState::Data(n),
                    };
                }
                ChunkState::Data(left) => {
                    if rest.is_empty() {
                        break false;
                    }
                    let n = left.min(rest.len());
                    self.body.extend_from_slice(&rest[..n]);
                    at += n;
                    self.state = match left - n {
                        0 => ChunkState::DataEnd,
                        left => ChunkState::Data(left),
                    };
                }
                ChunkState::DataEnd => {
                    if rest.len() < 2 {
                        break false;
                    }
                    if &rest[..2] != b"\r\n" {
                        return Err("a chunk not ended by CRLF".into());
                    }
                    at += 2;
                    self.state = ChunkState::Size;
                }
                ChunkState::Trailers => {
                    let Some(end) = find_crlf(rest) else {
                        if self.trailers + rest.len() > CHUNK_LINE_LIMIT {
                            return Err("the chunked body's trailers are too long".into());
                        }
                        break false;
                    };
                    at += end + 2;
                    self.trailers += end + 2;
                    if end == 0 {
                        break true;
                    }
                    if self.trailers > CHUNK_LINE_LIMIT {
                        return Err("the chunked body's trailers are too long".into());
                    }
                }
            }
        };
        buf.drain(..at);
        Ok(done)
    }
}

fn find_crlf(buf: &[u8]) -> Option<usize> {
    buf.windows(2).position(|w| w == b"\r\n")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::net::TcpListener;

    use super::*;

    /// A server answering each request on a connection with the next of `answers` (each
    /// connection starts from the first), counting connections; `None` closes the connection.
    async fn server(answers: Vec<Option<&'static [u8]>>) -> (Target, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = connections.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                let answers = answers.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    for answer in answers {
                        // One request: its head, then its content-length's worth of body.
                        let request = loop {
                            let mut headers = [httparse::EMPTY_HEADER; 16];
                            let mut req = httparse::Request::new(&mut headers);
                            if let Ok(httparse::Status::Complete(len)) = req.parse(&buf) {
                                let body: usize = req
                                    .headers
                                    .iter()
                                    .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                                    .and_then(|h| std::str::from_utf8(h.value).ok()?.parse().ok())
                                    .unwrap_or(0);
                                if buf.len() >= len + body {
                                    break len + body;
                                }
                            }
                            if socket.read_buf(&mut buf).await.unwrap_or(0) == 0 {
                                return;
                            }
                        };
                        buf.drain(..request);
                        match answer {
                            Some(bytes) => socket.write_all(bytes).await.unwrap(),
                            None => return,
                        }
                    }
                });
            }
        });
        let url = reqwest::Url::parse(&format!("http://{addr}/hook?x=1")).unwrap();
        (Target::of(&url).unwrap(), connections)
    }

    const TIMEOUT: Duration = Duration::from_secs(5);

    fn client() -> Client {
        Client::new(TIMEOUT, Duration::from_secs(2))
    }

    #[test]
    fn only_plain_http_without_credentials_is_served() {
        let of = |u: &str| Target::of(&reqwest::Url::parse(u).unwrap());
        assert_eq!(
            of("http://carrier.example:8081/oc/v1/hook?a=b"),
            Some(Target {
                addr: "carrier.example:8081".into(),
                host: "carrier.example:8081".into(),
                path: "/oc/v1/hook?a=b".into(),
            })
        );
        assert_eq!(of("http://[::1]/h").unwrap().addr, "[::1]:80");
        assert_eq!(of("http://[::1]/h").unwrap().host, "[::1]");
        assert_eq!(of("https://carrier.example/h"), None);
        assert_eq!(of("http://user:pw@carrier.example/h"), None);
    }

    #[tokio::test]
    async fn a_kept_alive_connection_carries_the_next_request() {
        let (target, connections) = server(vec![
            Some(b"HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\n{\"ok\":true}"),
            Some(b"HTTP/1.1 202 Accepted\r\ntransfer-encoding: chunked\r\n\r\n4\r\nab\r\n\r\n3;x=y\r\ncde\r\n0\r\nx-t: 1\r\n\r\n"),
            Some(b"HTTP/1.1 204 No Content\r\n\r\n"),
        ])
        .await;
        let client = client();
        let first = client.post(&target, "t=1,v1=ab", b"{}", TIMEOUT).await;
        assert_eq!(first, Ok((200, b"{\"ok\":true}".to_vec())));
        let second = client.post(&target, "t=1,v1=ab", b"{}", TIMEOUT).await;
        assert_eq!(second, Ok((202, b"ab\r\ncde".to_vec())));
        let third = client.post(&target, "t=1,v1=ab", b"{}", TIMEOUT).await;
        assert_eq!(third, Ok((204, Vec::new())));
        assert_eq!(connections.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn connections_opened_ahead_carry_the_first_requests() {
        let (target, connections) =
            server(vec![Some(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")]).await;
        let client = client();
        assert_eq!(client.preopen(&target, 3, TIMEOUT).await, 3);
        // Three requests at once: each on a connection opened ahead, none opened for them.
        let posts = (0..3).map(|_| client.post(&target, "t=1,v1=ab", b"{}", TIMEOUT));
        for answer in futures_util::future::join_all(posts).await {
            assert_eq!(answer, Ok((200, Vec::new())));
        }
        assert_eq!(connections.load(Ordering::SeqCst), 3);
        // Nothing listens here any more: none opens, and the failure is left to the requests.
        let gone = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = gone.local_addr().unwrap();
        drop(gone);
        let url = reqwest::Url::parse(&format!("http://{addr}/hook")).unwrap();
        assert_eq!(
            client.preopen(&Target::of(&url).unwrap(), 2, TIMEOUT).await,
            0
        );
    }

    #[tokio::test]
    async fn a_connection_the_server_closed_is_replaced_once() {
        // Each connection answers once and then closes when the next request comes.
        let (target, connections) = server(vec![
            Some(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"),
            None,
        ])
        .await;
        let client = client();
        for _ in 0..3 {
            let answer = client.post(&target, "s", b"{}", TIMEOUT).await;
            assert_eq!(answer, Ok((200, Vec::new())));
        }
        assert_eq!(connections.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn connection_close_and_a_body_to_the_end_are_not_reused() {
        let (target, connections) = server(vec![Some(
            b"HTTP/1.1 500 Internal Server Error\r\nconnection: close\r\ncontent-length: 4\r\n\r\noops",
        )])
        .await;
        let client = client();
        for _ in 0..2 {
            let answer = client.post(&target, "s", b"{}", TIMEOUT).await;
            assert_eq!(answer, Ok((500, b"oops".to_vec())));
        }
        assert_eq!(connections.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn no_answer_is_a_timeout_and_a_refusal_says_so() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = reqwest::Url::parse(&format!("http://{}/h", listener.local_addr().unwrap()));
        let target = Target::of(&url.unwrap()).unwrap();
        // Accepted by the kernel, never answered.
        let silent = client()
            .post(&target, "s", b"{}", Duration::from_millis(200))
            .await;
        assert_eq!(silent, Err("no acknowledgement within the deadline".into()));
        drop(listener);
        let refused = client().post(&target, "s", b"{}", TIMEOUT).await;
        let error = refused.unwrap_err();
        assert!(error.starts_with("could not connect: "), "{error}");
    }

    #[tokio::test]
    async fn an_answer_that_is_not_http_is_a_transport_error() {
        let (target, _) = server(vec![Some(b"SSH-2.0-OpenSSH\r\n\r\n")]).await;
        let error = client()
            .post(&target, "s", b"{}", TIMEOUT)
            .await
            .unwrap_err();
        assert!(
            error.starts_with("transport error: invalid answer"),
            "{error}"
        );
    }

    #[test]
    fn heads_say_how_the_body_is_framed() {
        let head = |text: &str| parse_head(text.as_bytes()).unwrap().unwrap();
        assert_eq!(
            head("HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n").framing,
            Framing::Length(5)
        );
        assert!(head("HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n").keep_alive);
        let old = head("HTTP/1.0 200 OK\r\ncontent-length: 5\r\n\r\n");
        assert!(!old.keep_alive);
        let to_end = head("HTTP/1.1 200 OK\r\n\r\n");
        assert_eq!((to_end.framing, to_end.keep_alive), (Framing::Close, false));
        assert_eq!(
            head("HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n").framing,
            Framing::Chunked
        );
        assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\ncontent-len"), Ok(None));
        assert!(parse_head(b"HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n").is_err());
        assert!(
            parse_head(b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n")
                .is_err()
        );
    }

    /// Decodes `wire` fed `piece` bytes at a time: the body, and the most `feed` left behind.
    fn dechunk_in_pieces(wire: &[u8], piece: usize) -> (Result<Vec<u8>, String>, usize) {
        let mut chunks = Dechunker::default();
        let mut buf = Vec::new();
        let mut most_left = 0;
        for part in wire.chunks(piece) {
            buf.extend_from_slice(part);
            match chunks.feed(&mut buf) {
                Ok(true) => return (Ok(chunks.body), most_left),
                Ok(false) => most_left = most_left.max(buf.len()),
                Err(e) => return (Err(e), most_left),
            }
        }
        (Err("incomplete".into()), most_left)
    }

    #[test]
    fn a_chunked_body_is_decoded_as_it_arrives() {
        let wire = b"3\r\nabc\r\n1;ext=1\r\nd\r\n10\r\n0123456789abcdef\r\n0\r\nx-t: 1\r\n\r\n";
        for piece in [1, 2, 3, 7, wire.len()] {
            let (body, most_left) = dechunk_in_pieces(wire, piece);
            assert_eq!(body.as_deref(), Ok(&b"abcd0123456789abcdef"[..]), "{piece}");
            // Only an unfinished line waits in the buffer: data is taken as it comes, so
            // nothing is decoded twice.
            assert!(
                most_left < 10,
                "piece {piece}: {most_left} bytes left behind"
            );
        }
        // What follows the body stays in the buffer (and makes the connection not reusable).
        let mut buf = b"1\r\na\r\n0\r\n\r\nHTTP".to_vec();
        let mut chunks = Dechunker::default();
        assert_eq!(chunks.feed(&mut buf), Ok(true));
        assert_eq!((chunks.body, buf), (b"a".to_vec(), b"HTTP".to_vec()));
    }

    #[test]
    fn a_bad_chunked_body_is_an_error_not_a_pile() {
        assert!(dechunk_in_pieces(b"zz\r\n", 1).0.is_err());
        assert_eq!(
            dechunk_in_pieces(b"1\r\nabc\r\n", 1).0,
            Err("a chunk not ended by CRLF".into())
        );
        // A size line or trailers without end are cut off at the limit, not kept growing.
        let endless = vec![b'1'; 3 * CHUNK_LINE_LIMIT];
        let (result, most_left) = dechunk_in_pieces(&endless, 100);
        assert_eq!(result, Err("a chunk-size line is too long".into()));
        assert!(most_left <= CHUNK_LINE_LIMIT + 100, "{most_left}");
        let mut trailers = b"0\r\n".to_vec();
        trailers.extend(std::iter::repeat_n(b"x: y\r\n".as_slice(), CHUNK_LINE_LIMIT).flatten());
        assert_eq!(
            dechunk_in_pieces(&trailers, 64).0,
            Err("the chunked body's trailers are too long".into())
        );
    }
}
