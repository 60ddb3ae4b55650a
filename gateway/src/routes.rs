//! The routes written by hand, where the contract cannot say them: health and readiness, and
//! the alert events as Server-Sent Events. Every other route is generated from the contract
//! ([`crate::transcode`]).

pub mod alerts;
pub mod health;
