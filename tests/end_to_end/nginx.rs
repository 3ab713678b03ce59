//! NGINX auth_request end to end (being written).
