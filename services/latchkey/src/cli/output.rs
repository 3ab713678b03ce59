//! How results are shown: tables with relative times for people, the
//! responses' proto3 JSON (`--output json`) for scripts.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use prost_reflect::{DescriptorPool, DynamicMessage};

use super::error::CliError;

/// The output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// Tables and sentences for people.
    Human,
    /// The response as proto3 JSON (camelCase fields), as the HTTP API and
    /// grpcurl show it.
    Json,
}

/// Writes a line of the command's output to stdout.
#[allow(clippy::print_stdout)] // The command's output for its user.
pub(crate) fn line(text: &str) {
    println!("{text}");
}

/// Writes a warning or a prompt to stderr, so stdout stays the output.
#[allow(clippy::print_stderr)]
pub(crate) fn note(text: &str) {
    eprintln!("{text}");
}

/// The descriptors of every Latchkey proto, decoded once.
fn pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| {
        // Built from our own protos by `latchkey-proto`'s build script: a
        // set that does not decode is a broken build, not a runtime case.
        DescriptorPool::decode(latchkey_proto::FILE_DESCRIPTOR_SET)
            .expect("latchkey-proto's descriptor set decodes")
    })
}

/// The proto package of every message the CLI prints as JSON.
const REGISTRY_PACKAGE: &str = "latchkey.registry.v1";

/// Prints `message` (of the registry's proto type `name`, e.g.
/// `ListCredentialsResponse`) as proto3 JSON, through its descriptor like
/// the registry's HTTP API, so both show the same JSON.
pub(crate) fn json(message: &impl prost::Message, name: &str) -> Result<(), CliError> {
    let full_name = format!("{REGISTRY_PACKAGE}.{name}");
    let descriptor = pool()
        .get_message_by_name(&full_name)
        .unwrap_or_else(|| panic!("the descriptor set holds {full_name}"));
    let dynamic = DynamicMessage::decode(descriptor, message.encode_to_vec().as_slice())
        .map_err(|error| CliError::Io(std::io::Error::other(error)))?;
    let text = serde_json::to_string_pretty(&dynamic)
        .map_err(|error| CliError::Io(std::io::Error::other(error)))?;
    line(&text);
    Ok(())
}

/// Prints `rows` under `headers`, columns padded to their widest cell.
pub(crate) fn table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers
        .iter()
        .map(|header| header.chars().count())
        .collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let render = |cells: &mut dyn Iterator<Item = &str>| {
        let padded: Vec<String> = cells
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        padded.join("  ").trim_end().to_owned()
    };
    line(&render(&mut headers.iter().copied()));
    for row in rows {
        line(&render(&mut row.iter().map(String::as_str)));
    }
}

/// `"-"` for an empty text, the text otherwise.
pub(crate) fn or_dash(text: &str) -> String {
    if text.is_empty() {
        "-".to_owned()
    } else {
        text.to_owned()
    }
}

/// A timestamp as "3 minutes ago" (or "in 2 days"), "never" when unset.
pub(crate) fn relative(timestamp: Option<&prost_types::Timestamp>) -> String {
    let Some(timestamp) = timestamp else {
        return "never".to_owned();
    };
    relative_to(timestamp, SystemTime::now())
}

fn relative_to(timestamp: &prost_types::Timestamp, now: SystemTime) -> String {
    let Ok(time) = SystemTime::try_from(*timestamp) else {
        return "invalid time".to_owned();
    };
    match now.duration_since(time) {
        Ok(ago) => format!("{} ago", span(ago)).replace("just now ago", "just now"),
        Err(ahead) => format!("in {}", span(ahead.duration())).replace("in just now", "just now"),
    }
}

/// A duration in its largest whole unit.
fn span(duration: Duration) -> String {
    let seconds = duration.as_secs();
    let (count, unit) = match seconds {
        0..5 => return "just now".to_owned(),
        5..60 => (seconds, "second"),
        60..3_600 => (seconds / 60, "minute"),
        3_600..86_400 => (seconds / 3_600, "hour"),
        86_400..2_592_000 => (seconds / 86_400, "day"),
        2_592_000..31_536_000 => (seconds / 2_592_000, "month"),
        _ => (seconds / 31_536_000, "year"),
    };
    let plural = if count == 1 { "" } else { "s" };
    format!("{count} {unit}{plural}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> prost_types::Timestamp {
        prost_types::Timestamp { seconds, nanos: 0 }
    }

    #[test]
    fn times_read_like_a_console() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(relative_to(&at(1_000_000 - 2), now), "just now");
        assert_eq!(relative_to(&at(1_000_000 - 30), now), "30 seconds ago");
        assert_eq!(relative_to(&at(1_000_000 - 180), now), "3 minutes ago");
        assert_eq!(relative_to(&at(1_000_000 - 3_600), now), "1 hour ago");
        assert_eq!(relative_to(&at(1_000_000 + 2 * 86_400), now), "in 2 days");
        assert_eq!(relative(None), "never");
    }
}
