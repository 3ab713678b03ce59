//! Who may do what in the registry (DESIGN.md rule 8).
//!
//! Every management call carries a [`Caller`], established by the
//! authentication layer from a bearer token Latchkey issued. Three scopes
//! grant access, from most to least:
//!
//! - `registry:admin`: every project and credential, project policies;
//! - `credentials:manage`: every credential of the caller's own project;
//! - `credentials:own`: only credentials whose owner is the caller's owner,
//!   in its project; others are invisible (`NOT_FOUND`, no existence leak).
//!
//! Nobody grants an API it does not hold: a `credentials:own` caller only
//! APIs its token holds, Latchkey's own scopes only a caller holding them.
//!
//! A `credentials:manage` (or `registry:admin`) caller may act on behalf of
//! a member of a project ([`OnBehalfOf`], resolved by
//! `Registry::act_on_behalf`): it is then confined exactly like a
//! `credentials:own` caller whose owner is that member, within the
//! member's API ceiling.

use crate::error::RegistryError;
use crate::model::Credential;

/// Full access to every project.
pub const ADMIN_SCOPE: &str = "registry:admin";
/// Every credential of the caller's project.
pub const MANAGE_SCOPE: &str = "credentials:manage";
/// The caller's own credentials in its project.
pub const OWN_SCOPE: &str = "credentials:own";
/// May call the introspection endpoints.
pub const INTROSPECT_SCOPE: &str = "tokens:introspect";

/// Scopes that carry power inside Latchkey itself.
const LATCHKEY_SCOPE_PREFIXES: [&str; 3] = ["registry:", "credentials:", "tokens:"];

/// Whether `api` is one of Latchkey's own scopes rather than a platform API.
pub fn is_latchkey_scope(api: &str) -> bool {
    LATCHKEY_SCOPE_PREFIXES
        .iter()
        .any(|prefix| api.starts_with(prefix))
}

/// How far a caller reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// `credentials:own`.
    Owner,
    /// `credentials:manage`.
    Manager,
    /// `registry:admin`.
    Admin,
}

/// The authenticated caller of a management call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The caller's credential.
    pub credential_id: String,
    /// Its project.
    pub project_id: String,
    /// Its owner.
    pub owner: String,
    /// The scopes of its token.
    pub scopes: Vec<String>,
    /// The address the call came from, when known (for the audit trail).
    pub address: Option<std::net::IpAddr>,
    /// The member the caller acts on behalf of; `project_id` and `owner`
    /// are then the member's.
    pub on_behalf_of: Option<OnBehalfOf>,
    /// When a `credentials:own` caller is itself a member of its project:
    /// that member's API ceiling, which bounds the platform APIs it may
    /// grant instead of its own token's scopes ("a user's API keys have
    /// the same level of privilege that the user has"), so a user's login
    /// credential needs to hold no API, and stays no API key.
    pub own_ceiling: Option<Vec<String>>,
}

/// The member a manager's call acts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnBehalfOf {
    /// The member's user ID (the owner of their credentials).
    pub user_id: String,
    /// The member's API ceiling: what the call may grant.
    pub api_ceiling: Vec<String>,
}

impl Caller {
    /// The caller of the `bootstrap-admin` command, which runs with the
    /// database at hand, before any admin exists to ask.
    pub fn bootstrap() -> Self {
        Self {
            credential_id: String::new(),
            project_id: String::new(),
            owner: "bootstrap".to_owned(),
            scopes: vec![ADMIN_SCOPE.to_owned()],
            address: None,
            on_behalf_of: None,
            own_ceiling: None,
        }
    }
}

fn denied(message: &str) -> RegistryError {
    RegistryError::PermissionDenied(message.to_owned())
}

impl Caller {
    /// The caller's highest role, if it has any management scope. A call
    /// on behalf of a member has the member's reach: [`Role::Owner`].
    pub fn role(&self) -> Option<Role> {
        if self.on_behalf_of.is_some() {
            return Some(Role::Owner);
        }
        let has = |scope: &str| self.scopes.iter().any(|held| held == scope);
        if has(ADMIN_SCOPE) {
            Some(Role::Admin)
        } else if has(MANAGE_SCOPE) {
            Some(Role::Manager)
        } else if has(OWN_SCOPE) {
            Some(Role::Owner)
        } else {
            None
        }
    }

    /// The caller's role; `PERMISSION_DENIED` without one.
    pub fn require_role(&self) -> Result<Role, RegistryError> {
        self.role().ok_or_else(|| {
            denied("the token holds no management scope (registry:admin, credentials:manage or credentials:own)")
        })
    }

    /// Only platform admins: projects and their policies.
    pub fn require_admin(&self) -> Result<(), RegistryError> {
        match self.require_role()? {
            Role::Admin => Ok(()),
            Role::Manager | Role::Owner => Err(denied("requires registry:admin")),
        }
    }

