//! Scope syntax, shared by every way a scope reaches the issuer.

/// Longest scope accepted.
pub const MAX_SCOPE_LEN: usize = 128;
/// Most scopes in one request.
pub const MAX_SCOPES: usize = 64;

/// Checks one scope: 1–128 characters of letters, digits and `._:/-`,
/// starting with a letter (the registry's rule for allowed APIs).
pub fn check_scope_syntax(scope: &str) -> Result<(), String> {
    let valid = !scope.is_empty()
        && scope.len() <= MAX_SCOPE_LEN
        && scope.as_bytes()[0].is_ascii_alphabetic()
        && scope
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'/' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "each scope must be 1 to {MAX_SCOPE_LEN} characters of letters, digits and '._:/-', starting with a letter"
        ))
    }
}

/// Splits an OAuth `scope` parameter (space-separated) into scopes.
pub fn parse_scope_list(text: &str) -> Vec<String> {
    text.split(' ')
        .filter(|scope| !scope.is_empty())
        .map(str::to_owned)
        .collect()
}
