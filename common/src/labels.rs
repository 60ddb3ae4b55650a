//! Labels and display names: the rules tenants and machines follow, and that alert rules'
//! machine selectors are checked against.

use std::collections::BTreeMap;

/// Free-form key/value labels.
pub type Labels = BTreeMap<String, String>;

/// The most labels one resource may carry.
pub const MAX_LABELS: usize = 64;
/// The longest display name, in characters.
pub const MAX_DISPLAY_NAME: usize = 200;

/// Checks labels: at most 64; keys `[a-z][a-z0-9_.-]{0,62}`; values up to 63 characters without
/// control characters.
pub fn validate_labels(labels: &Labels) -> Result<(), String> {
    if labels.len() > MAX_LABELS {
        return Err(format!(
            "at most {MAX_LABELS} labels are allowed, got {}",
            labels.len()
        ));
    }
    for (key, value) in labels {
        let mut chars = key.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
        let rest_ok =
            chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c));
        if !first_ok || !rest_ok || key.len() > 63 {
            return Err(format!(
                "label key `{key}` must match [a-z][a-z0-9_.-]{{0,62}}"
            ));
        }
        if value.chars().count() > 63 || value.chars().any(char::is_control) {
            return Err(format!(
                "label `{key}` has a value longer than 63 characters or with control characters"
            ));
        }
    }
    Ok(())
}

/// The longest machine id, in bytes.
pub const MAX_MACHINE_ID: usize = 64;

/// Checks a machine id: 1 to 64 characters of `A-Z`, `a-z`, `0-9`, `.`, `_` or `-`. The tenant
/// service registers machines by it; the storage service refuses a query for an id that no
/// machine can have before asking whether one is registered.
pub fn validate_machine_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("is required".to_owned());
    }
    let valid = id.len() <= MAX_MACHINE_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "`{id}` must be 1 to {MAX_MACHINE_ID} characters of A-Z, a-z, 0-9, `.`, `_` or `-`"
        ))
    }
}

/// Checks a display name: up to 200 characters, no control characters.
pub fn validate_display_name(name: &str) -> Result<(), String> {
    if name.chars().count() > MAX_DISPLAY_NAME {
        return Err(format!("must be at most {MAX_DISPLAY_NAME} characters"));
    }
    if name.chars().any(char::is_control) {
        return Err("must not contain control characters".to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn label_rules() {
        assert!(validate_labels(&labels(&[("line", "a"), ("kind.sub-x_1", "press 7")])).is_ok());
        assert!(validate_labels(&labels(&[("Line", "a")])).is_err());
        assert!(validate_labels(&labels(&[("1line", "a")])).is_err());
        assert!(validate_labels(&labels(&[("", "a")])).is_err());
        assert!(validate_labels(&labels(&[("line", &"x".repeat(64))])).is_err());
        assert!(validate_labels(&labels(&[("line", "a\nb")])).is_err());
        let many: Labels = (0..65).map(|i| (format!("k{i}"), String::new())).collect();
        assert!(validate_labels(&many).is_err());
    }
}
