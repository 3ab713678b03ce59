//! Project members (issue 13): their API ceiling bounds every credential
//! they own, at create and update; a platform backend acts on behalf of a
//! member and is confined to that member; every member change reaches the
//! token side before it commits, or nothing changes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use latchkey_proto::registry::v1 as pb;
use latchkey_proto::registry::v1::credential_registry_client::CredentialRegistryClient;
use latchkey_proto::token::v1::IssueTokenRequest;
use latchkey_registry::{
    Caller, CreateCredential, CreateMember, CredentialState, MemberState, PolicyChange,
    RegistryError, TokenSync, UpdateMember,
};
use latchkey_tests::{Backend, ManagementClient, Stack};
use prost_types::FieldMask;
use tonic::Code;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::support::{
    assert_refused, create_credential, create_project_with, new_credential, registry_with_sync,
};

/// Sends a bearer token and names the member the call acts for, as a
/// platform's console does.
#[derive(Debug, Clone)]
struct OnBehalfOf {
    authorization: MetadataValue<Ascii>,
    member: MetadataValue<Ascii>,
}

impl Interceptor for OnBehalfOf {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        let metadata = request.metadata_mut();
        metadata.insert("authorization", self.authorization.clone());
        metadata.insert("x-latchkey-on-behalf-of", self.member.clone());
        Ok(request)
    }
}

type ActingClient = CredentialRegistryClient<InterceptedService<Channel, OnBehalfOf>>;

/// A management client with `token`, acting for `member`.
fn acting_for(stack: &Stack, token: &str, member: &str) -> ActingClient {
    CredentialRegistryClient::with_interceptor(
        stack.registry.channel(),
        OnBehalfOf {
            authorization: format!("Bearer {token}").parse().unwrap(),
            member: member.parse().unwrap(),
        },
    )
}

/// A credential with `apis` for `owner`, and a token of it.
async fn token_of(
    stack: &Stack,
    project: &str,
    owner: &str,
    apis: &[&str],
) -> (pb::Credential, String) {
    let mut admin = stack.registry.client();
    let (credential, secret) = create_credential(
        &mut admin,
        pb::CreateCredentialRequest {
            allowed_apis: apis.iter().map(|api| (*api).to_owned()).collect(),
            ..new_credential(project, owner)
        },
    )
    .await;
    let token = stack
        .issuer
        .token_client()
        .issue_token(IssueTokenRequest {
            client_id: credential.client_id.clone(),
            client_secret: secret,
            scopes: vec![],
        })
        .await
        .unwrap()
        .into_inner()
        .access_token;
    (credential, token)
}

fn new_member(project: &str, user: &str, ceiling: &[&str]) -> pb::CreateMemberRequest {
    pb::CreateMemberRequest {
        project_id: project.to_owned(),
        user_id: user.to_owned(),
        api_ceiling: ceiling.iter().map(|api| (*api).to_owned()).collect(),
        ..Default::default()
    }
}

async fn add_member(
    client: &mut ManagementClient,
    project: &str,
    user: &str,
    ceiling: &[&str],
) -> pb::Member {
    client
        .create_member(new_member(project, user, ceiling))
        .await
        .expect("create member")
        .into_inner()
        .member
        .unwrap()
}

fn update_member(
    project: &str,
    user: &str,
    member: pb::Member,
    paths: &[&str],
) -> pb::UpdateMemberRequest {
    pb::UpdateMemberRequest {
        member: Some(pb::Member {
            project_id: project.to_owned(),
            user_id: user.to_owned(),
            ..member
        }),
        update_mask: Some(FieldMask {
            paths: paths.iter().map(|path| (*path).to_owned()).collect(),
        }),
    }
}

fn ceiling(apis: &[&str]) -> pb::Member {
    pb::Member {
        api_ceiling: apis.iter().map(|api| (*api).to_owned()).collect(),
        ..Default::default()
    }
}

fn in_state(state: pb::MemberState) -> pb::Member {
    pb::Member {
        state: state.into(),
        ..Default::default()
    }
}

