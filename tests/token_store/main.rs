//! Token store conformance suite (being written).
#![allow(unused_crate_dependencies)]
