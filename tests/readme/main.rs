//! The README is a test: every ```` ```sh ```` block of `README.md` runs, in
//! order, in one bash session with the real `grpcurl` and `curl`, against a
//! fresh `latchkey dev`, and fails when a command fails or its output lacks
//! what the README shows under it (the conventions are in `harness.rs` and
//! at the top of the README's walkthrough). A new block is picked up without
//! touching this file.
//!
//! The README's first block starts Latchkey with `cargo run --release --bin
//! latchkey -- dev`; a release build takes 15 minutes, so the test runs the
//! already built `latchkey` binary (the one next to this test, built by
//! `scripts/test`) with the same arguments, `dev`, in a temporary directory
//! that is also the session's working directory (so `./latchkey-data` is
//! fresh). That block's other line, `scripts/test`, would run this suite
//! recursively. Those two lines, matched exactly, are the only ones not run.
//!
//! `latchkey dev` listens on its default ports, the ones the README's
//! commands name (registry 50051 and 8081, issuer 50052 and 8080, internal 50061 and
//! 50062, admin 9090 and 9091): the test fails when something else holds them.
//! grpcurl is `LATCHKEY_TEST_GRPCURL` (set by `scripts/test`, which installs
//! it) or the one on `PATH`; its absence fails the test.

#![allow(unused_crate_dependencies, clippy::unwrap_used)]

mod harness;

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The README lines not run (see the module documentation).
const START_LATCHKEY: &str = "cargo run --release --bin latchkey -- dev";
const RUN_THE_SUITE: &str = "scripts/test";

/// What the whole walkthrough may take (it takes a few seconds).
const RUN_TIMEOUT: Duration = Duration::from_secs(90);

#[test]
fn every_sh_block_of_the_readme_runs_as_written() {
    let readme_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let readme = std::fs::read_to_string(&readme_path).unwrap();
    let steps = harness::steps(&readme, &[START_LATCHKEY, RUN_THE_SUITE]).unwrap();
    assert!(
        steps.len() > 20,
        "the walkthrough has more commands than {}",
        steps.len()
    );
    let tools = tools_directory();
    let directory = tempfile::tempdir().unwrap();
    let latchkey = Latchkey::start(directory.path());
    let path = format!(
        "{}:{}",
        tools.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let outcome = harness::run(&steps, directory.path(), &path, RUN_TIMEOUT);
    let log = latchkey.stop();
    match outcome {
        // Shown with `--nocapture`: what a reader following the README sees.
        Ok(transcript) => eprintln!("{}", transcript.text),
        Err(error) => panic!("{error}\n--- latchkey dev ---\n{log}"),
    }
}

/// A directory holding `grpcurl` (a link to `LATCHKEY_TEST_GRPCURL` when
/// set) and `latchkey`, put first on the session's `PATH`; fails when there
/// is no grpcurl.
fn tools_directory() -> tempfile::TempDir {
    let tools = tempfile::tempdir().unwrap();
    let grpcurl = match std::env::var_os("LATCHKEY_TEST_GRPCURL") {
        Some(path) => PathBuf::from(path),
        None => which("grpcurl").expect(
            "grpcurl is needed: run scripts/test (it installs it) or set LATCHKEY_TEST_GRPCURL",
        ),
    };
    std::os::unix::fs::symlink(&grpcurl, tools.path().join("grpcurl")).unwrap();
    // The README's CLI section runs the `latchkey` built next to this test.
    std::os::unix::fs::symlink(binary("latchkey"), tools.path().join("latchkey")).unwrap();
    let version = Command::new(tools.path().join("grpcurl"))
        .arg("-version")
        .output()
        .unwrap();
    assert!(
        version.status.success(),
        "{} does not run",
        grpcurl.display()
    );
    assert!(
        which("curl").is_some(),
        "curl is needed: scripts/test installs it"
    );
    tools
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|directory| directory.join(name))
        .find(|candidate| candidate.is_file())
}

/// A running `latchkey dev`, stopped on drop.
struct Latchkey {
    child: Child,
    log: PathBuf,
}

impl Latchkey {
    /// Starts `latchkey dev` in `directory` and waits until it has printed
    /// its getting-started text (its listeners are bound and its admin
    /// created by then). A port held by something else is retried for a few
    /// seconds (another test's client may hold it briefly), then fails.
    fn start(directory: &Path) -> Self {
        let log = directory.join("latchkey-dev.log");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mut child = Command::new(binary("latchkey"))
                .arg("dev")
                .current_dir(directory)
                // As a user's shell would start it: none of the test
                // environment's LATCHKEY_* or OTEL_* variables.
                .env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .unwrap();
            let lines = printed_lines(&mut child);
            let mut printed = String::new();
            let started = loop {
                match lines.recv_timeout(Duration::from_secs(30)) {
                    Ok(line) => {
                        let done = line.starts_with("Stop with Ctrl-C");
                        printed.push_str(&line);
                        printed.push('\n');
                        if done {
                            break true;
                        }
                    }
                    Err(_) => break false,
                }
            };
            if started {
                return Latchkey { child, log };
            }
            let _ = child.kill();
            let _ = child.wait();
            let stderr = std::fs::read_to_string(&log).unwrap_or_default();
            assert!(
                stderr.contains("cannot listen") && Instant::now() < deadline,
                "latchkey dev did not start:\n{printed}\n{stderr}"
            );
            // A fresh data directory for the next try.
            let _ = std::fs::remove_dir_all(directory.join("latchkey-data"));
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Stops it (SIGTERM) and returns its log.
    fn stop(mut self) -> String {
        terminate(&mut self.child);
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Latchkey {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}

fn terminate(child: &mut Child) {
    if child.try_wait().ok().flatten().is_some() {
        return;
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The child's standard output, line by line, read on a thread (it keeps
/// being drained after start so the child never blocks on a full pipe).
fn printed_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().unwrap();
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = sender.send(line);
        }
    });
    receiver
}

/// The binary `name`, built next to this test.
fn binary(name: &str) -> PathBuf {
    let test = std::env::current_exe().unwrap();
    let mut directory = test.parent().unwrap();
    if directory.ends_with("deps") {
        directory = directory.parent().unwrap();
    }
    let path = directory.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is not built: run `cargo build -p latchkey` first (scripts/test builds every binary)",
        path.display()
    );
    path
}
