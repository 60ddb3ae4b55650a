//! The provisioning service's domain: runs, steps and the rules that move them.

mod names;
pub mod run;
pub mod template;
