//! Runs the ```` ```sh ```` blocks of a Markdown file, in order, as one bash
//! session, and checks each command's output against what the file shows.
//!
//! The conventions (also stated at the top of the README's walkthrough):
//!
//! - Every ```` ```sh ```` block runs, in order, in **one** `bash` with
//!   `set -euo pipefail` and an empty environment (`PATH`, `HOME`, `LANG`
//!   only): variables and functions carry over from block to block, a
//!   variable used before the README defines it fails the run, and so does
//!   any command that fails.
//! - A comment line directly under a command (no blank line between) shows
//!   what that command prints: `# {"active":true,"scope":"orders.read",…}`.
//!   Each such line must be found in the command's standard output, where `…`
//!   stands for anything and whitespace is ignored on both sides (grpcurl
//!   indents its JSON, curl does not). Explanations go above a command or
//!   after a blank line.
//! - A block in another shell language (`bash`, `shell`, `console`, no
//!   language) is not run, and must say why in a `<!-- not run: … -->` line
//!   right above it; a block in any other language (`toml`, `text`, …) is
//!   not a command block.
//! - The only lines never run are the ones a caller names as skipped (the
//!   README's `cargo run … dev`, which the test replaces by the built binary,
//!   and `scripts/test`, which would run the suite recursively); each must
//!   occur exactly once.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Read as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Fences of shell code that are not `sh`: such a block must say why it is
/// not run.
const OTHER_SHELL_FENCES: &[&str] = &["", "bash", "shell", "console", "zsh", "sh-session"];

/// The marker that must stand right above a shell block that is not run.
const NOT_RUN: &str = "<!-- not run:";

/// One command of a `sh` block, as bash will read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Step {
    /// The README line the command starts on (1-based).
    pub(crate) line: usize,
    /// The command's text, possibly several lines.
    pub(crate) command: String,
    /// The comment lines directly under it, without their `# `.
    pub(crate) expected: Vec<String>,
}

/// Splits every `sh` block of `markdown` into steps, leaving out the lines in
/// `skipped` (each must occur exactly once). Errors name the README line.
pub(crate) fn steps(markdown: &str, skipped: &[&str]) -> Result<Vec<Step>, String> {
    let mut steps = Vec::new();
    let mut skipped_seen: BTreeMap<&str, usize> = skipped.iter().map(|line| (*line, 0)).collect();
    let lines: Vec<&str> = markdown.lines().collect();
    let mut index = 0;
    let mut previous_text_line = "";
    while index < lines.len() {
        let line = lines[index];
        let Some(info) = line.trim_start().strip_prefix("```") else {
            if !line.trim().is_empty() {
                previous_text_line = line.trim();
            }
            index += 1;
            continue;
        };
        let info = info.trim();
        let start = index + 1;
        let end = (start..lines.len())
            .find(|&at| lines[at].trim() == "```")
            .ok_or_else(|| format!("README line {}: unclosed code block", index + 1))?;
        if info == "sh" {
            let block: Vec<(usize, &str)> = (start..end)
                .map(|at| (at + 1, lines[at]))
                .filter(|(_, text)| match skipped_seen.get_mut(text.trim()) {
                    Some(seen) => {
                        *seen += 1;
                        false
                    }
                    None => true,
                })
                .collect();
            steps.extend(block_steps(&block)?);
        } else if OTHER_SHELL_FENCES.contains(&info) && !previous_text_line.starts_with(NOT_RUN) {
            return Err(format!(
                "README line {}: a shell block must be ```sh (the README test runs it) or say why \
                 it is not run in a `{NOT_RUN} … -->` line right above it",
                index + 1
            ));
        }
        previous_text_line = "";
        index = end + 1;
    }
    for (line, seen) in skipped_seen {
        if seen != 1 {
            return Err(format!(
                "the skipped line `{line}` occurs {seen} times in the sh blocks, not once"
            ));
        }
    }
    Ok(steps)
}

/// One block's steps: a command runs from its first line until bash reads
/// it as complete; the comment lines right under it are its expected output.
fn block_steps(block: &[(usize, &str)]) -> Result<Vec<Step>, String> {
    let mut steps: Vec<Step> = Vec::new();
    let mut index = 0;
    // Whether the last line read belongs to a step's command or expected
    // output (comments there are expected output, not explanations).
    let mut under_command = false;
    while index < block.len() {
        let (line_number, text) = block[index];
        let trimmed = text.trim();
        if trimmed.is_empty() {
            under_command = false;
            index += 1;
            continue;
        }
        if let Some(comment) = trimmed.strip_prefix('#') {
            if under_command && let Some(step) = steps.last_mut() {
                step.expected
                    .push(comment.strip_prefix(' ').unwrap_or(comment).to_owned());
            }
            index += 1;
            continue;
        }
        let mut command = String::new();
        loop {
            let Some((_, text)) = block.get(index) else {
                return Err(format!(
                    "README line {line_number}: the command starting here never ends (bash \
                     reads it as incomplete at the end of its block)"
                ));
            };
            command.push_str(text);
            command.push('\n');
            index += 1;
            if is_complete(&command)? {
                break;
            }
        }
        steps.push(Step {
            line: line_number,
            command,
            expected: Vec::new(),
        });
        under_command = true;
    }
    Ok(steps)
}

