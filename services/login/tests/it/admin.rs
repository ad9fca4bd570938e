//! The administrative commands of the `tessera-login` binary, run as a person would.

use std::io::Write as _;
use std::process::{Command, Stdio};

struct Cli {
    dir: tempfile::TempDir,
}

impl Cli {
    fn new() -> Self {
        Cli {
            dir: tempfile::tempdir().expect("dir"),
        }
    }

    fn run(&self, args: &[&str], stdin: &str) -> (bool, String, String) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tessera-login"))
            .args(args)
            .env(
                "TESSERA_LOGIN__DATABASE_URL",
                format!("sqlite://{}", self.dir.path().join("d.db").display()),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("write");
        let out = child.wait_with_output().expect("wait");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

#[test]
fn users_are_added_from_a_piped_password_and_duplicates_are_refused_clearly() {
    let cli = Cli::new();
    let (ok, out, err) = cli.run(&["user", "add", "carol"], "long enough password\n");
    assert!(ok, "{out}{err}");
    assert!(out.contains("added user carol"));
    let (ok, _, err) = cli.run(&["user", "add", "carol"], "long enough password\n");
    assert!(!ok);
    assert!(err.contains("already exists"), "{err}");
    let (ok, out, _) = cli.run(
        &["user", "add", "carol", "--if-absent"],
        "long enough password\n",
    );
    assert!(ok && out.contains("left unchanged"), "{out}");
    let (ok, _, err) = cli.run(&["user", "add", "dave"], "short\n");
    assert!(!ok && err.contains("too short"), "{err}");
    let (ok, _, err) = cli.run(&["user", "add", "dave", "--password", "x"], "");
    assert!(
        !ok && err.contains("unexpected argument"),
        "no password arguments: {err}"
    );
    let (ok, out, _) = cli.run(&["user", "totp-enroll", "carol"], "");
    assert!(ok && out.contains("otpauth://totp/"), "{out}");
    // No session service runs here: the directory change holds, and the command says
    // the sessions could not be ended and how to finish.
    let (ok, _, err) = cli.run(&["user", "disable", "carol"], "");
    assert!(
        !ok,
        "a disable that could not end the sessions is not a success"
    );
    assert!(
        err.contains(
            "the user was disabled in the directory, but the sessions of carol could not be ended"
        ) && err.contains("tessera-login user end-sessions carol"),
        "{err}"
    );
    let (ok, _, err) = cli.run(&["user", "passwd", "nobody"], "another long password\n");
    assert!(!ok && err.contains("no user named"), "{err}");
}

#[test]
fn a_site_secret_is_shown_once_and_only_its_hash_is_stored() {
    let cli = Cli::new();
    let (ok, out, err) = cli.run(
        &[
            "site",
            "add",
            "wiki-a",
            "--redirect-uri",
            "https://a.example/callback",
            "--post-logout-uri",
            "https://a.example/",
        ],
        "",
    );
    assert!(ok, "{err}");
    let secret = out.lines().last().expect("secret line").trim().to_owned();
    assert_eq!(secret.len(), 43, "{out}");
    let db = std::fs::read(cli.dir.path().join("d.db")).expect("db");
    let wal = std::fs::read(cli.dir.path().join("d.db-wal")).unwrap_or_default();
    let haystack = [db, wal].concat();
    assert!(
        !haystack
            .windows(secret.len())
            .any(|w| w == secret.as_bytes()),
        "the secret itself is not stored"
    );
    let (ok, _, err) = cli.run(
        &[
            "site",
            "add",
            "wiki-a",
            "--redirect-uri",
            "https://a.example/callback",
        ],
        "",
    );
    assert!(!ok && err.contains("already exists"), "{err}");
    let (ok, _, err) = cli.run(&["site", "add", "wiki-b"], "");
    assert!(!ok && err.contains("--redirect-uri"), "{err}");
    let (ok, out, _) = cli.run(&["site", "reset-secret", "wiki-a"], "");
    let new_secret = out.lines().last().expect("secret line").trim().to_owned();
    assert!(
        ok && new_secret.len() == 43 && new_secret != secret,
        "{out}"
    );
    let (ok, _, err) = cli.run(&["site", "reset-secret", "wiki-z"], "");
    assert!(!ok && err.contains("no site named"), "{err}");
    let (ok, out, _) = cli.run(&["site", "list"], "");
    assert!(
        ok && out.contains("wiki-a") && out.contains("https://a.example/callback"),
        "{out}"
    );
    assert!(!out.contains(&secret));
}
