//! Members of a project: the people behind credential owners, with an API
//! ceiling (DESIGN.md, "Member"; rules 3, 4, 8).
//!
//! A member is keyed by (project, user ID), and the user ID is exactly the
//! `owner` string credentials carry: a credential whose owner equals a
//! member's user ID belongs to that member. What its tokens obey is then
//! [`effective_credential`]: its allowed APIs within the member's ceiling,
//! and disabled while the member is not active. The credential's own fields
//! are never rewritten by a member change, so raising a ceiling again or
//! resuming a member restores exactly what was taken away. Projects that
//! never create members keep the plain owner-string model.

use chrono::{DateTime, Utc};

use crate::error::RegistryError;
use crate::model::{Credential, CredentialState};

/// A member's role, as the seed platforms name their users. Informational
/// for Latchkey: rights come from scopes, never from the role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberRole {
    /// The account's owner.
    Owner,
    /// Any other user of the account.
    Member,
}

/// Whether a member's credentials may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberState {
    /// Their credentials work within the ceiling.
    Active,
    /// Their credentials are refused until the member is active again.
    Suspended,
    /// Removed from the project: their credentials are refused for good.
    /// The row stays, so the user ID cannot become a plain owner again.
    Removed,
}

impl MemberState {
    /// The stored name (stable: it is persisted).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Removed => "removed",
        }
    }
}

impl MemberRole {
    /// The stored name (stable: it is persisted).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Member => "member",
        }
    }
}

/// A user of a project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The project.
    pub project_id: String,
    /// The user: the `owner` of the member's credentials.
    pub user_id: String,
    /// Optional human-readable name.
    pub display_name: String,
    /// Owner or member.
    pub role: MemberRole,
    /// The APIs (platform APIs and Latchkey's own scopes) the user holds;
    /// their credentials never hold more.
    pub api_ceiling: Vec<String>,
    /// Active, suspended or removed.
    pub state: MemberState,
    /// Creation time.
    pub create_time: DateTime<Utc>,
    /// Last change.
    pub update_time: DateTime<Utc>,
}

impl Member {
    /// Refuses to change a removed member: removal is for good.
    pub fn ensure_not_removed(&self) -> Result<(), RegistryError> {
        if self.state == MemberState::Removed {
            return Err(RegistryError::FailedPrecondition(format!(
                "member {:?} was removed from the project; removal is final",
                self.user_id
            )));
        }
        Ok(())
    }

    /// The entries of `apis` outside the ceiling, in their order.
    pub fn beyond_ceiling<'a>(&self, apis: &'a [String]) -> Vec<&'a str> {
        apis.iter()
            .filter(|api| !self.api_ceiling.contains(api))
            .map(String::as_str)
            .collect()
    }
}

/// What the token side enforces for `credential` when its owner is
/// `member`: the allowed APIs within the ceiling, and disabled unless the
/// member is active. Without a member, the credential as it is.
pub fn effective_credential(credential: &Credential, member: Option<&Member>) -> Credential {
    let mut effective = credential.clone();
    if let Some(member) = member {
        effective
            .allowed_apis
            .retain(|api| member.api_ceiling.contains(api));
        if member.state != MemberState::Active {
            effective.state = CredentialState::Disabled;
        }
    }
    effective
}

/// A validated partial update of a member; `None` keeps a field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberUpdate {
    /// New display name (empty clears it).
    pub display_name: Option<String>,
    /// New role.
    pub role: Option<MemberRole>,
    /// New ceiling.
    pub api_ceiling: Option<Vec<String>>,
    /// New state.
    pub state: Option<MemberState>,
}

impl MemberUpdate {
    /// True when nothing would change.
    pub fn is_empty(&self) -> bool {
        *self == MemberUpdate::default()
    }

    /// Whether the update changes what the member's tokens obey, so every
    /// credential of the member goes to the token side.
    pub fn reaches_tokens(&self) -> bool {
        self.api_ceiling.is_some() || self.state.is_some()
    }

