//! HTTPS: a self-signed certificate made at test time, served and trusted; unusable files are
//! refused with an error that names the file, by the library and by `mock-teams serve`.

use std::path::{Path, PathBuf};
use std::process::Command;

use mock_teams::{MockTeams, StartError, TeamsOptions, TlsFiles};

use crate::common::*;

/// A directory of its own under the system's temp dir, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let dir = std::env::temp_dir().join(format!(
            "mock-teams-tls-{}-{name}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn write(&self, file: &str, contents: &str) -> PathBuf {
        let path = self.0.join(file);
        std::fs::write(&path, contents).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A self-signed certificate for 127.0.0.1 and localhost: (certificate PEM, PKCS#8 key PEM).
fn self_signed() -> (String, String) {
    let made =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    (made.cert.pem(), made.signing_key.serialize_pem())
}

fn options(cert_chain: PathBuf, private_key: PathBuf) -> TeamsOptions {
    let mut options = TeamsOptions::loopback(T0);
    options.tls = Some(TlsFiles {
        cert_chain,
        private_key,
    });
    options
}

async fn start_error(options: TeamsOptions) -> (PathBuf, String) {
    match MockTeams::start(options).await {
        Ok(_) => panic!("mock-teams started with unusable TLS files"),
        Err(StartError::Tls { path, message }) => (path, message),
        Err(other) => panic!("not a TLS error: {other}"),
    }
}

#[tokio::test]
async fn serves_https_to_a_client_that_trusts_the_certificate() {
    let scratch = Scratch::new("serve");
    let (cert, key) = self_signed();
    let mut env = start_with(options(
        scratch.write("cert.pem", &cert),
        scratch.write("key.pem", &key),
    ))
    .await;
    assert!(
        env.teams.base_url().starts_with("https://127.0.0.1:"),
        "{}",
        env.teams.base_url()
    );
    let untrusting = env
        .client
        .get(env.url("/oc/v1/numbers"))
        .bearer_auth(ALPHA_TOKEN)
        .send()
        .await;
    assert!(
        untrusting.is_err(),
        "a client that does not trust the certificate must not get through"
    );

    env.client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.as_bytes()).unwrap())
        .build()
        .unwrap();
    let (status, _, page) = env.get(ALPHA_TOKEN, "/oc/v1/numbers?pageSize=4").await;
    assert_eq!(status, 200, "{page}");
    let next = page["nextLink"].as_str().unwrap();
    assert!(
        next.starts_with(&env.teams.base_url()),
        "links are issued under https: {next}"
    );
    let (numbers, _) = env.follow(ALPHA_TOKEN, "/oc/v1/numbers?pageSize=4").await;
    assert_eq!(numbers.len(), 10);
    let (status, _, _) = env.get("", "/oc/v1/numbers").await;
    assert_eq!(status, 401, "TLS changes nothing about authentication");
    env.teams.stop().await;
}

#[tokio::test]
async fn a_missing_key_file_is_named() {
    let scratch = Scratch::new("missing-key");
    let (cert, _) = self_signed();
    let absent = scratch.0.join("absent.pem");
    let (path, message) =
        start_error(options(scratch.write("cert.pem", &cert), absent.clone())).await;
    assert_eq!(path, absent);
    let expected = format!("failed to read the TLS private key {}: ", absent.display());
    assert!(message.starts_with(&expected), "{message}");
}

#[tokio::test]
async fn a_garbage_certificate_file_is_named() {
    let scratch = Scratch::new("garbage-cert");
    let (_, key) = self_signed();
    let cert = scratch.write("cert.pem", "this is not a certificate\n");
    let (path, message) = start_error(options(cert.clone(), scratch.write("key.pem", &key))).await;
    assert_eq!(path, cert);
    assert_eq!(
        message,
        format!(
            "{} is not a PEM certificate chain: it has no -----BEGIN CERTIFICATE----- section",
            cert.display()
        )
    );
}

#[tokio::test]
async fn a_key_file_without_a_key_is_named() {
    let scratch = Scratch::new("no-key");
    let (cert, _) = self_signed();
    let cert = scratch.write("cert.pem", &cert);
    // The certificate given as the key as well: a PEM file, with no key in it.
    let (path, message) = start_error(options(cert.clone(), cert.clone())).await;
    assert_eq!(path, cert);
    assert!(
        message.starts_with(&format!("no private key found in {}", cert.display())),
        "{message}"
    );
}

#[test]
fn serve_exits_2_naming_an_unusable_tls_file() {
    let scratch = Scratch::new("cli");
    let config = scratch.write(
        "teams.toml",
        &format!(
            "listen = \"127.0.0.1:0\"\n[tls]\ncert = {:?}\nkey = {:?}\n\
             [[carriers]]\nid = \"a\"\ntoken = \"t\"\n",
            scratch.0.join("absent-cert.pem"),
            scratch.0.join("absent-key.pem"),
        ),
    );
    let output = Command::new(env!("CARGO_BIN_EXE_mock-teams"))
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    let named = Path::new(&scratch.0).join("absent-cert.pem");
    assert!(
        stderr.contains(&format!(
            "failed to read the TLS certificate chain {}",
            named.display()
        )),
        "{stderr}"
    );
}