    /// The caller may work in `project_id` (its own, or any for admins).
    pub fn require_project(&self, project_id: &str) -> Result<Role, RegistryError> {
        let role = self.require_role()?;
        if role == Role::Admin || project_id == self.project_id {
            Ok(role)
        } else {
            Err(denied("the project is not the caller's"))
        }
    }

    /// Whether the caller may see and change `credential`. Callers that may
    /// not are told `NOT_FOUND`, exactly as for a missing credential.
    pub fn can_access(&self, credential: &Credential) -> bool {
        match self.role() {
            Some(Role::Admin) => true,
            Some(Role::Manager) => credential.project_id == self.project_id,
            Some(Role::Owner) => {
                credential.project_id == self.project_id && credential.owner == self.owner
            }
            None => false,
        }
    }

    /// The owner a new credential gets: `credentials:own` callers create
    /// only their own; others name the owner (required).
    pub fn owner_for_new_credential(&self, requested: &str) -> Result<String, RegistryError> {
        match self.require_role()? {
            Role::Owner if requested.is_empty() || requested == self.owner => {
                Ok(self.owner.clone())
            }
            Role::Owner => Err(denied(
                "credentials:own callers create credentials for their own owner only",
            )),
            Role::Manager | Role::Admin => Ok(requested.to_owned()),
        }
    }

    /// The owner filter of a list: `credentials:own` callers see their own
    /// credentials only.
    pub fn owner_filter(&self, requested: Option<String>) -> Result<Option<String>, RegistryError> {
        match self.require_role()? {
            Role::Owner => match requested {
                Some(owner) if !owner.is_empty() && owner != self.owner => Err(denied(
                    "credentials:own callers list their own credentials only",
                )),
                _ => Ok(Some(self.owner.clone())),
            },
            Role::Manager | Role::Admin => Ok(requested),
        }
    }

    /// Refuses to grant what the caller does not hold (no escalation):
    /// a `credentials:own` caller only APIs its token holds; a call on
    /// behalf of a member only APIs within the member's ceiling; anyone
    /// but a platform admin only the Latchkey scopes it holds itself.
    /// (A member's ceiling also bounds every credential they own, whoever
    /// creates it: see `Registry::check_member_ceiling`.)
    pub fn check_grantable(&self, field: &str, apis: &[String]) -> Result<(), RegistryError> {
        let role = self.require_role()?;
        if role == Role::Admin {
            return Ok(());
        }
        for api in apis {
            let privileged = is_latchkey_scope(api);
            let held = self.scopes.contains(api);
            if let Some(member) = &self.on_behalf_of {
                if !member.api_ceiling.contains(api) {
                    return Err(RegistryError::PermissionDenied(format!(
                        "{field}: cannot grant {api:?}, beyond the API ceiling of member {:?}",
                        member.user_id
                    )));
                }
            } else if role == Role::Owner && !privileged {
                match &self.own_ceiling {
                    Some(ceiling) if !ceiling.contains(api) => {
                        return Err(RegistryError::PermissionDenied(format!(
                            "{field}: cannot grant {api:?}, beyond the caller's API ceiling"
                        )));
                    }
                    Some(_) => {}
                    None if !held => {
                        return Err(RegistryError::PermissionDenied(format!(
                            "{field}: cannot grant {api:?}, which the caller does not hold"
                        )));
                    }
                    None => {}
                }
            }
            if privileged && !held {
                return Err(RegistryError::PermissionDenied(format!(
                    "{field}: cannot grant {api:?}, which the caller does not hold"
                )));
            }
        }
        Ok(())
    }

    /// Only platform admins and the project's managers manage its members
    /// (a call on behalf of a member does not).
    pub fn require_member_manager(&self, project_id: &str) -> Result<(), RegistryError> {
        match self.require_project(project_id)? {
            Role::Admin | Role::Manager => Ok(()),
            Role::Owner => Err(denied(
                "managing members requires registry:admin or credentials:manage",
            )),
        }
    }

