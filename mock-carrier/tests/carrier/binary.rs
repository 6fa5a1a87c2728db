//! The `mock-carrier` binary: its commands and exit codes.

use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mock-carrier"))
}

#[test]
fn profiles_lists_every_profile_with_its_rule() {
    let out = bin().arg("profiles").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for profile in mock_carrier::Profile::ALL {
        assert!(text.contains(profile.name()), "{profile} missing:\n{text}");
    }
}

#[test]
fn a_bad_config_exits_2_and_a_taken_port_exits_3() {
    let dir = std::env::temp_dir().join(format!("mock-carrier-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[teams]\nbase_url = 5\n").unwrap();
    let out = bin()
        .args(["serve", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("teams.base_url"), "{stderr}");

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let busy = dir.join("busy.toml");
    std::fs::write(
        &busy,
        format!(
            "listen = \"127.0.0.1:{port}\"\n[teams]\nbase_url = \"http://127.0.0.1:9\"\n\
             token = \"t\"\nwebhook_secret = \"s\"\n"
        ),
    )
    .unwrap();
    let out = bin()
        .args(["serve", "--config"])
        .arg(&busy)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A `mock-carrier serve` with `config`, its base URL, and every stderr line as it comes.
struct Served {
    child: std::process::Child,
    url: String,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    dir: std::path::PathBuf,
}

impl Served {
    fn start(name: &str, extra: &str) -> Self {
        use std::io::BufRead;
        let dir = std::env::temp_dir().join(format!("mock-carrier-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("carrier.toml");
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:0\"\nground_truth_file = \"{}\"\n{extra}\n\
                 [teams]\nbase_url = \"http://127.0.0.1:9\"\ntoken = \"t\"\n\
                 webhook_secret = \"whsec_test\"\n[client]\npoll_interval_ms = 600000\n",
                dir.join("truth.json").display()
            ),
        )
        .unwrap();
        let mut child = bin()
            .args(["serve", "--config"])
            .arg(&config)
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(at) = line.find("carrier API at ") {
                    let url = line[at + 15..].split(';').next().unwrap().trim().to_owned();
                    let _ = tx.send(url);
                }
                sink.lock().unwrap().push(line);
            }
        });
        let url = rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("the carrier announces itself within 60 s");
        Self {
            child,
            url,
            lines,
            dir,
        }
    }

    fn lines_with(&self, text: &str) -> usize {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(text))
            .count()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Issue 12: each refused webhook wrote a WARN line (1.03 million unsigned webhooks wrote
/// 149 MB of log in 10 s). Repeated lines are now written a few times an interval, with a
/// count of the rest.
#[tokio::test]
async fn a_flood_of_unsigned_webhooks_writes_a_few_log_lines() {
    let served = Served::start("log", "");
    let client = reqwest::Client::new();
    for _ in 0..2_000 {
        let response = client
            .post(format!(
                "{}{}",
                served.url,
                oc_protocol::paths::NUMBER_ASSIGNMENTS
            ))
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 401);
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let written = served.lines_with("refused a notification");
    assert!(
        (1..=30).contains(&written),
        "{written} lines for 2000 refused webhooks"
    );
}

fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmRSS")
        * 1024
}

/// Issue 12: 150 stalled 1 MB bodies held 214 MB for as long as the client liked. Now the
/// budget bounds what they hold, and each is answered and closed by the body deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_bodies_are_bounded_by_the_budget_and_closed_at_the_deadline() {
    use crate::hostile::{answer, fresh_wrong_signature, stalled_post};
    let served = Served::start("rss", "");
    let addr: std::net::SocketAddr = served.url.trim_start_matches("http://").parse().unwrap();
    let pid = served.child.id();
    let idle = rss(pid);
    let started = std::time::Instant::now();
    let mut stalled: Vec<tokio::net::TcpStream> =
        futures_util::future::join_all((0..150).map(|_| {
            tokio::spawn(stalled_post(
                addr,
                oc_protocol::paths::NUMBER_ASSIGNMENTS,
                Some(fresh_wrong_signature()),
                oc_protocol::MAX_BODY_BYTES,
                900 * 1024,
            ))
        }))
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let held = rss(pid);
    const MB: u64 = 1_000_000;
    eprintln!(
        "RSS idle {} MB, with 150 stalled signed bodies {} MB",
        idle / MB,
        held / MB
    );
    assert!(
        held < idle + 100 * MB,
        "idle {} MB, with 150 stalled bodies {} MB",
        idle / MB,
        held / MB
    );
    // Every one is answered (503 past the budget, 400 at the 10 s deadline) or closed.
    for stream in &mut stalled {
        let left = std::time::Duration::from_secs(40).saturating_sub(started.elapsed());
        let head = answer(stream, left)
            .await
            .expect("answered or closed within 40 s");
        assert!(
            head.is_empty() || head.starts_with("HTTP/1.1 400") || head.starts_with("HTTP/1.1 503"),
            "{head}"
        );
    }
}