/// Whether bash parses `command` as complete (`bash -n`), and it does not
/// end in a line continuation.
fn is_complete(command: &str) -> Result<bool, String> {
    if command.trim_end_matches('\n').ends_with('\\') {
        return Ok(false);
    }
    let status = Command::new("bash")
        .args(["-n", "-c", command])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|error| format!("cannot run bash: {error}"))?;
    Ok(status.success())
}

/// The bash script running `steps`: each command's standard output goes to
/// `outputs/<line>`, and a failure names the README line of its command.
pub(crate) fn script(steps: &[Step], outputs: &Path) -> String {
    let mut script = String::from(
        "set -euo pipefail\n\
         __readme_line=0\n\
         trap '__readme_status=$?; echo \"README line $__readme_line failed (exit status $__readme_status)\" >&2' ERR\n",
    );
    for step in steps {
        let _ = write!(
            script,
            "__readme_line={line}\n{{ {command}}} >'{outputs}/{line}'\n",
            line = step.line,
            command = step.command,
            outputs = outputs.display(),
        );
    }
    script.push_str("__readme_line=0\n");
    script
}

/// Whether `output` shows `expected`: whitespace ignored on both sides, each
/// piece of `expected` between `…` wildcards found in order. Returns the
/// first piece not found.
pub(crate) fn missing_piece<'a>(output: &str, expected: &'a str) -> Option<&'a str> {
    let output: String = output.chars().filter(|c| !c.is_whitespace()).collect();
    let mut rest = output.as_str();
    for piece in expected.split('…') {
        let wanted: String = piece.chars().filter(|c| !c.is_whitespace()).collect();
        if wanted.is_empty() {
            continue;
        }
        match rest.find(&wanted) {
            Some(at) => rest = &rest[at + wanted.len()..],
            None => return Some(piece.trim()),
        }
    }
    None
}

/// What a run of the steps did.
#[derive(Debug)]
pub(crate) struct Transcript {
    /// Each step's command and its standard output, in order.
    pub(crate) text: String,
    /// bash's standard error.
    pub(crate) stderr: String,
}

/// Runs `steps` in one bash in `directory`, with `path` as `PATH`, killing
/// it after `timeout`; checks every expected output. The error carries the
/// transcript.
pub(crate) fn run(
    steps: &[Step],
    directory: &Path,
    path: &str,
    timeout: Duration,
) -> Result<Transcript, String> {
    let outputs = tempfile::tempdir().map_err(|error| error.to_string())?;
    let mut bash = Command::new("bash");
    // Its own process group, so a timeout ends what it started too.
    std::os::unix::process::CommandExt::process_group(&mut bash, 0);
    let mut child = bash
        .args([
            "--noprofile",
            "--norc",
            "-c",
            &script(steps, outputs.path()),
        ])
        .current_dir(directory)
        .env_clear()
        .env("PATH", path)
        .env("HOME", std::env::var("HOME").unwrap_or_else(|_| "/".into()))
        .env("LANG", "C.UTF-8")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| format!("cannot run bash: {error}"))?;
    let mut stderr_pipe = child.stderr.take().ok_or("no stderr pipe")?;
    let stderr_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr_pipe.read_to_string(&mut text);
        text
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|error| error.to_string())? {
            break Some(status);
        }
        if Instant::now() > deadline {
            kill_group(child.id());
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = stderr_reader.join().unwrap_or_default();
    let mut transcript = Transcript {
        text: String::new(),
        stderr,
    };
    let mut failures = Vec::new();
    for step in steps {
        let Ok(output) = std::fs::read_to_string(outputs.path().join(step.line.to_string())) else {
            break;
        };
        let _ = write!(
            transcript.text,
            "$ {}{}",
            step.command,
            indent_output(&output)
        );
        for expected in &step.expected {
            if let Some(piece) = missing_piece(&output, expected) {
                failures.push(format!(
                    "README line {}: the output lacks `{piece}` (shown as `# {expected}`)",
                    step.line
                ));
            }
        }
    }
    match status {
        None => failures.insert(0, format!("still running after {timeout:?}: killed")),
        Some(status) if !status.success() => {
            // The ERR trap names the command's README line.
            let failed = transcript
                .stderr
                .lines()
                .rev()
                .find(|line| line.starts_with("README line "))
                .unwrap_or("no command failed (an exit from the script itself?)");
            failures.insert(0, format!("{failed}; bash exited with {status}"));
        }
        Some(_) => {}
    }
    if failures.is_empty() {
        Ok(transcript)
    } else {
        Err(format!(
            "{}\n\n--- transcript ---\n{}\n--- stderr ---\n{}",
            failures.join("\n"),
            transcript.text,
            transcript.stderr
        ))
    }
}

/// Kills the process group `leader` leads (bash and what it started).
fn kill_group(leader: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{leader}")])
        .status();
}

