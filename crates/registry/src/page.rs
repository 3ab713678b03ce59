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

/// The order of a list by creation time (AIP-132 `order_by`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ListOrder {
    /// `"create_time"` (the default): oldest first.
    #[default]
    OldestFirst,
    /// `"create_time desc"`: newest first.
    NewestFirst,
}

impl ListOrder {
    /// Reads an AIP-132 `order_by`: empty, `create_time` or
    /// `create_time desc` (`createTime` too, `asc` allowed; words separated
    /// by any whitespace). Anything else is `INVALID_ARGUMENT` naming
    /// `order_by`.
    pub fn parse(order_by: &str) -> Result<Self, RegistryError> {
        let words: Vec<&str> = order_by.split_whitespace().collect();
        let field = |word: &str| word == "create_time" || word == "createTime";
        match words.as_slice() {
            [] => Ok(Self::OldestFirst),
            [name] | [name, "asc"] if field(name) => Ok(Self::OldestFirst),
            [name, "desc"] if field(name) => Ok(Self::NewestFirst),
            _ => Err(RegistryError::invalid(
                "order_by",
                format!(
                    "{:?} is not supported (allowed: \"create_time\", \"create_time desc\")",
                    order_by.chars().take(64).collect::<String>()
                ),
            )),
        }
    }

    fn binding(self) -> &'static str {
        match self {
            Self::OldestFirst => "asc",
            Self::NewestFirst => "desc",
        }
    }
}

/// A validated page request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// Most items to return (1..=MAX_PAGE_SIZE).
    pub size: u32,
    /// Start after this position (in `order`); `None` for the first page.
    pub after: Option<Position>,
    /// The list's order; lists with a fixed order ignore it.
    pub order: ListOrder,
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
        Ok(PageRequest {
            size,
            after,
            order: ListOrder::OldestFirst,
        })
    }

    /// Like [`PageToken::request`] for a list in `order`; the token is
    /// bound to the order too, so a page token of one order cannot be
    /// replayed in the other (it would skip or repeat items). Continue with
    /// `filter` as [`PageToken::bound_filter`] returns it.
    pub fn ordered_request(
        page_size: i32,
        page_token: &str,
        filter: &str,
        order: ListOrder,
    ) -> Result<PageRequest, RegistryError> {
        let mut request = Self::request(page_size, page_token, &Self::bound_filter(filter, order))?;
        request.order = order;
        Ok(request)
    }

    /// The filter binding of a list in `order`.
    pub fn bound_filter(filter: &str, order: ListOrder) -> String {
        format!("{filter}\n{}", order.binding())
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
    fn a_token_of_one_order_is_refused_in_the_other() {
        let position = Position {
            create_time: crate::now(),
            id: "abc".into(),
        };
        let token = PageToken::encode(
            &position,
            &PageToken::bound_filter("p", ListOrder::NewestFirst),
        );
        let request = PageToken::ordered_request(5, &token, "p", ListOrder::NewestFirst).unwrap();
        assert_eq!(request.order, ListOrder::NewestFirst);
        assert_eq!(request.after, Some(position));
        let error = PageToken::ordered_request(5, &token, "p", ListOrder::OldestFirst).unwrap_err();
        assert!(error.to_string().starts_with("page_token:"), "{error}");
    }

    #[test]
    fn order_by_takes_create_time_either_way_and_nothing_else() {
        for (text, order) in [
            ("", ListOrder::OldestFirst),
            ("create_time", ListOrder::OldestFirst),
            ("  create_time   asc ", ListOrder::OldestFirst),
            ("create_time desc", ListOrder::NewestFirst),
            ("createTime desc", ListOrder::NewestFirst),
        ] {
            assert_eq!(ListOrder::parse(text).unwrap(), order, "{text:?}");
        }
        for bad in ["name", "create_time DESC", "create_time desc, id", "desc"] {
            let error = ListOrder::parse(bad).unwrap_err();
            assert!(error.to_string().starts_with("order_by:"), "{error}");
        }
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
