//! `latchkey.registry.v1.CredentialRegistry` over the domain registry.

use latchkey_proto::registry::v1 as pb;
use latchkey_proto::registry::v1::credential_registry_server::{
    CredentialRegistry, CredentialRegistryServer,
};
use latchkey_registry::{
    CreateCredential, CreateProject, CredentialState, ListAuditEvents, ListCredentials, ListUsage,
    Registry, RotateSecret,
};
use tonic::{Request, Response, Status};

use crate::authentication::caller;
use crate::convert;
use crate::member;
use crate::status::to_status;

/// The administration API. Each handler converts the request, calls the
/// registry and converts the answer; nothing else.
#[derive(Debug, Clone)]
pub struct CredentialRegistryService {
    registry: Registry,
    token_endpoint: String,
}

impl CredentialRegistryService {
    /// A service over `registry`; credentials in answers name
    /// `token_endpoint` (empty when not configured).
    pub fn new(registry: Registry, token_endpoint: String) -> Self {
        Self {
            registry,
            token_endpoint,
        }
    }

    /// A credential as read: its project's API endpoint is read too, and a
    /// failure to read it fails the call (which changed nothing).
    async fn read_credential_message(
        &self,
        credential: latchkey_registry::Credential,
    ) -> Result<pb::Credential, Status> {
        let api_endpoint = self
            .registry
            .api_endpoint(&credential.project_id)
            .await
            .map_err(to_status)?;
        Ok(convert::credential(
            credential,
            &self.token_endpoint,
            api_endpoint,
        ))
    }

    /// A credential after a committed change. The change is done (and a
    /// new secret is in the answer, shown once): failing to read the
    /// project's API endpoint leaves that field empty rather than turning
    /// the answer into an error the caller would retry.
    async fn changed_credential_message(
        &self,
        credential: latchkey_registry::Credential,
    ) -> pb::Credential {
        let api_endpoint = match self.registry.api_endpoint(&credential.project_id).await {
            Ok(url) => url,
            Err(error) => {
                tracing::warn!(%error, project_id = %credential.project_id, "cannot read the project's api_endpoint for an answer");
                String::new()
            }
        };
        convert::credential(credential, &self.token_endpoint, api_endpoint)
    }

    /// The tonic server for this service.
    pub fn into_server(self) -> CredentialRegistryServer<Self> {
        CredentialRegistryServer::new(self)
    }

    fn project_message(&self, project: latchkey_registry::Project) -> pb::Project {
        let policy = self.registry.effective_policy(&project);
        convert::project(project, &policy)
    }
}

