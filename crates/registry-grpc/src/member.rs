//! Members on the wire: conversions and the five member calls of
//! `CredentialRegistry`, each converting, delegating and converting back.

use latchkey_proto::registry::v1 as pb;
use latchkey_registry::{
    Caller, CreateMember, ListMembers, Member, MemberRole, MemberState, Registry, RegistryError,
    UpdateMember,
};
use prost_types::FieldMask;
use tonic::Status;

use crate::convert::timestamp;
use crate::status::to_status;

fn role_message(role: MemberRole) -> pb::MemberRole {
    match role {
        MemberRole::Owner => pb::MemberRole::Owner,
        MemberRole::Member => pb::MemberRole::Member,
    }
}

fn state_message(state: MemberState) -> pb::MemberState {
    match state {
        MemberState::Active => pb::MemberState::Active,
        MemberState::Suspended => pb::MemberState::Suspended,
        MemberState::Removed => pb::MemberState::Removed,
    }
}

/// The wire form of a member.
pub(crate) fn member_message(value: Member) -> pb::Member {
    pb::Member {
        role: role_message(value.role).into(),
        state: state_message(value.state).into(),
        create_time: Some(timestamp(value.create_time)),
        update_time: Some(timestamp(value.update_time)),
        project_id: value.project_id,
        user_id: value.user_id,
        display_name: value.display_name,
        api_ceiling: value.api_ceiling,
    }
}

/// A role from a request; `None` when unset.
fn role(field: &str, value: i32) -> Result<Option<MemberRole>, RegistryError> {
    match pb::MemberRole::try_from(value) {
        Ok(pb::MemberRole::Unspecified) => Ok(None),
        Ok(pb::MemberRole::Owner) => Ok(Some(MemberRole::Owner)),
        Ok(pb::MemberRole::Member) => Ok(Some(MemberRole::Member)),
        Err(_) => Err(RegistryError::invalid(field, "unknown value")),
    }
}

/// A state from an update: active or suspended.
fn state(field: &str, value: i32) -> Result<MemberState, RegistryError> {
    match pb::MemberState::try_from(value) {
        Ok(pb::MemberState::Active) => Ok(MemberState::Active),
        Ok(pb::MemberState::Suspended) => Ok(MemberState::Suspended),
        Ok(pb::MemberState::Removed) => Err(RegistryError::invalid(
            field,
            "must be ACTIVE or SUSPENDED (RemoveMember removes)",
        )),
        Ok(pb::MemberState::Unspecified) | Err(_) => {
            Err(RegistryError::invalid(field, "must be ACTIVE or SUSPENDED"))
        }
    }
}

/// The fields an update mask names, taken from `member` (snake_case or
/// camelCase paths). A field in the mask but unset in the message is
/// cleared (display_name, api_ceiling), as AIP-134 describes.
fn member_update(
    member: &pb::Member,
    mask: Option<&FieldMask>,
) -> Result<UpdateMember, RegistryError> {
    let paths = match mask {
        Some(mask) if !mask.paths.is_empty() => &mask.paths,
        _ => {
            return Err(RegistryError::invalid(
                "update_mask",
                "required: name at least one field",
            ));
        }
    };
    let mut update = UpdateMember::default();
    for path in paths {
        match path.as_str() {
            "display_name" | "displayName" => {
                update.display_name = Some(member.display_name.clone());
            }
            "role" => {
                update.role = Some(
                    role("member.role", member.role)?
                        .ok_or_else(|| RegistryError::invalid("member.role", "required"))?,
                );
            }
            "api_ceiling" | "apiCeiling" => update.api_ceiling = Some(member.api_ceiling.clone()),
            "state" => update.state = Some(state("member.state", member.state)?),
            other => {
                return Err(RegistryError::invalid(
                    "update_mask",
                    format!(
                        "{other:?} cannot be updated (allowed: display_name, role, api_ceiling, state)"
                    ),
                ));
            }
        }
    }
    Ok(update)
}

/// `"create_time"` (or empty) → oldest first; `"create_time desc"` →
/// newest first.
fn newest_first(order_by: &str) -> Result<bool, RegistryError> {
    let words: Vec<&str> = order_by.split_whitespace().collect();
    match words.as_slice() {
        [] | ["create_time" | "createTime"] | ["create_time" | "createTime", "asc"] => Ok(false),
        ["create_time" | "createTime", "desc"] => Ok(true),
        _ => Err(RegistryError::invalid(
            "order_by",
            "must be \"create_time\" or \"create_time desc\"",
        )),
    }
}

