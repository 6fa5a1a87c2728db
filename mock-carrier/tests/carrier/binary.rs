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
