//! The `CredentialRegistry` service as its descriptors describe it.

use std::sync::OnceLock;

use prost_reflect::{DescriptorPool, MethodDescriptor, ServiceDescriptor};

use crate::SERVICE_NAME;

/// The descriptors of every Latchkey proto, decoded once.
fn pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| {
        // Built from our own protos by `latchkey-proto`'s build script: a
        // set that does not decode is a broken build, not a runtime case.
        DescriptorPool::decode(latchkey_proto::FILE_DESCRIPTOR_SET)
            .expect("latchkey-proto's descriptor set decodes")
    })
}

/// The `CredentialRegistry` service.
pub(crate) fn service() -> ServiceDescriptor {
    pool()
        .get_service_by_name(SERVICE_NAME)
        .expect("the descriptor set holds CredentialRegistry")
}

/// The unary method called `name`, if the service has one.
pub(crate) fn method(name: &str) -> Option<MethodDescriptor> {
    service()
        .methods()
        .find(|method| method.name() == name && !method.is_client_streaming())
        .filter(|method| !method.is_server_streaming())
}