/// `CreateMember`.
pub(crate) async fn create(
    registry: &Registry,
    caller: &Caller,
    request: pb::CreateMemberRequest,
) -> Result<pb::CreateMemberResponse, Status> {
    let input = CreateMember {
        role: role("role", request.role).map_err(to_status)?,
        project_id: request.project_id,
        user_id: request.user_id,
        display_name: request.display_name,
        api_ceiling: request.api_ceiling,
    };
    let member = registry
        .create_member(caller, input)
        .await
        .map_err(to_status)?;
    tracing::info!(project_id = %member.project_id, user_id = %member.user_id, "member created");
    Ok(pb::CreateMemberResponse {
        member: Some(member_message(member)),
    })
}

/// `GetMember`.
pub(crate) async fn get(
    registry: &Registry,
    caller: &Caller,
    request: &pb::GetMemberRequest,
) -> Result<pb::GetMemberResponse, Status> {
    let member = registry
        .get_member(caller, &request.project_id, &request.user_id)
        .await
        .map_err(to_status)?;
    Ok(pb::GetMemberResponse {
        member: Some(member_message(member)),
    })
}

/// `ListMembers`.
pub(crate) async fn list(
    registry: &Registry,
    caller: &Caller,
    request: pb::ListMembersRequest,
) -> Result<pb::ListMembersResponse, Status> {
    let input = ListMembers {
        newest_first: newest_first(&request.order_by).map_err(to_status)?,
        project_id: request.project_id,
        include_removed: request.show_removed,
        page_size: request.page_size,
        page_token: request.page_token,
    };
    let (members, next_page_token) = registry
        .list_members(caller, input)
        .await
        .map_err(to_status)?;
    Ok(pb::ListMembersResponse {
        members: members.into_iter().map(member_message).collect(),
        next_page_token,
    })
}

/// `UpdateMember`.
pub(crate) async fn update(
    registry: &Registry,
    caller: &Caller,
    request: pb::UpdateMemberRequest,
) -> Result<pb::UpdateMemberResponse, Status> {
    let Some(member) = request.member else {
        return Err(Status::invalid_argument("member: required"));
    };
    let update = member_update(&member, request.update_mask.as_ref()).map_err(to_status)?;
    let updated = registry
        .update_member(caller, &member.project_id, &member.user_id, update)
        .await
        .map_err(to_status)?;
    tracing::info!(project_id = %updated.project_id, user_id = %updated.user_id, "member updated");
    Ok(pb::UpdateMemberResponse {
        member: Some(member_message(updated)),
    })
}

/// `RemoveMember`.
pub(crate) async fn remove(
    registry: &Registry,
    caller: &Caller,
    request: &pb::RemoveMemberRequest,
) -> Result<pb::RemoveMemberResponse, Status> {
    let removed = registry
        .remove_member(caller, &request.project_id, &request.user_id)
        .await
        .map_err(to_status)?;
    tracing::info!(project_id = %removed.project_id, user_id = %removed.user_id, "member removed");
    Ok(pb::RemoveMemberResponse {
        member: Some(member_message(removed)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_take_snake_and_camel_case_and_refuse_removal() {
        let message = pb::Member {
            api_ceiling: vec!["compute.read".into()],
            state: pb::MemberState::Suspended.into(),
            ..Default::default()
        };
        let mask = |paths: &[&str]| FieldMask {
            paths: paths.iter().map(|p| (*p).to_owned()).collect(),
        };
        let update = member_update(&message, Some(&mask(&["apiCeiling", "state"]))).unwrap();
        assert_eq!(update.api_ceiling, Some(vec!["compute.read".to_owned()]));
        assert_eq!(update.state, Some(MemberState::Suspended));
        let removed = pb::Member {
            state: pb::MemberState::Removed.into(),
            ..Default::default()
        };
        let refused = member_update(&removed, Some(&mask(&["state"]))).unwrap_err();
        assert!(refused.to_string().starts_with("member.state"), "{refused}");
        assert!(member_update(&message, Some(&mask(&["user_id"]))).is_err());
        assert!(member_update(&message, None).is_err());
    }

    #[test]
    fn order_by_is_create_time_either_way() {
        assert!(!newest_first("").unwrap());
        assert!(!newest_first("create_time").unwrap());
        assert!(newest_first("create_time desc").unwrap());
        assert!(newest_first("name").is_err());
    }
}
