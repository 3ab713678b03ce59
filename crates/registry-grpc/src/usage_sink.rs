//! `latchkey.registry.v1.UsageSink`: last uses reported by token issuers.

use latchkey_proto::registry::v1 as pb;
use latchkey_proto::registry::v1::usage_sink_server::{UsageSink, UsageSinkServer};
use latchkey_registry::{CredentialUse, LastUse, Registry, RegistryError};
use tonic::{Request, Response, Status};

use crate::convert;
use crate::status::to_status;

/// Receives batches of last uses.
#[derive(Debug, Clone)]
pub struct UsageSinkService {
    registry: Registry,
}

impl UsageSinkService {
    /// A service over `registry`.
    pub fn new(registry: Registry) -> Self {
        Self { registry }
    }

    /// The tonic server for this service.
    pub fn into_server(self) -> UsageSinkServer<Self> {
        UsageSinkServer::new(self)
    }
}

fn credential_use(index: usize, value: pb::CredentialUse) -> Result<CredentialUse, RegistryError> {
    let time = value
        .time
        .as_ref()
        .ok_or_else(|| RegistryError::invalid(format!("uses[{index}].time"), "required"))?;
    Ok(CredentialUse {
        last_use: LastUse {
            time: convert::time(&format!("uses[{index}].time"), time)?,
            ip: convert::ip_address(&format!("uses[{index}].ip"), &value.ip)?,
        },
        credential_id: value.credential_id,
    })
}

#[tonic::async_trait]
impl UsageSink for UsageSinkService {
    async fn record(
        &self,
        request: Request<pb::RecordRequest>,
    ) -> Result<Response<pb::RecordResponse>, Status> {
        let uses = request
            .into_inner()
            .uses
            .into_iter()
            .enumerate()
            .map(|(index, value)| credential_use(index, value))
            .collect::<Result<Vec<_>, _>>()
            .map_err(to_status)?;
        self.registry.record_usage(uses).await.map_err(to_status)?;
        Ok(Response::new(pb::RecordResponse {}))
    }
}