type Answer<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl CredentialRegistry for CredentialRegistryService {
    async fn create_credential(
        &self,
        request: Request<pb::CreateCredentialRequest>,
    ) -> Answer<pb::CreateCredentialResponse> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let input = CreateCredential {
            expire_time: convert::optional_time("expire_time", request.expire_time.as_ref())
                .map_err(to_status)?,
            project_id: request.project_id,
            owner: request.owner,
            name: request.name,
            description: request.description,
            allowed_apis: request.allowed_apis,
            allowed_ips: request.allowed_ips,
        };
        let created = self
            .registry
            .create_credential(&caller, input)
            .await
            .map_err(to_status)?;
        tracing::info!(
            credential_id = %created.credential.id,
            project_id = %created.credential.project_id,
            "credential created"
        );
        Ok(Response::new(pb::CreateCredentialResponse {
            credential: Some(self.changed_credential_message(created.credential).await),
            client_secret: created.client_secret,
        }))
    }

    async fn get_credential(
        &self,
        request: Request<pb::GetCredentialRequest>,
    ) -> Answer<pb::GetCredentialResponse> {
        let caller = caller(&request)?;
        let credential = self
            .registry
            .get_credential(&caller, &request.get_ref().credential_id)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::GetCredentialResponse {
            credential: Some(self.read_credential_message(credential).await?),
        }))
    }

    async fn list_credentials(
        &self,
        request: Request<pb::ListCredentialsRequest>,
    ) -> Answer<pb::ListCredentialsResponse> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let project_id = request.project_id.clone();
        let (credentials, next_page_token) = self
            .registry
            .list_credentials(
                &caller,
                ListCredentials {
                    kind: convert::kind_filter("kind", request.kind).map_err(to_status)?,
                    project_id: request.project_id,
                    owner: Some(request.owner),
                    order_by: request.order_by,
                    page_size: request.page_size,
                    page_token: request.page_token,
                },
            )
            .await
            .map_err(to_status)?;
        // One project per list: its endpoint is read once.
        let api_endpoint = self
            .registry
            .api_endpoint(&project_id)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::ListCredentialsResponse {
            credentials: credentials
                .into_iter()
                .map(|c| convert::credential(c, &self.token_endpoint, api_endpoint.clone()))
                .collect(),
            next_page_token,
        }))
    }

    async fn list_audit_events(
        &self,
        request: Request<pb::ListAuditEventsRequest>,
    ) -> Answer<pb::ListAuditEventsResponse> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let input = ListAuditEvents {
            start_time: convert::optional_time("start_time", request.start_time.as_ref())
                .map_err(to_status)?,
            end_time: convert::optional_time("end_time", request.end_time.as_ref())
                .map_err(to_status)?,
            project_id: request.project_id,
            credential_id: request.credential_id,
            page_size: request.page_size,
            page_token: request.page_token,
        };
        let (events, next_page_token) = self
            .registry
            .list_audit_events(&caller, input)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::ListAuditEventsResponse {
            events: events.into_iter().map(crate::audit::to_message).collect(),
            next_page_token,
        }))
    }

    async fn list_usage(
        &self,
        request: Request<pb::ListUsageRequest>,
    ) -> Answer<pb::ListUsageResponse> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let input = ListUsage {
            start_time: convert::optional_time("start_time", request.start_time.as_ref())
                .map_err(to_status)?,
            end_time: convert::optional_time("end_time", request.end_time.as_ref())
                .map_err(to_status)?,
            granularity: crate::usage_sink::granularity(request.granularity).map_err(to_status)?,
            project_id: request.project_id,
            credential_id: request.credential_id,
            page_size: request.page_size,
            page_token: request.page_token,
        };
        let (buckets, next_page_token) = self
            .registry
            .list_usage(&caller, input)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::ListUsageResponse {
            buckets: buckets
                .into_iter()
                .map(crate::usage_sink::bucket_message)
                .collect(),
            next_page_token,
        }))
    }

    async fn update_credential(
        &self,
        request: Request<pb::UpdateCredentialRequest>,
    ) -> Answer<pb::UpdateCredentialResponse> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let Some(credential) = request.credential else {
            return Err(Status::invalid_argument("credential: required"));
        };
        let update = convert::credential_update(&credential, request.update_mask.as_ref())
            .map_err(to_status)?;
        let updated = self
            .registry
            .update_credential(&caller, &credential.id, update)
            .await
            .map_err(to_status)?;
        tracing::info!(credential_id = %updated.id, "credential updated");
        Ok(Response::new(pb::UpdateCredentialResponse {
            credential: Some(self.changed_credential_message(updated).await),
        }))
    }

    async fn delete_credential(
        &self,
        request: Request<pb::DeleteCredentialRequest>,
    ) -> Answer<pb::DeleteCredentialResponse> {
        let caller = caller(&request)?;
        let request = request.get_ref();
        self.registry
            .delete_credential(&caller, &request.credential_id, &request.confirm_name)
            .await
            .map_err(to_status)?;
        tracing::info!(credential_id = %request.credential_id, "credential deleted");
        Ok(Response::new(pb::DeleteCredentialResponse {}))
    }

    async fn rotate_credential_secret(
        &self,
        request: Request<pb::RotateCredentialSecretRequest>,
    ) -> Answer<pb::RotateCredentialSecretResponse> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let rotated = self
            .registry
            .rotate_secret(
                &caller,
                RotateSecret {
                    credential_id: request.credential_id,
                    grace_period_seconds: request.grace_period_seconds,
                    revoke_tokens: request.revoke_tokens,
                },
            )
            .await
            .map_err(to_status)?;
        tracing::info!(credential_id = %rotated.credential.id, "credential secret rotated");
        Ok(Response::new(pb::RotateCredentialSecretResponse {
            credential: Some(self.changed_credential_message(rotated.credential).await),
            client_secret: rotated.client_secret,
            previous_secret_expire_time: rotated
                .previous_secret_expire_time
                .map(convert::timestamp),
        }))
    }

    async fn disable_credential(
        &self,
        request: Request<pb::DisableCredentialRequest>,
    ) -> Answer<pb::DisableCredentialResponse> {
        let caller = caller(&request)?;
        let credential = self
            .registry
            .set_credential_state(
                &caller,
                &request.get_ref().credential_id,
                CredentialState::Disabled,
            )
            .await
            .map_err(to_status)?;
        tracing::info!(credential_id = %credential.id, "credential disabled");
        Ok(Response::new(pb::DisableCredentialResponse {
            credential: Some(self.changed_credential_message(credential).await),
        }))
    }

    async fn enable_credential(
        &self,
        request: Request<pb::EnableCredentialRequest>,
    ) -> Answer<pb::EnableCredentialResponse> {
        let caller = caller(&request)?;
        let credential = self
            .registry
            .set_credential_state(
                &caller,
                &request.get_ref().credential_id,
                CredentialState::Active,
            )
            .await
            .map_err(to_status)?;
        tracing::info!(credential_id = %credential.id, "credential enabled");
        Ok(Response::new(pb::EnableCredentialResponse {
            credential: Some(self.changed_credential_message(credential).await),
        }))
    }

    async fn create_project(
        &self,
        request: Request<pb::CreateProjectRequest>,
    ) -> Answer<pb::CreateProjectResponse> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let input = CreateProject {
            policy: convert::policy_overrides("policy", request.policy.as_ref())
                .map_err(to_status)?,
            project_id: request.project_id,
            display_name: request.display_name,
            api_endpoint: request.api_endpoint,
        };
        let project = self
            .registry
            .create_project(&caller, input)
            .await
            .map_err(to_status)?;
        tracing::info!(project_id = %project.id, "project created");
        Ok(Response::new(pb::CreateProjectResponse {
            project: Some(self.project_message(project)),
        }))
    }

    async fn get_project(
        &self,
        request: Request<pb::GetProjectRequest>,
    ) -> Answer<pb::GetProjectResponse> {
        let caller = caller(&request)?;
        let project = self
            .registry
            .get_project(&caller, &request.get_ref().project_id)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::GetProjectResponse {
            project: Some(self.project_message(project)),
        }))
    }

    async fn list_projects(
        &self,
        request: Request<pb::ListProjectsRequest>,
    ) -> Answer<pb::ListProjectsResponse> {
        let caller = caller(&request)?;
        let request = request.get_ref();
        let (projects, next_page_token) = self
            .registry
            .list_projects(
                &caller,
                request.page_size,
                &request.page_token,
                &request.order_by,
            )
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::ListProjectsResponse {
            projects: projects
                .into_iter()
                .map(|p| self.project_message(p))
                .collect(),
            next_page_token,
        }))
    }

    async fn update_project(
        &self,
        request: Request<pb::UpdateProjectRequest>,
    ) -> Answer<pb::UpdateProjectResponse> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let Some(project) = request.project else {
            return Err(Status::invalid_argument("project: required"));
        };
        let update =
            convert::project_update(&project, request.update_mask.as_ref()).map_err(to_status)?;
        let project = self
            .registry
            .update_project(&caller, &project.id, update)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::UpdateProjectResponse {
            project: Some(self.project_message(project)),
        }))
    }

    async fn update_project_policy(
        &self,
        request: Request<pb::UpdateProjectPolicyRequest>,
    ) -> Answer<pb::UpdateProjectPolicyResponse> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let overrides =
            convert::policy_overrides("policy", request.policy.as_ref()).map_err(to_status)?;
        let project = self
            .registry
            .update_project_policy(&caller, &request.project_id, overrides)
            .await
            .map_err(to_status)?;
        tracing::info!(project_id = %project.id, "project policy updated");
        Ok(Response::new(pb::UpdateProjectPolicyResponse {
            project: Some(self.project_message(project)),
        }))
    }

    async fn create_member(
        &self,
        request: Request<pb::CreateMemberRequest>,
    ) -> Answer<pb::CreateMemberResponse> {
        let caller = caller(&request)?;
        member::create(&self.registry, &caller, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn get_member(
        &self,
        request: Request<pb::GetMemberRequest>,
    ) -> Answer<pb::GetMemberResponse> {
        let caller = caller(&request)?;
        member::get(&self.registry, &caller, request.get_ref())
            .await
            .map(Response::new)
    }

    async fn list_members(
        &self,
        request: Request<pb::ListMembersRequest>,
    ) -> Answer<pb::ListMembersResponse> {
        let caller = caller(&request)?;
        member::list(&self.registry, &caller, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn update_member(
        &self,
        request: Request<pb::UpdateMemberRequest>,
    ) -> Answer<pb::UpdateMemberResponse> {
        let caller = caller(&request)?;
        member::update(&self.registry, &caller, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn remove_member(
        &self,
        request: Request<pb::RemoveMemberRequest>,
    ) -> Answer<pb::RemoveMemberResponse> {
        let caller = caller(&request)?;
        member::remove(&self.registry, &caller, request.get_ref())
            .await
            .map(Response::new)
    }
}
