//! The `mock-teams` binary: serves a configuration until Ctrl-C, refuses a bad one with exit 2.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CONFIG: &str = r#"
listen = "127.0.0.1:0"
seed = 7
start_time = "2026-11-26T00:00:00.000Z"

[[carriers]]
id = "contoso"
token = "sandbox-token"

[traffic]
tenants = 2
numbers_per_tenant = 5
speed = 3600.0
"#;

fn write_config(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("mock-teams-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test]
async fn serve_answers_with_background_traffic_and_stops_on_ctrl_c() {
    let config = write_config("good.toml", CONFIG);
    let mut child = Command::new(env!("CARGO_BIN_EXE_mock-teams"))
        .args(["serve", "--config"])
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).map(|_| line)
    });
    let line = tokio::time::timeout(Duration::from_secs(30), line)
        .await
        .expect("the server announces itself within 30 s")
        .unwrap()
        .unwrap();
    let url = line.trim().rsplit(' ').next().unwrap().to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{line}");
    let page: serde_json::Value = reqwest::Client::new()
        .get(format!("{url}/oc/v1/numbers"))
        .bearer_auth("sandbox-token")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["value"].as_array().unwrap().len(), 10, "{page}");

    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            Instant::now() < deadline,
            "mock-teams did not stop on Ctrl-C"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exit.success(), "{exit:?}");
}

#[test]
fn a_bad_config_exits_2_and_names_the_key() {
    let config = write_config(
        "bad.toml",
        "listen = \"127.0.0.1:0\"\n[[carriers]]\nid = \"a\"\ntokn = \"t\"\n",
    );
    let output = Command::new(env!("CARGO_BIN_EXE_mock-teams"))
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("tokn"), "{stderr}");
}
