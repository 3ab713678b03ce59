//! The registry's rules, driven through [`crate::Registry`] over the
//! [`crate::MemoryCredentialStore`], with a recording stand-in for the
//! token issuer. The conformance suite in `tests/registry` checks the same
//! rules end to end on SQLite and PostgreSQL.

mod members;
mod on_behalf;
mod quotas;
mod store;
mod support;
mod sync;
mod usage;
