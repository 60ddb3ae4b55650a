//! The provisioning service's domain: runs, steps and the rules that move them.

pub mod audit;
mod names;
pub mod run;
pub mod template;