async fn list_members(
    client: &mut ManagementClient,
    request: pb::ListMembersRequest,
) -> Vec<String> {
    let mut users = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_members(pb::ListMembersRequest {
                page_token,
                ..request.clone()
            })
            .await
            .unwrap()
            .into_inner();
        users.extend(page.members.into_iter().map(|member| member.user_id));
        if page.next_page_token.is_empty() {
            return users;
        }
        page_token = page.next_page_token;
    }
}

async fn members_are_created_read_listed_updated_and_removed(backend: Backend) {
    let stack = Stack::for_registry(backend).await;
    let mut admin = stack.registry.client();
    create_project_with(&mut admin, "tiber", None).await;

    let owner = admin
        .create_member(pb::CreateMemberRequest {
            display_name: "Olga".into(),
            role: pb::MemberRole::Owner.into(),
            ..new_member(
                "tiber",
                "olga@example.com",
                &["compute.read", "compute.admin"],
            )
        })
        .await
        .unwrap()
        .into_inner()
        .member
        .unwrap();
    assert_eq!(owner.role(), pb::MemberRole::Owner);
    assert_eq!(owner.state(), pb::MemberState::Active);
    assert_eq!(owner.api_ceiling, ["compute.read", "compute.admin"]);
    let member = add_member(
        &mut admin,
        "tiber",
        "max",
        &["compute.read", "compute.read"],
    )
    .await;
    assert_eq!(member.role(), pb::MemberRole::Member, "the default role");
    assert_eq!(member.api_ceiling, ["compute.read"], "duplicates dropped");
    add_member(&mut admin, "tiber", "nina", &[]).await;

    let read = admin
        .get_member(pb::GetMemberRequest {
            project_id: "tiber".into(),
            user_id: "olga@example.com".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .member
        .unwrap();
    assert_eq!(read, owner);

    // Listed oldest or newest first, a page at a time.
    let list = |order_by: &str| pb::ListMembersRequest {
        project_id: "tiber".into(),
        page_size: 2,
        order_by: order_by.to_owned(),
        ..Default::default()
    };
    assert_eq!(
        list_members(&mut admin, list("")).await,
        ["olga@example.com", "max", "nina"]
    );
    assert_eq!(
        list_members(&mut admin, list("create_time desc")).await,
        ["nina", "max", "olga@example.com"]
    );
    assert_refused(
        admin.list_members(list("name")).await,
        Code::InvalidArgument,
        "order_by",
    );

    // Update: display name, role, ceiling, state by mask (camelCase too).
    let updated = admin
        .update_member(update_member(
            "tiber",
            "max",
            pb::Member {
                display_name: "Max M.".into(),
                role: pb::MemberRole::Owner.into(),
                ..ceiling(&["compute.read", "storage.read"])
            },
            &["displayName", "role", "api_ceiling"],
        ))
        .await
        .unwrap()
        .into_inner()
        .member
        .unwrap();
    assert_eq!(updated.display_name, "Max M.");
    assert_eq!(updated.role(), pb::MemberRole::Owner);
    assert_eq!(updated.api_ceiling, ["compute.read", "storage.read"]);
    assert!(
        super::support::micros(&updated.update_time) > super::support::micros(&updated.create_time)
    );

    // Refusals name the field, change nothing.
    assert_refused(
        admin.create_member(new_member("tiber", "max", &[])).await,
        Code::AlreadyExists,
        "max",
    );
    assert_refused(
        admin
            .create_member(new_member("tiber", "no spaces", &[]))
            .await,
        Code::InvalidArgument,
        "user_id",
    );
    assert_refused(
        admin
            .create_member(new_member("tiber", "eve", &["ok", "bad scope"]))
            .await,
        Code::InvalidArgument,
        "api_ceiling[1]",
    );
    assert_refused(
        admin.create_member(new_member("nowhere", "eve", &[])).await,
        Code::NotFound,
        "nowhere",
    );
    assert_refused(
        admin
            .update_member(update_member("tiber", "max", ceiling(&[]), &["user_id"]))
            .await,
        Code::InvalidArgument,
        "update_mask",
    );
    assert_refused(
        admin
            .update_member(update_member(
                "tiber",
                "max",
                in_state(pb::MemberState::Removed),
                &["state"],
            ))
            .await,
        Code::InvalidArgument,
        "member.state",
    );
    assert_refused(
        admin
            .update_member(update_member(
                "tiber",
                "ghost",
                ceiling(&[]),
                &["api_ceiling"],
            ))
            .await,
        Code::NotFound,
        "ghost",
    );
    assert_refused(
        admin
            .get_member(pb::GetMemberRequest {
                project_id: "tiber".into(),
                user_id: "ghost".into(),
            })
            .await,
        Code::NotFound,
        "member \"ghost\" not found",
    );

    // Removal is final: listed only on request, never changed or re-created.
    let removed = admin
        .remove_member(pb::RemoveMemberRequest {
            project_id: "tiber".into(),
            user_id: "nina".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .member
        .unwrap();
    assert_eq!(removed.state(), pb::MemberState::Removed);
    assert_eq!(
        list_members(&mut admin, list("")).await,
        ["olga@example.com", "max"]
    );
    assert_eq!(
        list_members(
            &mut admin,
            pb::ListMembersRequest {
                show_removed: true,
                ..list("")
            }
        )
        .await,
        ["olga@example.com", "max", "nina"]
    );
    assert_refused(
        admin
            .update_member(update_member(
                "tiber",
                "nina",
                in_state(pb::MemberState::Active),
                &["state"],
            ))
            .await,
        Code::FailedPrecondition,
        "removal is final",
    );
    assert_refused(
        admin.create_member(new_member("tiber", "nina", &[])).await,
        Code::FailedPrecondition,
        "removal is final",
    );
    assert_refused(
        admin
            .remove_member(pb::RemoveMemberRequest {
                project_id: "tiber".into(),
                user_id: "nina".into(),
            })
            .await,
        Code::FailedPrecondition,
        "removal is final",
    );

    // Every change is in the trail, refused ones too.
    let events = admin
        .list_audit_events(pb::ListAuditEventsRequest {
            project_id: "tiber".into(),
            page_size: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    let count = |action: pb::AuditAction, outcome: pb::AuditOutcome| {
        events
            .iter()
            .filter(|event| event.action() == action && event.outcome() == outcome)
            .count()
    };
    assert_eq!(
        count(pb::AuditAction::CreateMember, pb::AuditOutcome::Succeeded),
        3
    );
    assert_eq!(
        count(pb::AuditAction::UpdateMember, pb::AuditOutcome::Succeeded),
        1
    );
    assert_eq!(
        count(pb::AuditAction::RemoveMember, pb::AuditOutcome::Succeeded),
        1
    );
    assert!(count(pb::AuditAction::CreateMember, pb::AuditOutcome::Failed) >= 3);
    assert!(count(pb::AuditAction::RemoveMember, pb::AuditOutcome::Failed) >= 1);
    let update = events
        .iter()
        .find(|event| {
            event.action() == pb::AuditAction::UpdateMember
                && event.outcome() == pb::AuditOutcome::Succeeded
        })
        .unwrap();
    assert!(
        update.detail.contains("\"max\"") && update.detail.contains("api_ceiling"),
        "{update:?}"
    );
}

async fn the_ceiling_bounds_every_credential_of_a_member(backend: Backend) {
    let stack = Stack::for_registry(backend).await;
    let mut admin = stack.registry.client();
    create_project_with(&mut admin, "cloudops", None).await;
    add_member(
        &mut admin,
        "cloudops",
        "alice",
        &["compute.read", "dns.read"],
    )
    .await;

    // Within the ceiling: fine, even for the platform admin; beyond: refused
    // by name, whoever asks.
    let (key, _) = create_credential(
        &mut admin,
        pb::CreateCredentialRequest {
            allowed_apis: vec!["compute.read".into()],
            ..new_credential("cloudops", "alice")
        },
    )
    .await;
    assert_refused(
        admin
            .create_credential(pb::CreateCredentialRequest {
                allowed_apis: vec!["compute.read".into(), "compute.admin".into()],
                ..new_credential("cloudops", "alice")
            })
            .await,
        Code::PermissionDenied,
        "allowed_apis: cannot grant \"compute.admin\", beyond the API ceiling of member \"alice\"",
    );
    assert_refused(
        admin
            .update_credential(pb::UpdateCredentialRequest {
                credential: Some(pb::Credential {
                    id: key.id.clone(),
                    allowed_apis: vec!["dns.read".into(), "billing.admin".into()],
                    ..Default::default()
                }),
                update_mask: Some(FieldMask {
                    paths: vec!["allowed_apis".into()],
                }),
            })
            .await,
        Code::PermissionDenied,
        "\"billing.admin\"",
    );
    let unchanged = admin
        .get_credential(pb::GetCredentialRequest {
            credential_id: key.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .credential
        .unwrap();
    assert_eq!(unchanged.allowed_apis, ["compute.read"]);
    // A non-member owner keeps the plain owner-string model.
    create_credential(
        &mut admin,
        pb::CreateCredentialRequest {
            allowed_apis: vec!["compute.admin".into()],
            ..new_credential("cloudops", "svc-backup")
        },
    )
    .await;

    // A user whose existing keys exceed the ceiling cannot become a member
    // with it: the create names the APIs and changes nothing.
    assert_refused(
        admin
            .create_member(new_member("cloudops", "svc-backup", &["compute.read"]))
            .await,
        Code::FailedPrecondition,
        "\"compute.admin\"",
    );
    assert_refused(
        admin
            .get_member(pb::GetMemberRequest {
                project_id: "cloudops".into(),
                user_id: "svc-backup".into(),
            })
            .await,
        Code::NotFound,
        "svc-backup",
    );
    add_member(&mut admin, "cloudops", "svc-backup", &["compute.admin"]).await;

    // A suspended member gets no new key; managers cannot raise a ceiling
    // to a Latchkey scope they lack.
    admin
        .update_member(update_member(
            "cloudops",
            "alice",
            in_state(pb::MemberState::Suspended),
            &["state"],
        ))
        .await
        .unwrap();
    assert_refused(
        admin
            .create_credential(pb::CreateCredentialRequest {
                allowed_apis: vec!["compute.read".into()],
                ..new_credential("cloudops", "alice")
            })
            .await,
        Code::FailedPrecondition,
        "suspended",
    );
    let (_, manager_token) = token_of(&stack, "cloudops", "console", &["credentials:manage"]).await;
    let mut manager = stack.registry.client_with_token(Some(&manager_token));
    assert_refused(
        manager
            .create_member(new_member("cloudops", "mallory", &["registry:admin"]))
            .await,
        Code::PermissionDenied,
        "registry:admin",
    );
    add_member(&mut manager, "cloudops", "bob", &["compute.read"]).await;
}

async fn a_member_cannot_mint_a_key_above_their_privileges(backend: Backend) {
    // CloudOps: "A user's API keys will have the same level of privilege
    // that the user has."
    let stack = Stack::for_registry(backend).await;
    let mut admin = stack.registry.client();
    create_project_with(&mut admin, "cloudops", None).await;
    add_member(
        &mut admin,
        "cloudops",
        "bob",
        &["compute.read", "credentials:own"],
    )
    .await;
    let (_, bobs_token) = token_of(
        &stack,
        "cloudops",
        "bob",
        &["credentials:own", "compute.read"],
    )
    .await;
    let mut bob = stack.registry.client_with_token(Some(&bobs_token));
    let (_, console_token) = token_of(&stack, "cloudops", "console", &["credentials:manage"]).await;
    let mut console = acting_for(&stack, &console_token, "bob");

    let admin_key = || pb::CreateCredentialRequest {
        project_id: "cloudops".into(),
        allowed_apis: vec!["compute.read".into(), "compute.admin".into()],
        ..Default::default()
    };
    assert_refused(
        bob.create_credential(admin_key()).await,
        Code::PermissionDenied,
        "compute.admin",
    );
    assert_refused(
        console.create_credential(admin_key()).await,
        Code::PermissionDenied,
        "compute.admin",
    );
    let read_key = pb::CreateCredentialRequest {
        project_id: "cloudops".into(),
        allowed_apis: vec!["compute.read".into()],
        ..Default::default()
    };
    let own = bob
        .create_credential(read_key.clone())
        .await
        .unwrap()
        .into_inner();
    let acted = console
        .create_credential(read_key)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(own.credential.unwrap().owner, "bob");
    let acted = acted.credential.unwrap();
    assert_eq!(
        acted.owner, "bob",
        "created for the member, not the console"
    );
    // Widening bob's key beyond his privileges is refused the same way.
    let widen = pb::UpdateCredentialRequest {
        credential: Some(pb::Credential {
            id: acted.id.clone(),
            allowed_apis: vec!["compute.admin".into()],
            ..Default::default()
        }),
        update_mask: Some(FieldMask {
            paths: vec!["allowed_apis".into()],
        }),
    };
    assert_refused(
        console.update_credential(widen.clone()).await,
        Code::PermissionDenied,
        "compute.admin",
    );
    assert_refused(
        bob.update_credential(widen).await,
        Code::PermissionDenied,
        "compute.admin",
    );
    // Bob reads his own membership (to show his privileges), nobody else's.
    let get = |user: &str| pb::GetMemberRequest {
        project_id: "cloudops".into(),
        user_id: user.to_owned(),
    };
    let himself = bob.get_member(get("bob")).await.unwrap().into_inner();
    assert_eq!(
        himself.member.unwrap().api_ceiling,
        ["compute.read", "credentials:own"]
    );
    assert_refused(
        bob.get_member(get("console")).await,
        Code::NotFound,
        "console",
    );
}

async fn acting_for_a_member_is_confined_to_that_member(backend: Backend) {
    // Intel Tiber: "the owner and member must both create their own unique
    // credentials", at most two each; the console holds the only
    // management credential.
    let stack = Stack::for_registry(backend).await;
    let mut admin = stack.registry.client();
    create_project_with(
        &mut admin,
        "tiber",
        Some(pb::ProjectPolicy {
            max_credentials_per_owner: Some(2),
            max_credentials: Some(0),
            ..Default::default()
        }),
    )
    .await;
    add_member(&mut admin, "tiber", "owner-olga", &["compute.read"]).await;
    add_member(&mut admin, "tiber", "member-max", &["compute.read"]).await;
    let (console_credential, console_token) =
        token_of(&stack, "tiber", "console", &["credentials:manage"]).await;
    let mut olga = acting_for(&stack, &console_token, "owner-olga");
    let mut max = acting_for(&stack, &console_token, "member-max");
    let key = |name: &str| pb::CreateCredentialRequest {
        project_id: "tiber".into(),
        name: name.to_owned(),
        allowed_apis: vec!["compute.read".into()],
        ..Default::default()
    };

    // Exactly two keys each.
    let maxs_key = max
        .create_credential(key("max-1"))
        .await
        .unwrap()
        .into_inner()
        .credential
        .unwrap();
    max.create_credential(key("max-2")).await.unwrap();
    assert_refused(
        max.create_credential(key("max-3")).await,
        Code::ResourceExhausted,
        "max_credentials_per_owner = 2",
    );
    olga.create_credential(key("olga-1")).await.unwrap();
    olga.create_credential(key("olga-2")).await.unwrap();
    assert_refused(
        olga.create_credential(key("olga-3")).await,
        Code::ResourceExhausted,
        "= 2",
    );

    // Olga sees her two keys only; Max's are invisible, as missing ones.
    let listed = olga
        .list_credentials(pb::ListCredentialsRequest {
            project_id: "tiber".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .credentials;
    let names: Vec<&str> = listed.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["olga-1", "olga-2"]);
    for refused in [
        olga.get_credential(pb::GetCredentialRequest {
            credential_id: maxs_key.id.clone(),
        })
        .await
        .map(|_| ()),
        olga.delete_credential(pb::DeleteCredentialRequest {
            credential_id: maxs_key.id.clone(),
            confirm_name: "max-1".into(),
        })
        .await
        .map(|_| ()),
        olga.get_credential(pb::GetCredentialRequest {
            credential_id: console_credential.id.clone(),
        })
        .await
        .map(|_| ()),
    ] {
        assert_refused(refused, Code::NotFound, "not found");
    }
    assert_refused(
        olga.create_credential(pb::CreateCredentialRequest {
            owner: "member-max".into(),
            ..key("for-max")
        })
        .await,
        Code::PermissionDenied,
        "own owner only",
    );
    assert_refused(
        olga.list_credentials(pb::ListCredentialsRequest {
            project_id: "tiber".into(),
            owner: "member-max".into(),
            ..Default::default()
        })
        .await,
        Code::PermissionDenied,
        "own credentials only",
    );
    // Confined like an owner: no member management, no audit trail; but
    // the member itself may be read.
    assert_refused(
        olga.list_members(pb::ListMembersRequest {
            project_id: "tiber".into(),
            ..Default::default()
        })
        .await,
        Code::PermissionDenied,
        "managing members",
    );
    assert_refused(
        olga.update_member(update_member(
            "tiber",
            "owner-olga",
            ceiling(&["compute.admin"]),
            &["api_ceiling"],
        ))
        .await,
        Code::PermissionDenied,
        "managing members",
    );
    let herself = olga
        .get_member(pb::GetMemberRequest {
            project_id: "tiber".into(),
            user_id: "owner-olga".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .member
        .unwrap();
    assert_eq!(herself.user_id, "owner-olga");
    assert_refused(
        olga.get_member(pb::GetMemberRequest {
            project_id: "tiber".into(),
            user_id: "member-max".into(),
        })
        .await,
        Code::NotFound,
        "member-max",
    );

    // The trail names the console's credential and the member it acted for.
    let events = admin
        .list_audit_events(pb::ListAuditEventsRequest {
            project_id: "tiber".into(),
            page_size: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    let created_for_max: Vec<&pb::AuditEvent> = events
        .iter()
        .filter(|event| {
            event.action() == pb::AuditAction::CreateCredential
                && event.outcome() == pb::AuditOutcome::Succeeded
                && event.on_behalf_of == "member-max"
        })
        .collect();
    assert_eq!(created_for_max.len(), 2, "{events:?}");
    assert!(
        created_for_max
            .iter()
            .all(|event| event.actor == console_credential.id)
    );
    assert!(
        events
            .iter()
            .any(|event| event.action() == pb::AuditAction::CreateCredential
                && event.outcome() == pb::AuditOutcome::Failed
                && event.on_behalf_of == "owner-olga"),
        "refusals name the member too"
    );
    assert!(
        events
            .iter()
            .filter(|event| event.actor == console_credential.id && event.on_behalf_of.is_empty())
            .all(|event| event.action() != pb::AuditAction::CreateCredential),
        "no create without its member"
    );
}

async fn only_managers_act_and_only_for_active_members(backend: Backend) {
    let stack = Stack::for_registry(backend).await;
    let mut admin = stack.registry.client();
    create_project_with(&mut admin, "acme", None).await;
    create_project_with(&mut admin, "globex", None).await;
    add_member(
        &mut admin,
        "acme",
        "alice",
        &["orders.read", "credentials:own"],
    )
    .await;
    add_member(&mut admin, "acme", "sam", &["orders.read"]).await;
    add_member(&mut admin, "globex", "gina", &["orders.read"]).await;
    admin
        .update_member(update_member(
            "acme",
            "sam",
            in_state(pb::MemberState::Suspended),
            &["state"],
        ))
        .await
        .unwrap();
    let (_, manager) = token_of(&stack, "acme", "console", &["credentials:manage"]).await;
    let (_, alices) = token_of(&stack, "acme", "alice", &["credentials:own", "orders.read"]).await;
    let list = |project: &str| pb::ListCredentialsRequest {
        project_id: project.to_owned(),
        ..Default::default()
    };

    for (token, member, code, needle) in [
        (&manager, "nobody", Code::PermissionDenied, "not a member"),
        (&manager, "sam", Code::PermissionDenied, "suspended"),
        (
            &manager,
            "globex/gina",
            Code::PermissionDenied,
            "not the caller's",
        ),
        (
            &manager,
            "not a user",
            Code::InvalidArgument,
            "x-latchkey-on-behalf-of",
        ),
        (
            &alices,
            "alice",
            Code::PermissionDenied,
            "credentials:own callers cannot act",
        ),
    ] {
        let mut client = acting_for(&stack, token, member);
        assert_refused(client.list_credentials(list("acme")).await, code, needle);
    }
    // A platform admin reaches any project's member by project/user.
    let admin_token = stack_admin_token(&stack).await;
    let mut gina = acting_for(&stack, &admin_token, "globex/gina");
    let created = gina
        .create_credential(pb::CreateCredentialRequest {
            project_id: "globex".into(),
            allowed_apis: vec!["orders.read".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .credential
        .unwrap();
    assert_eq!(
        (created.project_id.as_str(), created.owner.as_str()),
        ("globex", "gina")
    );
    assert_refused(
        gina.list_credentials(list("acme")).await,
        Code::PermissionDenied,
        "project",
    );
}

/// A fresh token of the stack's platform admin.
async fn stack_admin_token(stack: &Stack) -> String {
    stack
        .issuer
        .token_client()
        .issue_token(IssueTokenRequest {
            client_id: stack.admin.client_id.clone(),
            client_secret: stack.admin.client_secret.clone(),
            scopes: vec![],
        })
        .await
        .unwrap()
        .into_inner()
        .access_token
}

async fn quotas_hold_for_fifty_parallel_creates_on_behalf_of_members(backend: Backend) {
    let stack = Stack::for_registry(backend).await;
    let mut admin = stack.registry.client();
    create_project_with(
        &mut admin,
        "tiber",
        Some(pb::ProjectPolicy {
            max_credentials: Some(15),
            max_credentials_per_owner: Some(2),
            ..Default::default()
        }),
    )
    .await;
    let users: Vec<String> = (0..10).map(|i| format!("user{i}")).collect();
    for user in &users {
        add_member(&mut admin, "tiber", user, &["compute.read"]).await;
    }
    // The platform admin's own credential lives in another project.
    let token = stack_admin_token(&stack).await;
    let calls: Vec<_> = (0..50)
        .map(|i| {
            let mut client = acting_for(&stack, &token, &format!("tiber/{}", users[i % 10]));
            tokio::spawn(async move {
                client
                    .create_credential(pb::CreateCredentialRequest {
                        project_id: "tiber".into(),
                        allowed_apis: vec!["compute.read".into()],
                        ..Default::default()
                    })
                    .await
            })
        })
        .collect();
    let mut created = 0;
    for call in calls {
        match call.await.unwrap() {
            Ok(_) => created += 1,
            Err(status) => assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}"),
        }
    }
    assert_eq!(created, 15);
    let listed = crate::support::list_all(&mut admin, "tiber").await;
    assert_eq!(listed.len(), 15);
    for user in &users {
        let owned = listed.iter().filter(|c| &c.owner == user).count();
        assert!(owned <= 2, "{user} holds {owned}");
    }
}

/// (credential, version, allowed APIs, state, revoke) of each change.
type Applied = (String, i64, Vec<String>, CredentialState, bool);

#[derive(Debug, Default)]
struct RecordingSync {
    failing: AtomicBool,
    applied: Mutex<Vec<Applied>>,
}

#[async_trait]
impl TokenSync for RecordingSync {
    async fn apply(&self, change: PolicyChange<'_>) -> Result<(), RegistryError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(RegistryError::TokenIssuerUnavailable("issuer down".into()));
        }
        let credential = change.credential;
        self.applied.lock().unwrap().push((
            credential.id.clone(),
            credential.policy_version,
            credential.allowed_apis.clone(),
            credential.state,
            change.revoke_tokens,
        ));
        Ok(())
    }
}

async fn member_changes_reach_the_token_side_first_or_not_at_all(backend: Backend) {
    let sync = Arc::new(RecordingSync::default());
    let (registry, _database) = registry_with_sync(backend, sync.clone()).await;
    let caller = Caller::bootstrap();
    registry
        .create_member(
            &caller,
            CreateMember {
                project_id: "acme".into(),
                user_id: "alice".into(),
                api_ceiling: vec!["a.read".into(), "a.write".into()],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut keys = Vec::new();
    for _ in 0..2 {
        let created = registry
            .create_credential(
                &caller,
                CreateCredential {
                    project_id: "acme".into(),
                    owner: "alice".into(),
                    allowed_apis: vec!["a.read".into(), "a.write".into()],
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        keys.push(created);
    }
    let secret = keys[0].client_secret.clone();
    let client_id = keys[0].credential.client_id.clone();
    let lower = || UpdateMember {
        api_ceiling: Some(vec!["a.read".into()]),
        ..Default::default()
    };
    let state = |state| UpdateMember {
        state: Some(state),
        ..Default::default()
    };

    // The issuer is down: every change that reaches tokens fails, and
    // neither the member nor a credential version moved.
    sync.failing.store(true, Ordering::SeqCst);
    for result in [
        registry
            .update_member(&caller, "acme", "alice", lower())
            .await,
        registry
            .update_member(&caller, "acme", "alice", state(MemberState::Suspended))
            .await,
        registry.remove_member(&caller, "acme", "alice").await,
    ] {
        assert!(
            matches!(result, Err(RegistryError::TokenIssuerUnavailable(_))),
            "{result:?}"
        );
    }
    let unchanged = registry.get_member(&caller, "acme", "alice").await.unwrap();
    assert_eq!(unchanged.api_ceiling, ["a.read", "a.write"]);
    assert_eq!(unchanged.state, MemberState::Active);
    for key in &keys {
        let credential = registry
            .get_credential(&caller, &key.credential.id)
            .await
            .unwrap();
        assert_eq!(credential.policy_version, 1);
    }
    // A rename does not reach tokens, so it needs no issuer.
    registry
        .update_member(
            &caller,
            "acme",
            "alice",
            UpdateMember {
                display_name: Some("Alice".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(sync.applied.lock().unwrap().is_empty());

    // Back: each change goes out per credential, with a new version and the
    // effective policy; the stored credential keeps its own APIs.
    sync.failing.store(false, Ordering::SeqCst);
    registry
        .update_member(&caller, "acme", "alice", lower())
        .await
        .unwrap();
    let authenticated = registry
        .authenticate(&client_id, &secret, "127.0.0.1")
        .await
        .unwrap();
    assert_eq!(
        authenticated.credential.allowed_apis,
        ["a.read"],
        "a fresh token gets the ceiling's APIs"
    );
    registry
        .update_member(&caller, "acme", "alice", state(MemberState::Suspended))
        .await
        .unwrap();
    assert!(
        registry
            .authenticate(&client_id, &secret, "127.0.0.1")
            .await
            .is_err(),
        "suspended"
    );
    registry
        .update_member(&caller, "acme", "alice", state(MemberState::Active))
        .await
        .unwrap();
    registry
        .authenticate(&client_id, &secret, "127.0.0.1")
        .await
        .unwrap();
    registry
        .remove_member(&caller, "acme", "alice")
        .await
        .unwrap();
    assert!(
        registry
            .authenticate(&client_id, &secret, "127.0.0.1")
            .await
            .is_err(),
        "removed"
    );

    let applied = sync.applied.lock().unwrap().clone();
    let read = vec!["a.read".to_owned()];
    let both = vec!["a.read".to_owned(), "a.write".to_owned()];
    let mut expected = Vec::new();
    for (version, apis, state, revoke) in [
        // The failed lowering may have reached the issuer before its answer
        // was lost: its notes make the next change settle each credential's
        // committed state first, above any version it used.
        (3, &both, CredentialState::Active, false),
        (4, &read, CredentialState::Active, false),
        (5, &read, CredentialState::Disabled, false),
        (6, &read, CredentialState::Active, false),
        (7, &read, CredentialState::Disabled, true),
    ] {
        let mut ids: Vec<&String> = keys.iter().map(|key| &key.credential.id).collect();
        ids.sort();
        for id in ids {
            expected.push((id.clone(), version, apis.clone(), state, revoke));
        }
    }
    assert_eq!(applied, expected);
    let stored = registry
        .get_credential(&caller, &keys[0].credential.id)
        .await
        .unwrap();
    assert_eq!(
        stored.allowed_apis,
        ["a.read", "a.write"],
        "never rewritten by the member"
    );
    assert_eq!(
        stored.state,
        CredentialState::Active,
        "suspension does not overwrite it"
    );
    assert_eq!(
        stored.policy_version, 7,
        "two more for the settling of the failed lowering"
    );
}

on_both_backends!(
    members_are_created_read_listed_updated_and_removed,
    the_ceiling_bounds_every_credential_of_a_member,
    a_member_cannot_mint_a_key_above_their_privileges,
    acting_for_a_member_is_confined_to_that_member,
    only_managers_act_and_only_for_active_members,
    quotas_hold_for_fifty_parallel_creates_on_behalf_of_members,
    member_changes_reach_the_token_side_first_or_not_at_all,
);
