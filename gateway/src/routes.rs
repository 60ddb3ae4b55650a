//! The REST routes, one module per service. Each handler authorizes the caller, translates the
//! request into the RPC its `google.api.http` annotation names, and the reply back into JSON.

pub mod alerts;
pub mod health;
pub mod telemetry;
pub mod tenants;

use pbjson_types::FieldMask;
use serde::Deserialize;

use crate::json::field_mask;

/// AIP-158 list parameters (`pageSize`, `pageToken`; snake_case accepted too).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListQuery {
    /// At most this many items.
    #[serde(default, alias = "page_size")]
    pub page_size: i32,
    /// The token of the page to read.
    #[serde(default, alias = "page_token")]
    pub page_token: String,
    /// Whether deleted items are listed too.
    #[serde(default, alias = "show_deleted")]
    pub show_deleted: bool,
}

/// Parameters of a PATCH: an explicit field mask, comma-separated.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatchQuery {
    /// The fields to change; derived from the body when absent.
    #[serde(default, alias = "update_mask")]
    pub update_mask: Option<String>,
}

impl PatchQuery {
    /// Returns the explicit mask's paths, if any.
    pub fn paths(&self) -> Option<Vec<String>> {
        self.update_mask.as_ref().map(|mask| {
            mask.split(',')
                .map(|p| p.trim().to_owned())
                .filter(|p| !p.is_empty())
                .collect()
        })
    }
}

/// The update mask of a PATCH: the explicit `updateMask`, or the fields the body sets (the
/// fields of the `nested` messages one level down).
pub fn mask(query: &PatchQuery, body: &serde_json::Value, nested: &[&str]) -> Option<FieldMask> {
    let paths = query.paths().unwrap_or_else(|| field_mask(body, nested));
    Some(FieldMask { paths })
}