fn indent_output(output: &str) -> String {
    output.lines().map(|line| format!("  | {line}\n")).collect()
}

#[cfg(test)]
mod tests {
    //! The harness can fail: a failing command, an output that lacks what
    //! the file shows, an undefined variable, a shell block that hides from
    //! the test, a skipped line that moved.

    use super::*;

    fn run_markdown(markdown: &str) -> Result<Transcript, String> {
        let directory = tempfile::tempdir().map_err(|error| error.to_string())?;
        let steps = steps(markdown, &[])?;
        run(
            &steps,
            directory.path(),
            &std::env::var("PATH").unwrap_or_default(),
            Duration::from_secs(20),
        )
    }

    #[test]
    fn a_failing_command_fails_the_run_and_names_its_line() {
        let error =
            run_markdown("text\n\n```sh\ntrue\nfalse\necho never > ran\n```\n").unwrap_err();
        assert!(error.contains("README line 5 failed"), "{error}");
        assert!(!error.contains("$ echo never"), "{error}");
    }

    #[test]
    fn a_failing_command_inside_a_pipeline_or_substitution_fails_the_run() {
        assert!(run_markdown("```sh\nfalse | cat\n```\n").is_err());
        assert!(run_markdown("```sh\nX=$(false)\n```\n").is_err());
    }

    #[test]
    fn an_output_lacking_what_the_file_shows_fails_the_run() {
        let error = run_markdown("```sh\necho '{\"active\":false}'\n# {\"active\":true}\n```\n")
            .unwrap_err();
        assert!(
            error.contains("README line 2: the output lacks `{\"active\":true}`"),
            "{error}"
        );
    }

    #[test]
    fn wildcards_match_anything_and_whitespace_is_ignored() {
        let markdown = "```sh\nprintf '{\\n  \"token\": \"lkt_abc\",\\n  \"exp\": 12\\n}\\n'\n\
                        # {\"token\":\"lkt_…\",\"exp\":…}\n```\n";
        run_markdown(markdown).unwrap();
        // In order: a piece found only before the previous one is missing.
        let error = run_markdown("```sh\necho b a\n# a…b\n```\n").unwrap_err();
        assert!(error.contains("lacks `b`"), "{error}");
    }

    #[test]
    fn variables_and_functions_carry_over_from_block_to_block() {
        let markdown = "```sh\nX=1\nshow() { echo \"x=$1\"; }\n```\n\nprose\n\n```sh\nshow \"$X\"\n# x=1\n```\n";
        run_markdown(markdown).unwrap();
    }

    #[test]
    fn an_undefined_variable_fails_the_run() {
        // Inherited variables do not count: the environment is empty.
        let error = run_markdown("```sh\necho \"$CARGO_MANIFEST_DIR\"\n```\n").unwrap_err();
        assert!(
            error.contains("README line 2 failed") || error.contains("unbound"),
            "{error}"
        );
    }

    #[test]
    fn multi_line_commands_are_one_step_and_comments_after_a_blank_line_are_prose() {
        let markdown = "```sh\necho '{\n  \"a\": 1\n}' \\\n  | tr -d ' '\n# \"a\":1\n\n# prose, not output\necho done\n# done\n```\n";
        let steps = steps(markdown, &[]).unwrap();
        assert_eq!(steps.len(), 2, "{steps:?}");
        assert_eq!(steps[0].line, 2);
        assert_eq!(steps[0].expected, vec!["\"a\":1".to_owned()]);
        assert_eq!(steps[1].expected, vec!["done".to_owned()]);
        run_markdown(markdown).unwrap();
    }

    #[test]
    fn a_shell_block_that_is_not_sh_must_say_why() {
        let error = steps("```bash\nrm -rf /\n```\n", &[]).unwrap_err();
        assert!(error.contains("README line 1"), "{error}");
        assert!(steps("```\nls\n```\n", &[]).is_err());
        let said = "<!-- not run: takes ten minutes -->\n```bash\nscripts/bench\n```\n\n```toml\na = 1\n```\n";
        assert_eq!(steps(said, &[]).unwrap(), Vec::new());
    }

    #[test]
    fn skipped_lines_are_left_out_and_must_occur_once() {
        let markdown = "```sh\nscripts/test\necho ok\n```\n";
        let steps_left = steps(markdown, &["scripts/test"]).unwrap();
        assert_eq!(steps_left.len(), 1);
        assert_eq!(steps_left[0].command, "echo ok\n");
        let error = steps("```sh\necho ok\n```\n", &["scripts/test"]).unwrap_err();
        assert!(error.contains("0 times"), "{error}");
    }

    #[test]
    fn a_run_that_hangs_is_killed() {
        let directory = tempfile::tempdir().unwrap();
        let steps = steps("```sh\nsleep 30\n```\n", &[]).unwrap();
        let started = Instant::now();
        let error = run(
            &steps,
            directory.path(),
            &std::env::var("PATH").unwrap_or_default(),
            Duration::from_millis(500),
        )
        .unwrap_err();
        assert!(error.contains("killed"), "{error}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}
