//! AIP-158 pagination: page sizes with a default and a maximum, and opaque page tokens that
//! carry the key of the last item of the previous page.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

/// The page size when the request leaves it at zero.
pub const DEFAULT_PAGE_SIZE: u32 = 50;
/// The largest page size; larger requests are clamped to it.
pub const MAX_PAGE_SIZE: u32 = 1000;

const TOKEN_PREFIX: &str = "v1:";

/// A validated page request: how many items, and after which key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// How many items to return.
    pub size: u32,
    /// The key of the last item already returned, if this is not the first page.
    pub after: Option<String>,
}

impl PageRequest {
    /// Validates a page size and token, naming the offending field on error.
    pub fn parse(page_size: i32, page_token: &str) -> Result<Self, crate::FieldViolation> {
        let size = match page_size {
            n if n < 0 => {
                return Err(crate::FieldViolation::new(
                    "page_size",
                    "must not be negative",
                ));
            }
            0 => DEFAULT_PAGE_SIZE,
            n => (n as u32).min(MAX_PAGE_SIZE),
        };
        let after = if page_token.is_empty() {
            None
        } else {
            Some(decode_token(page_token).ok_or_else(|| {
                crate::FieldViolation::new("page_token", "is not a token returned by this API")
            })?)
        };
        Ok(Self { size, after })
    }

    /// How many rows to fetch: one more than the page, to learn whether another page follows.
    pub fn fetch_limit(&self) -> i64 {
        i64::from(self.size) + 1
    }

    /// Cuts the fetched rows to the page and returns the token of the next page, if any.
    pub fn finish<T>(&self, rows: &mut Vec<T>, key: impl Fn(&T) -> String) -> String {
        if rows.len() > self.size as usize {
            rows.truncate(self.size as usize);
            rows.last()
                .map(|last| encode_token(&key(last)))
                .unwrap_or_default()
        } else {
            String::new()
        }
    }
}

fn encode_token(key: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{TOKEN_PREFIX}{key}"))
}

fn decode_token(token: &str) -> Option<String> {
    let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    text.strip_prefix(TOKEN_PREFIX).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_default_clamp_and_reject_negatives() {
        assert_eq!(PageRequest::parse(0, "").unwrap().size, DEFAULT_PAGE_SIZE);
        assert_eq!(PageRequest::parse(5000, "").unwrap().size, MAX_PAGE_SIZE);
        assert_eq!(PageRequest::parse(-1, "").unwrap_err().field, "page_size");
    }

    #[test]
    fn tokens_round_trip_and_garbage_is_rejected() {
        let page = PageRequest::parse(2, "").unwrap();
        let mut rows = vec!["a", "b", "c"];
        let token = page.finish(&mut rows, |r| (*r).to_owned());
        assert_eq!(rows, ["a", "b"]);
        assert_eq!(
            PageRequest::parse(2, &token).unwrap().after.as_deref(),
            Some("b")
        );
        assert_eq!(
            PageRequest::parse(2, "%%%").unwrap_err().field,
            "page_token"
        );

        let mut last = vec!["a"];
        assert_eq!(page.finish(&mut last, |r| (*r).to_owned()), "");
    }
}
