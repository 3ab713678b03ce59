//! `latchkey.registry.v1.UsageSink`: last uses and token usage rollups
//! reported by token issuers, and the conversions `ListUsage` answers with.

use latchkey_proto::registry::v1 as pb;
use latchkey_proto::registry::v1::usage_sink_server::{UsageSink, UsageSinkServer};
use latchkey_registry::{
    CredentialUse, LastUse, Registry, RegistryError, UsageBucket, UsageGranularity, UsageKind,
    UsageReport, UsageRollup,
};
use tonic::{Request, Response, Status};

use crate::convert;
use crate::status::to_status;

/// Receives batches of last uses and usage rollups.
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

/// A rollup's wire form, its times and addresses parsed; the registry
/// checks the rest (`report::check_rollups`).
fn rollup(index: usize, value: pb::UsageRollup) -> Result<UsageRollup, RegistryError> {
    let field = |name: &str| format!("rollups[{index}].{name}");
    let required_time = |name: &str, time: Option<&prost_types::Timestamp>| {
        let time = time.ok_or_else(|| RegistryError::invalid(field(name), "required"))?;
        convert::time(&field(name), time)
    };
    let kind = match pb::UsageKind::try_from(value.kind) {
        Ok(pb::UsageKind::TokenIssued) => UsageKind::TokenIssued,
        Ok(pb::UsageKind::TokenRevoked) => UsageKind::TokenRevoked,
        Ok(pb::UsageKind::Unspecified) | Err(_) => {
            return Err(RegistryError::invalid(
                field("kind"),
                "must be TOKEN_ISSUED or TOKEN_REVOKED",
            ));
        }
    };
    if value.addresses.len() > latchkey_registry::MAX_USAGE_ADDRESSES {
        // Refused before parsing an unbounded list.
        return Err(RegistryError::invalid(
            field("addresses"),
            format!("at most {}", latchkey_registry::MAX_USAGE_ADDRESSES),
        ));
    }
    let addresses = value
        .addresses
        .iter()
        .enumerate()
        .map(|(position, address)| {
            convert::ip_address(&format!("rollups[{index}].addresses[{position}]"), address)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(UsageRollup {
        minute: required_time("minute", value.minute.as_ref())?,
        first_time: required_time("first_time", value.first_time.as_ref())?,
        last_time: required_time("last_time", value.last_time.as_ref())?,
        credential_id: value.credential_id,
        project_id: value.project_id,
        kind,
        count: value.count,
        addresses,
        more_addresses: value.more_addresses,
    })
}

fn report(request: pb::RecordRequest) -> Result<UsageReport, RegistryError> {
    // Bounded before conversion, so an oversized batch costs no parsing.
    if request.uses.len() > latchkey_registry::MAX_USES_PER_BATCH {
        return Err(RegistryError::invalid(
            "uses",
            format!(
                "at most {} per batch",
                latchkey_registry::MAX_USES_PER_BATCH
            ),
        ));
    }
    if request.rollups.len() > latchkey_registry::MAX_ROLLUPS_PER_BATCH {
        return Err(RegistryError::invalid(
            "rollups",
            format!(
                "at most {} per batch",
                latchkey_registry::MAX_ROLLUPS_PER_BATCH
            ),
        ));
    }
    Ok(UsageReport {
        uses: request
            .uses
            .into_iter()
            .enumerate()
            .map(|(index, value)| credential_use(index, value))
            .collect::<Result<_, _>>()?,
        rollups: request
            .rollups
            .into_iter()
            .enumerate()
            .map(|(index, value)| rollup(index, value))
            .collect::<Result<_, _>>()?,
        batch_id: request.batch_id,
    })
}

/// The granularity a `ListUsage` request names; `None` for the default.
pub(crate) fn granularity(value: i32) -> Result<Option<UsageGranularity>, RegistryError> {
    match pb::UsageGranularity::try_from(value) {
        Ok(pb::UsageGranularity::Unspecified) => Ok(None),
        Ok(pb::UsageGranularity::Minute) => Ok(Some(UsageGranularity::Minute)),
        Ok(pb::UsageGranularity::Hour) => Ok(Some(UsageGranularity::Hour)),
        Ok(pb::UsageGranularity::Day) => Ok(Some(UsageGranularity::Day)),
        Err(_) => Err(RegistryError::invalid(
            "granularity",
            "must be MINUTE, HOUR or DAY",
        )),
    }
}

fn granularity_message(value: UsageGranularity) -> pb::UsageGranularity {
    match value {
        UsageGranularity::Minute => pb::UsageGranularity::Minute,
        UsageGranularity::Hour => pb::UsageGranularity::Hour,
        UsageGranularity::Day => pb::UsageGranularity::Day,
    }
}

/// A bucket as `ListUsage` returns it.
pub(crate) fn bucket_message(bucket: UsageBucket) -> pb::UsageBucket {
    pb::UsageBucket {
        credential_id: bucket.credential_id,
        start_time: Some(convert::timestamp(bucket.start_time)),
        granularity: granularity_message(bucket.granularity).into(),
        tokens_issued: bucket.tokens_issued,
        tokens_revoked: bucket.tokens_revoked,
        addresses: bucket.addresses.iter().map(ToString::to_string).collect(),
        more_addresses: bucket.more_addresses,
        first_time: Some(convert::timestamp(bucket.first_time)),
        last_time: Some(convert::timestamp(bucket.last_time)),
    }
}

#[tonic::async_trait]
impl UsageSink for UsageSinkService {
    async fn record(
        &self,
        request: Request<pb::RecordRequest>,
    ) -> Result<Response<pb::RecordResponse>, Status> {
        let report = report(request.into_inner()).map_err(to_status)?;
        self.registry
            .record_usage_report(report)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::RecordResponse {}))
    }
}
