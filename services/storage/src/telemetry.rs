//! Telemetry: readings in (ingest), the hot, warm and cold tiers (store, tiering, archive, object
//! store) and queries out. It publishes each committed batch to observers
//! ([`ingest::IngestObserver`]) and knows nothing of what they do with it.

pub mod api;
pub mod archive;
pub mod domain;
pub mod ingest;
pub mod object_store;
pub mod query;
pub mod store;
pub mod tiering;