    /// Whether the caller may read member `user_id` of `project_id`: its
    /// managers, and the member itself.
    pub fn can_read_member(&self, project_id: &str, user_id: &str) -> Result<bool, RegistryError> {
        Ok(match self.require_project(project_id)? {
            Role::Admin | Role::Manager => true,
            Role::Owner => self.owner == user_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(scopes: &[&str]) -> Caller {
        Caller {
            credential_id: "c".into(),
            project_id: "acme".into(),
            owner: "alice".into(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            address: None,
            on_behalf_of: None,
            own_ceiling: None,
        }
    }

    #[test]
    fn an_owner_who_is_a_member_grants_within_the_ceiling_not_its_token() {
        let apis = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let login = caller(&[OWN_SCOPE]);
        assert!(
            login
                .check_grantable("allowed_apis", &apis(&["compute.read"]))
                .is_err(),
            "not a member: only what its token holds"
        );
        let member = Caller {
            own_ceiling: Some(apis(&["compute.read"])),
            ..login
        };
        assert!(
            member
                .check_grantable("allowed_apis", &apis(&["compute.read"]))
                .is_ok()
        );
        let beyond = member
            .check_grantable("allowed_apis", &apis(&["compute.read", "compute.admin"]))
            .unwrap_err();
        assert!(beyond.to_string().contains("compute.admin"), "{beyond}");
        // Latchkey's own scopes still need holding, ceiling or not.
        assert!(
            member
                .check_grantable("allowed_apis", &apis(&[MANAGE_SCOPE]))
                .is_err()
        );
    }

    #[test]
    fn roles_follow_the_strongest_scope() {
        assert_eq!(caller(&[OWN_SCOPE, ADMIN_SCOPE]).role(), Some(Role::Admin));
        assert_eq!(caller(&[MANAGE_SCOPE]).role(), Some(Role::Manager));
        assert_eq!(caller(&["orders.read"]).role(), None);
        assert!(caller(&["orders.read"]).require_project("acme").is_err());
    }

    #[test]
    fn nobody_grants_latchkey_scopes_they_lack() {
        let own = caller(&[OWN_SCOPE, "orders.read"]);
        assert!(
            own.check_grantable("allowed_apis", &["orders.read".into(), OWN_SCOPE.into()])
                .is_ok()
        );
        assert!(
            own.check_grantable("allowed_apis", &[MANAGE_SCOPE.into()])
                .is_err()
        );
        assert!(
            caller(&[MANAGE_SCOPE])
                .check_grantable("a", &[ADMIN_SCOPE.into()])
                .is_err()
        );
        assert!(
            caller(&[MANAGE_SCOPE])
                .check_grantable("a", &[INTROSPECT_SCOPE.into()])
                .is_err()
        );
        assert!(
            caller(&[ADMIN_SCOPE])
                .check_grantable("a", &[ADMIN_SCOPE.into()])
                .is_ok()
        );
    }

    #[test]
    fn owners_grant_only_the_platform_apis_their_token_holds() {
        let own = caller(&[OWN_SCOPE, "compute.read"]);
        assert!(
            own.check_grantable("allowed_apis", &["compute.read".into()])
                .is_ok()
        );
        let refused = own
            .check_grantable(
                "allowed_apis",
                &["compute.read".into(), "compute.admin".into()],
            )
            .unwrap_err();
        assert!(refused.to_string().contains("compute.admin"), "{refused}");
        assert!(
            caller(&[MANAGE_SCOPE])
                .check_grantable("a", &["compute.admin".into()])
                .is_ok(),
            "platform APIs of non-members are the manager's to grant"
        );
    }

    #[test]
    fn on_behalf_of_a_member_is_confined_to_the_member() {
        let mut acting = caller(&[MANAGE_SCOPE]);
        acting.owner = "bob".into();
        acting.on_behalf_of = Some(OnBehalfOf {
            user_id: "bob".into(),
            api_ceiling: vec!["compute.read".into(), OWN_SCOPE.into()],
        });
        assert_eq!(acting.role(), Some(Role::Owner));
        assert!(
            acting
                .check_grantable("a", &["compute.read".into()])
                .is_ok()
        );
        let beyond = acting
            .check_grantable("a", &["compute.admin".into()])
            .unwrap_err();
        assert!(beyond.to_string().contains("ceiling"), "{beyond}");
        assert!(
            acting.check_grantable("a", &[OWN_SCOPE.into()]).is_err(),
            "a Latchkey scope also needs the acting caller to hold it"
        );
        assert_eq!(acting.owner_for_new_credential("").unwrap(), "bob");
        assert!(acting.owner_for_new_credential("carol").is_err());
        assert!(acting.require_member_manager("acme").is_err());
        assert!(acting.can_read_member("acme", "bob").unwrap());
        assert!(!acting.can_read_member("acme", "carol").unwrap());
        assert!(acting.require_admin().is_err());
    }

    #[test]
    fn owners_are_confined_to_their_own() {
        let own = caller(&[OWN_SCOPE]);
        assert_eq!(own.owner_for_new_credential("").unwrap(), "alice");
        assert!(own.owner_for_new_credential("bob").is_err());
        assert_eq!(own.owner_filter(None).unwrap(), Some("alice".into()));
        assert!(own.owner_filter(Some("bob".into())).is_err());
        assert!(own.require_project("other").is_err());
    }
}
