//! The `mfg` command as a library, so that tests start exactly what `mfg up` starts.

pub mod data_dir;
pub mod demo;
pub mod platform;
pub mod simulate;
pub mod up;