    /// The API names of the fields this update changes.
    pub fn field_names(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        if self.display_name.is_some() {
            names.push("display_name");
        }
        if self.role.is_some() {
            names.push("role");
        }
        if self.api_ceiling.is_some() {
            names.push("api_ceiling");
        }
        if self.state.is_some() {
            names.push("state");
        }
        names
    }

    /// Applies the update to `member`.
    pub fn apply_to(&self, member: &mut Member) {
        if let Some(name) = &self.display_name {
            member.display_name.clone_from(name);
        }
        if let Some(role) = self.role {
            member.role = role;
        }
        if let Some(ceiling) = &self.api_ceiling {
            member.api_ceiling.clone_from(ceiling);
        }
        if let Some(state) = self.state {
            member.state = state;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::now;

    fn member(ceiling: &[&str], state: MemberState) -> Member {
        Member {
            project_id: "acme".into(),
            user_id: "alice".into(),
            display_name: String::new(),
            role: MemberRole::Member,
            api_ceiling: ceiling.iter().map(|api| (*api).to_owned()).collect(),
            state,
            create_time: now(),
            update_time: now(),
        }
    }

    fn credential(apis: &[&str]) -> Credential {
        Credential {
            id: "c".into(),
            project_id: "acme".into(),
            owner: "alice".into(),
            name: "key".into(),
            description: String::new(),
            client_id: "lkc_x".into(),
            allowed_apis: apis.iter().map(|api| (*api).to_owned()).collect(),
            allowed_ips: crate::IpAllowlist::default(),
            state: CredentialState::Active,
            expire_time: None,
            create_time: now(),
            update_time: now(),
            last_use: None,
            policy_version: 1,
        }
    }

    #[test]
    fn the_ceiling_narrows_without_rewriting_the_credential() {
        let key = credential(&["compute.read", "compute.admin"]);
        let reader = member(&["compute.read", "billing.read"], MemberState::Active);
        let effective = effective_credential(&key, Some(&reader));
        assert_eq!(effective.allowed_apis, ["compute.read"]);
        assert_eq!(effective.state, CredentialState::Active);
        assert_eq!(
            key.allowed_apis.len(),
            2,
            "the stored credential keeps both"
        );
        assert_eq!(
            reader.beyond_ceiling(&key.allowed_apis),
            ["compute.admin"],
            "the API named in a refusal"
        );
    }

    #[test]
    fn only_an_active_member_lends_a_credential_its_state() {
        let key = credential(&["compute.read"]);
        for state in [MemberState::Suspended, MemberState::Removed] {
            let effective = effective_credential(&key, Some(&member(&["compute.read"], state)));
            assert_eq!(effective.state, CredentialState::Disabled, "{state:?}");
        }
        let mut disabled = key.clone();
        disabled.state = CredentialState::Disabled;
        let resumed = effective_credential(
            &disabled,
            Some(&member(&["compute.read"], MemberState::Active)),
        );
        assert_eq!(
            resumed.state,
            CredentialState::Disabled,
            "an active member never enables a disabled credential"
        );
    }

    #[test]
    fn without_a_member_the_credential_is_as_stored() {
        let key = credential(&["compute.admin"]);
        assert_eq!(effective_credential(&key, None), key);
    }

    #[test]
    fn only_ceiling_and_state_reach_tokens() {
        let renamed = MemberUpdate {
            display_name: Some("Alice".into()),
            role: Some(MemberRole::Owner),
            ..Default::default()
        };
        assert!(!renamed.reaches_tokens());
        assert_eq!(renamed.field_names(), ["display_name", "role"]);
        let suspended = MemberUpdate {
            state: Some(MemberState::Suspended),
            ..Default::default()
        };
        assert!(suspended.reaches_tokens());
        assert!(MemberUpdate::default().is_empty());
    }
}
