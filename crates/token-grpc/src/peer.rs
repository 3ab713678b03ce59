//! What a gRPC request says about its caller: its address, and the one
//! `authorization` value it authenticates with.

use std::net::{IpAddr, Ipv4Addr};

use latchkey_net::TrustedProxies;
use latchkey_token_http::authorization::PresentedAuthorization;
use tonic::{Request, Status};

/// The metadata key callers authenticate with.
const AUTHORIZATION: &str = "authorization";

/// The caller's IP: the peer address, or what trusted proxies forwarded in
/// the `forwarded` / `x-forwarded-for` metadata.
pub fn client_ip<T>(request: &Request<T>, proxies: &TrustedProxies) -> IpAddr {
    // Without a peer address (an in-memory transport) nothing can be
    // vouched for; the unspecified address matches no allowlist entry but
    // 0.0.0.0/0.
    let peer = request
        .remote_addr()
        .map(|address| address.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let metadata = request.metadata();
    let values = |name: &str| {
        metadata
            .get_all(name)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .collect::<Vec<_>>()
    };
    proxies.client_ip(peer, values("forwarded"), values("x-forwarded-for"))
}

/// The request's `authorization` metadata, parsed. Two values are refused
/// (RFC 6749 §2.3: one authentication method per request): which one a
/// proxy and this server would each read cannot be told. A value that is
/// not visible ASCII is invalid, never absent.
pub(crate) fn presented_authorization<T>(
    request: &Request<T>,
) -> Result<PresentedAuthorization, Status> {
    let values = request.metadata().get_all(AUTHORIZATION);
    PresentedAuthorization::parse_single(values.iter().map(|value| value.to_str().ok())).ok_or_else(
        || {
            Status::invalid_argument(
                "authorization: sent more than once; send exactly one authorization value",
            )
        },
    )
}

/// `IssueToken` and `RevokeToken` authenticate the client by the
/// `client_id` and `client_secret` fields only. `authorization` metadata
/// beside them is a second method, and alone it is one these calls do not
/// read: either way the call is refused rather than one credential picked.
pub(crate) fn refuse_authorization_metadata<T>(
    request: &Request<T>,
    fields_present: bool,
) -> Result<(), Status> {
    if request.metadata().get(AUTHORIZATION).is_none() {
        return Ok(());
    }
    Err(Status::invalid_argument(if fields_present {
        "use one client authentication method: the client_id and client_secret fields, not authorization metadata as well"
    } else {
        "authorization: this call does not read authorization metadata; send the client_id and client_secret fields"
    }))
}

#[cfg(test)]
mod tests {
    use tonic::Code;
    use tonic::metadata::MetadataValue;

    use super::*;

    fn request(authorizations: &[&str]) -> Request<()> {
        let mut request = Request::new(());
        for value in authorizations {
            request
                .metadata_mut()
                .append(AUTHORIZATION, MetadataValue::try_from(*value).unwrap());
        }
        request
    }

    #[test]
    fn one_authorization_value_is_read() {
        assert_eq!(
            presented_authorization(&request(&[])).unwrap(),
            PresentedAuthorization::Absent
        );
        assert_eq!(
            presented_authorization(&request(&["Bearer lkt_x"])).unwrap(),
            PresentedAuthorization::Bearer("lkt_x".to_owned())
        );
    }

    #[test]
    fn two_authorization_values_are_refused() {
        for pair in [
            ["Bearer a", "Bearer b"],
            ["Basic YTpi", "Bearer b"],
            ["Basic YTpi", "Basic YTpi"],
        ] {
            let status = presented_authorization(&request(&pair)).unwrap_err();
            assert_eq!(status.code(), Code::InvalidArgument);
            assert!(status.message().starts_with("authorization:"), "{status:?}");
        }
    }

    #[test]
    fn issuance_refuses_authorization_metadata_with_or_without_fields() {
        refuse_authorization_metadata(&request(&[]), true).unwrap();
        for fields_present in [true, false] {
            let status = refuse_authorization_metadata(&request(&["Basic YTpi"]), fields_present)
                .unwrap_err();
            assert_eq!(status.code(), Code::InvalidArgument);
            assert!(status.message().contains("authorization"), "{status:?}");
        }
    }
}
