//! Keyset pagination in creation order.
//!
//! A page token is the position of the last item returned (its creation time
//! and ID) plus the list's filter, so a token cannot be replayed against a
//! different filter and skip or repeat items.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};

use crate::error::RegistryError;

/// Default page size when the request gives 0.
pub const DEFAULT_PAGE_SIZE: u32 = 50;
/// Largest page size served.
pub const MAX_PAGE_SIZE: u32 = 1000;

/// Where a page starts: strictly after this item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// The item's creation time.
    pub create_time: DateTime<Utc>,
    /// The item's ID, breaking ties between equal times.
    pub id: String,
}

/// A validated page request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// Most items to return (1..=MAX_PAGE_SIZE).
    pub size: u32,
    /// Start after this position; `None` for the first page.
    pub after: Option<Position>,
}

/// One page of results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The items, in creation order.
    pub items: Vec<T>,
    /// The position to continue from; `None` on the last page.
    pub next: Option<Position>,
}

/// Encoding and decoding of opaque page tokens bound to a filter.
#[derive(Debug)]
pub struct PageToken;

impl PageToken {
    /// Validates `page_size` and `page_token` for a list with `filter`.
    pub fn request(
        page_size: i32,
        page_token: &str,
        filter: &str,
    ) -> Result<PageRequest, RegistryError> {
        let size = match page_size {
            0 => DEFAULT_PAGE_SIZE,
            n if n < 0 => return Err(RegistryError::invalid("page_size", "must not be negative")),
            n => (n as u32).min(MAX_PAGE_SIZE),
        };
        let after = if page_token.is_empty() {
            None
        } else {
            Some(Self::decode(page_token, filter)?)
        };
        Ok(PageRequest { size, after })
    }

    /// The token for continuing after `position` with `filter`.
    pub fn encode(position: &Position, filter: &str) -> String {
        let text = format!(
            "{}\n{}\n{}",
            position.create_time.timestamp_micros(),
            position.id,
            filter
        );
        URL_SAFE_NO_PAD.encode(text)
    }

    fn decode(token: &str, filter: &str) -> Result<Position, RegistryError> {
        let invalid = || RegistryError::invalid("page_token", "not a token from a previous call");
        let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
        let text = String::from_utf8(bytes).map_err(|_| invalid())?;
        let mut parts = text.splitn(3, '\n');
        let (Some(micros), Some(id), Some(token_filter)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid());
        };
        if token_filter != filter {
            return Err(RegistryError::invalid(
                "page_token",
                "was issued for a different filter",
            ));
        }
        let micros: i64 = micros.parse().map_err(|_| invalid())?;
        let create_time = DateTime::from_timestamp_micros(micros).ok_or_else(invalid)?;
        Ok(Position {
            create_time,
            id: id.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_round_trips_for_the_same_filter_only() {
        let position = Position {
            create_time: crate::now(),
            id: "abc".into(),
        };
        let token = PageToken::encode(&position, "p\nalice");
        let request = PageToken::request(10, &token, "p\nalice").unwrap();
        assert_eq!(request.after, Some(position));
        assert_eq!(request.size, 10);
        assert!(PageToken::request(10, &token, "p\nbob").is_err());
    }

    #[test]
    fn sizes_default_and_cap_and_garbage_is_refused() {
        assert_eq!(
            PageToken::request(0, "", "").unwrap().size,
            DEFAULT_PAGE_SIZE
        );
        assert_eq!(
            PageToken::request(5000, "", "").unwrap().size,
            MAX_PAGE_SIZE
        );
        assert!(PageToken::request(-1, "", "").is_err());
        let error = PageToken::request(1, "!!not-base64", "").unwrap_err();
        assert!(error.to_string().starts_with("page_token:"));
    }
}
