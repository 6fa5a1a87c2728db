//! The HTTP transport of the client loop: reqwest on a runtime thread of the carrier's own.
//!
//! Requests (and their timeouts) run on that thread, not on the caller's runtime. So the
//! caller's clock only carries the waits the protocol asks for (Retry-After, backoff), which
//! tests can run under Tokio's paused clock: were the request timeouts on a paused clock, the
//! runtime would jump to them whenever it waited for the network. It also makes the carrier
//! work the same from plain Tokio and from inside an actix `System`.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::web::Bytes;
use reqwest::header::{ACCEPT, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Method, Url};
use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// The largest response body read; more is a broken or hostile peer.
const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// A current-thread Tokio runtime on a thread of its own, hosting the carrier API server's
/// accept loop and the client's requests. Dropping it stops the server and ends the thread.
pub(crate) struct IoRuntime {
    handle: Handle,
    server: Arc<Mutex<Option<ServerHandle>>>,
    stop: Option<oneshot::Sender<()>>,
}

impl IoRuntime {
    pub(crate) fn start() -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        let server: Arc<Mutex<Option<ServerHandle>>> = Arc::default();
        let (stop, stopped) = oneshot::channel::<()>();
        let server_slot = Arc::clone(&server);
        std::thread::Builder::new()
            .name("mock-carrier-io".to_owned())
            .spawn(move || {
                runtime.block_on(async move {
                    let _ = stopped.await;
                    let handle = server_slot
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .take();
                    if let Some(handle) = handle {
                        handle.stop(false).await;
                    }
                });
            })?;
        Ok(Self {
            handle,
            server,
            stop: Some(stop),
        })
    }

    pub(crate) fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Remembers the server to stop when the runtime ends.
    pub(crate) fn set_server(&self, server: ServerHandle) {
        *self.server.lock().unwrap_or_else(PoisonError::into_inner) = Some(server);
    }
}

impl Drop for IoRuntime {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// One request to Teams. Cloning it shares the body bytes, so a retry sends the same bytes.
#[derive(Debug, Clone)]
pub(crate) struct Outgoing {
    pub(crate) method: Method,
    pub(crate) url: Url,
    pub(crate) idempotency_key: Option<String>,
    pub(crate) body: Option<Bytes>,
}

impl Outgoing {
    pub(crate) fn get(url: Url) -> Self {
        Self {
            method: Method::GET,
            url,
            idempotency_key: None,
            body: None,
        }
    }
}

/// Teams' answer.
#[derive(Debug, Clone)]
pub(crate) struct Incoming {
    pub(crate) status: u16,
    pub(crate) retry_after: Option<String>,
    pub(crate) body: Bytes,
}

/// Sends requests with the carrier's token, each bounded by the request timeout.
pub(crate) struct Transport {
    http: reqwest::Client,
    io: Handle,
    token: String,
}

impl Transport {
    pub(crate) fn new(io: Handle, token: &str, timeout: Duration) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            // Links are followed as given, and a redirect is not a link Teams issued.
            .redirect(reqwest::redirect::Policy::none())
            // Idle connections go before a server's keep-alive (actix-web's is 5 s) closes
            // them, so that a request never goes out on a connection being closed.
            .pool_idle_timeout(std::time::Duration::from_secs(2))
            .build()?;
        Ok(Self {
            http,
            io,
            token: token.to_owned(),
        })
    }

    /// Sends `out` once; `Err` is a transport failure (no HTTP answer), as text.
    pub(crate) async fn send(&self, out: &Outgoing) -> Result<Incoming, String> {
        let mut request = self
            .http
            .request(out.method.clone(), out.url.clone())
            .bearer_auth(&self.token)
            .header(ACCEPT, "application/json");
        if let Some(key) = &out.idempotency_key {
            request = request.header(oc_protocol::IDEMPOTENCY_KEY_HEADER, key);
        }
        if let Some(body) = &out.body {
            request = request
                .header(CONTENT_TYPE, "application/json")
                .body(body.clone());
        }
        let exchange = async move {
            let mut response = request.send().await.map_err(|e| error_text(&e))?;
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(|e| error_text(&e))? {
                if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                    return Err(format!("the answer is over {MAX_RESPONSE_BYTES} bytes"));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(Incoming {
                status,
                retry_after,
                body: Bytes::from(body),
            })
        };
        match self.io.spawn(exchange).await {
            Ok(result) => result,
            Err(err) => Err(format!("the carrier's I/O runtime stopped: {err}")),
        }
    }
}

impl Transport {
    /// Runs `work` on the I/O thread and hands back its result, `None` when the I/O runtime
    /// stopped: work of the client the caller's thread need not wait on (reading a page the
    /// carrier keeps nothing of), done on the other core while the caller's thread goes on.
    pub(crate) async fn on_io<R: Send + 'static>(
        &self,
        work: impl FnOnce() -> R + Send + 'static,
    ) -> Option<R> {
        self.io.spawn(async move { work() }).await.ok()
    }
}

/// reqwest's error with its causes, which say what actually failed.
fn error_text(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
