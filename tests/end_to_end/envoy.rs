//! Envoy ext_authz end to end (being written).
