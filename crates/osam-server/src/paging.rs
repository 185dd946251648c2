//! AIP-158 paging: `page_size` (0 means the default, capped at the maximum) and opaque page tokens
//! bound to the request they came from, so a token reused with other parameters is rejected.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::digest::sha256_of_fields;
use crate::error::ApiError;

pub const DEFAULT_PAGE_SIZE: usize = 100;
pub const MAX_PAGE_SIZE: usize = 1000;

/// A validated page request: where to start and how many items to return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub offset: usize,
    pub size: usize,
}

impl Page {
    /// Parses `page_size` and `page_token` for a request whose parameters hash to `binding`.
    pub fn parse(page_size: i32, page_token: &str, binding: u64) -> Result<Page, ApiError> {
        let size = match page_size {
            size if size < 0 => {
                return Err(ApiError::invalid_argument(
                    "page.page_size",
                    "must not be negative",
                ));
            }
            0 => DEFAULT_PAGE_SIZE,
            size => (size as usize).min(MAX_PAGE_SIZE),
        };
        if page_token.is_empty() {
            return Ok(Page { offset: 0, size });
        }
        let invalid = || {
            ApiError::invalid_argument(
                "page.page_token",
                "not a token from a previous page of this request",
            )
        };
        let decoded = URL_SAFE_NO_PAD.decode(page_token).map_err(|_| invalid())?;
        let text = String::from_utf8(decoded).map_err(|_| invalid())?;
        let (offset, token_binding) = text
            .strip_prefix("v1:")
            .and_then(|rest| rest.split_once(':'))
            .ok_or_else(invalid)?;
        let offset: usize = offset.parse().map_err(|_| invalid())?;
        if token_binding != format!("{binding:016x}") {
            return Err(invalid());
        }
        Ok(Page { offset, size })
    }

    /// The items of this page and the token of the next one (empty on the last page).
    pub fn slice<'a, T>(&self, items: &'a [T], binding: u64) -> (&'a [T], String) {
        let start = self.offset.min(items.len());
        let end = start.saturating_add(self.size).min(items.len());
        let next_token = if end < items.len() {
            URL_SAFE_NO_PAD.encode(format!("v1:{end}:{binding:016x}"))
        } else {
            String::new()
        };
        (&items[start..end], next_token)
    }
}

/// A stable hash of the parameters a page token is bound to.
pub fn binding_of(parts: &[&str]) -> u64 {
    let fingerprint = sha256_of_fields(parts.iter().map(|part| part.as_bytes()));
    let mut first = [0u8; 8];
    first.copy_from_slice(&fingerprint[..8]);
    u64::from_be_bytes(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_walk_the_whole_list() {
        let items: Vec<u32> = (0..250).collect();
        let binding = binding_of(&["alice"]);
        let mut token = String::new();
        let mut seen = Vec::new();
        loop {
            let page = Page::parse(100, &token, binding).expect("valid");
            let (slice, next) = page.slice(&items, binding);
            seen.extend_from_slice(slice);
            if next.is_empty() {
                break;
            }
            token = next;
        }
        assert_eq!(seen, items);
    }

    #[test]
    fn tokens_are_bound_to_their_request() {
        let items: Vec<u32> = (0..10).collect();
        let (_, token) = Page::parse(3, "", binding_of(&["alice"]))
            .expect("valid")
            .slice(&items, binding_of(&["alice"]));
        assert!(Page::parse(3, &token, binding_of(&["bob"])).is_err());
        assert!(Page::parse(3, "garbage", binding_of(&["alice"])).is_err());
        assert!(Page::parse(-1, "", 0).is_err());
        assert_eq!(Page::parse(0, "", 0).expect("valid").size, DEFAULT_PAGE_SIZE);
        assert_eq!(Page::parse(5000, "", 0).expect("valid").size, MAX_PAGE_SIZE);
    }
}
