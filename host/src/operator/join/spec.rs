//! The typed join description lives in the config (`crate::config::join`); the kernels use it from here.

pub use crate::config::join::*;
