//! `Retry-After` (RFC 9110 §10.2.3): how long the issuer asked to wait,
//! as delta-seconds (what Latchkey sends) or an HTTP-date (what a proxy or
//! load balancer in front of it may send).

use std::time::{Duration, SystemTime};

/// The wait `value` asks for, counted from `now` for a date. A date already
/// past asks for no wait; anything else unreadable is ignored (`None`: the
/// source's own backoff applies).
pub(crate) fn parse(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sun, 06 Nov 1994 08:49:37 GMT, RFC 9110's example date.
    fn example_date() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777)
    }

    #[test]
    fn delta_seconds_are_a_wait() {
        assert_eq!(parse("120", example_date()), Some(Duration::from_secs(120)));
        assert_eq!(parse(" 0 ", example_date()), Some(Duration::ZERO));
    }

    #[test]
    fn an_http_date_is_the_time_left_until_it() {
        let now = example_date() - Duration::from_secs(90);
        // IMF-fixdate, and the obsolete RFC 850 and asctime forms.
        for date in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(parse(date, now), Some(Duration::from_secs(90)), "{date}");
        }
        // Already past: retry now.
        assert_eq!(
            parse(
                "Sun, 06 Nov 1994 08:49:37 GMT",
                example_date() + Duration::from_secs(5)
            ),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn anything_else_is_ignored() {
        for value in ["", "soon", "-5", "1.5", "Sun, 32 Nov 1994 08:49:37 GMT"] {
            assert_eq!(parse(value, example_date()), None, "{value:?}");
        }
    }
}
