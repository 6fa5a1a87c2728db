//! `oc-harness reconcile`: the binary on the fixtures (every Teams shape, gzip, exit codes, the
//! files it writes, a broken row located), and the library against a naive reference on random
//! small inputs.

use std::path::{Path, PathBuf};
use std::process::Command;

mod cli;
mod graph;
mod reference;

/// A fixture's path.
fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/reconcile/fixtures")
        .join(name)
}

/// A fresh folder for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("oc-reconcile-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `oc-harness` with `args`.
fn harness(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_oc-harness"))
        .args(args)
        .output()
        .expect("oc-harness runs")
}

/// `report.json` of a folder.
fn report(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("report.json")).unwrap()).unwrap()
}
