//! The command that replays a run or a certification, as every report prints it: the scenario
//! file as it was given and every flag that changes what runs or where it writes, each argument
//! quoted for a POSIX shell when it needs to be, so that the line can be pasted as it is.

use std::path::Path;

use crate::certify::CertifyOptions;
use crate::scenario::format_duration;

/// `oc-harness run FILE --seed N [--length L] --out DIR [--export DIR] [--shard I/N]`:
/// `--length` only when the run was shortened, in the largest exact unit (`2h`, not
/// `7200000ms`). `--out` always, so that the replay writes where the run wrote whatever the
/// default is then (for a shard, the folder its `shard-I-of-N` folder is in); `--export` when
/// the run wrote an export, so that the replay writes it again; `--shard` for a shard.
pub(crate) fn run_command(
    file: &Path,
    seed: u64,
    length_ms: Option<i64>,
    out: &Path,
    export: Option<&Path>,
    shard: Option<crate::shard::Shard>,
) -> String {
    let out = match shard {
        Some(shard) if out.ends_with(shard.folder()) => out.parent().unwrap_or(out),
        _ => out,
    };
    let mut args = vec![
        "oc-harness".to_owned(),
        "run".to_owned(),
        file.display().to_string(),
        "--seed".to_owned(),
        seed.to_string(),
    ];
    if let Some(ms) = length_ms {
        args.extend(["--length".to_owned(), format_duration(ms)]);
    }
    args.extend(["--out".to_owned(), out.display().to_string()]);
    if let Some(dir) = export {
        args.extend(["--export".to_owned(), dir.display().to_string()]);
    }
    if let Some(shard) = shard {
        args.extend(["--shard".to_owned(), shard.to_string()]);
    }
    command_line(&args)
}

/// `oc-harness certify --carrier-url URL [--scenario FILE | --quick] --seed N --listen ADDR
/// [--public-url URL] [--tls-cert FILE --tls-key FILE] [--ready-timeout D] --out DIR`.
///
/// The bearer token and webhook secret are left out on purpose: a report is handed over, and
/// must not carry credentials. A rig that fixes them sets `OC_CERTIFY_TOKEN` and
/// `OC_CERTIFY_WEBHOOK_SECRET`, which the replay reads as the first run did; otherwise the
/// replay generates new ones and prints them, like the first run.
pub(crate) fn certify_command(options: &CertifyOptions, seed: u64) -> String {
    let mut args = vec![
        "oc-harness".to_owned(),
        "certify".to_owned(),
        "--carrier-url".to_owned(),
        options.carrier_url.clone(),
    ];
    args.extend(options.scenario_args.iter().cloned());
    args.extend([
        "--seed".to_owned(),
        seed.to_string(),
        "--listen".to_owned(),
        options.listen.to_string(),
    ]);
    push_served_at(&mut args, options.public_url.as_ref(), options.tls.as_ref());
    if let Some(ms) = options.ready_timeout_ms {
        args.extend(["--ready-timeout".to_owned(), format_duration(ms)]);
    }
    args.extend(["--out".to_owned(), options.out.display().to_string()]);
    command_line(&args)
}

/// `--public-url` and the TLS files, when given: where the harness served Teams, for a command
/// that serves it (certify, load).
pub(crate) fn push_served_at(
    args: &mut Vec<String>,
    public_url: Option<&String>,
    tls: Option<&mock_teams::TlsFiles>,
) {
    if let Some(url) = public_url {
        args.extend(["--public-url".to_owned(), url.clone()]);
    }
    if let Some(tls) = tls {
        args.extend([
            "--tls-cert".to_owned(),
            tls.cert_chain.display().to_string(),
            "--tls-key".to_owned(),
            tls.private_key.display().to_string(),
        ]);
    }
}

/// The arguments joined by spaces, each quoted as [`shell_quote`] does.
pub(crate) fn command_line(args: &[String]) -> String {
    args.iter()
        .map(|a| shell_quote(a))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `arg` as a POSIX shell reads it back: as it is when every character is one no shell treats
/// specially, else in single quotes, a single quote inside written `'\''`.
pub(crate) fn shell_quote(arg: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./:=+,@%".contains(c);
    if !arg.is_empty() && arg.chars().all(plain) {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn arguments_are_quoted_only_when_a_shell_needs_it() {
        assert_eq!(shell_quote("scenarios/smoke.toml"), "scenarios/smoke.toml");
        assert_eq!(shell_quote("127.0.0.1:8080"), "127.0.0.1:8080");
        assert_eq!(shell_quote("my dir/a.toml"), "'my dir/a.toml'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote("$HOME"), "'$HOME'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn a_run_names_its_file_as_given_and_every_flag_that_changes_it() {
        assert_eq!(
            run_command(
                Path::new("/some/dir/other-name.toml"),
                7,
                None,
                Path::new("out/mine"),
                None,
                None
            ),
            "oc-harness run /some/dir/other-name.toml --seed 7 --out out/mine"
        );
        assert_eq!(
            run_command(
                Path::new("a.toml"),
                7,
                None,
                Path::new("out/a/shard-1-of-3"),
                None,
                Some(crate::shard::Shard::new(1, 3).unwrap())
            ),
            "oc-harness run a.toml --seed 7 --out out/a --shard 1/3"
        );
        assert_eq!(
            run_command(
                Path::new("my scenarios/a.toml"),
                42,
                Some(5_400_000),
                Path::new("/tmp/a b"),
                Some(Path::new("month end")),
                None
            ),
            "oc-harness run 'my scenarios/a.toml' --seed 42 --length 90m --out '/tmp/a b' \
             --export 'month end'"
        );
    }

    #[test]
    fn a_certification_names_every_flag_that_changes_it_but_no_credential() {
        let mut options = CertifyOptions {
            carrier_url: "https://carrier.example:8443".into(),
            listen: "0.0.0.0:8080".parse().unwrap(),
            public_url: Some("https://teams-sim.example:8080".into()),
            tls: Some(mock_teams::TlsFiles {
                cert_chain: PathBuf::from("teams.pem"),
                private_key: PathBuf::from("keys/teams key.pem"),
            }),
            token: Some("oct_secret".into()),
            webhook_secret: Some("whsec_secret".into()),
            seed: None,
            ready_timeout_ms: Some(120_000),
            out: PathBuf::from("certification out"),
            progress: false,
            scenario_args: vec!["--scenario".into(), "suites/my suite.toml".into()],
        };
        let line = certify_command(&options, 9);
        assert_eq!(
            line,
            "oc-harness certify --carrier-url https://carrier.example:8443 --scenario \
             'suites/my suite.toml' --seed 9 --listen 0.0.0.0:8080 --public-url \
             https://teams-sim.example:8080 --tls-cert teams.pem --tls-key 'keys/teams key.pem' \
             --ready-timeout 2m --out 'certification out'"
        );
        assert!(!line.contains("secret"), "{line}");
        options.scenario_args = vec!["--quick".into()];
        options.public_url = None;
        options.tls = None;
        options.ready_timeout_ms = None;
        options.out = PathBuf::from("oc-harness-out/certification");
        assert_eq!(
            certify_command(&options, 9),
            "oc-harness certify --carrier-url https://carrier.example:8443 --quick --seed 9 \
             --listen 0.0.0.0:8080 --out oc-harness-out/certification"
        );
    }
}
