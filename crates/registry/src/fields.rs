//! The one table of a credential's updatable fields: the path an update
//! mask names (snake_case, or its proto3 JSON camelCase), the validation a
//! new value passes, and (in the storage crate, matching on the same enum)
//! the column it is written to. A field added to [`CredentialField`] fails to
//! compile until every one of those places handles it.

use chrono::{DateTime, Utc};

use crate::access::Caller;
use crate::error::RegistryError;
use crate::model::CredentialUpdate;
use crate::validate;

/// A field of a credential that `UpdateCredential` may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CredentialField {
    /// `name`.
    Name,
    /// `description`.
    Description,
    /// `allowed_apis`.
    AllowedApis,
    /// `allowed_ips`.
    AllowedIps,
    /// `expire_time`.
    ExpireTime,
}

impl CredentialField {
    /// Every updatable field, in the order the API documents them.
    pub const ALL: [Self; 5] = [
        Self::Name,
        Self::Description,
        Self::AllowedApis,
        Self::AllowedIps,
        Self::ExpireTime,
    ];

    /// The field's proto name, as in `update_mask` paths and error messages.
    pub fn path(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::Description => "description",
            Self::AllowedApis => "allowed_apis",
            Self::AllowedIps => "allowed_ips",
            Self::ExpireTime => "expire_time",
        }
    }

    /// The field's proto3 JSON name, which JSON clients (grpcurl, the
    /// HTTP API) put in masks.
    pub fn json_name(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::Description => "description",
            Self::AllowedApis => "allowedApis",
            Self::AllowedIps => "allowedIps",
            Self::ExpireTime => "expireTime",
        }
    }

    /// The field an update-mask path names, in either spelling;
    /// `INVALID_ARGUMENT` naming `update_mask` for anything else.
    pub fn from_mask_path(path: &str) -> Result<Self, RegistryError> {
        Self::ALL
            .into_iter()
            .find(|field| path == field.path() || path == field.json_name())
            .ok_or_else(|| {
                let allowed: Vec<&str> = Self::ALL.iter().map(|field| field.path()).collect();
                RegistryError::invalid(
                    "update_mask",
                    format!(
                        "{path:?} cannot be updated (allowed: {})",
                        allowed.join(", ")
                    ),
                )
            })
    }

    /// The request field a refusal names (`credential.allowed_ips`).
    fn request_field(self) -> String {
        format!("credential.{}", self.path())
    }
}

/// Raw new values of an update, as the transport read them from the fields
/// its mask names; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct UpdateCredential {
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New allowed APIs.
    pub allowed_apis: Option<Vec<String>>,
    /// New allowed IPs.
    pub allowed_ips: Option<Vec<String>>,
    /// New expiry (`Some(None)` clears it).
    pub expire_time: Option<Option<DateTime<Utc>>>,
    /// The etag the caller read (AIP-154); empty: update unconditionally.
    pub etag: String,
}

impl UpdateCredential {
    /// Validates every value present, naming the request field of the
    /// first bad one; `caller` must hold every Latchkey scope it grants.
    /// Public only for the update-mask fuzz target (`fuzz/`); the service
    /// is the one caller.
    #[doc(hidden)]
    pub fn validate(
        self,
        caller: &Caller,
        now: DateTime<Utc>,
    ) -> Result<CredentialUpdate, RegistryError> {
        let Self {
            name,
            description,
            allowed_apis,
            allowed_ips,
            expire_time,
            etag,
        } = self;
        let field = CredentialField::request_field;
        let name = name
            .map(|name| {
                validate::credential_name(&field(CredentialField::Name), &name).map(|()| name)
            })
            .transpose()?;
        let description = description
            .map(|text| {
                validate::free_text(
                    &field(CredentialField::Description),
                    &text,
                    validate::MAX_DESCRIPTION_LEN,
                )
                .map(|()| text)
            })
            .transpose()?;
        let allowed_apis = allowed_apis
            .map(|apis| {
                let path = field(CredentialField::AllowedApis);
                let apis = validate::allowed_apis(&path, &apis)?;
                caller.check_grantable(&path, &apis)?;
                Ok::<_, RegistryError>(apis)
            })
            .transpose()?;
        let allowed_ips = allowed_ips
            .map(|ips| validate::allowed_ips(&field(CredentialField::AllowedIps), &ips))
            .transpose()?;
        let expire_time = expire_time
            .map(|expiry| validate::expire_time(&field(CredentialField::ExpireTime), expiry, now))
            .transpose()?;
        let expected_version = if etag.is_empty() {
            None
        } else {
            Some(crate::etag::parse("credential.etag", &etag)?)
        };
        Ok(CredentialUpdate {
            name,
            description,
            allowed_apis,
            allowed_ips,
            expire_time,
            expected_version,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_paths_are_read_in_both_spellings() {
        for field in CredentialField::ALL {
            assert_eq!(
                CredentialField::from_mask_path(field.path()).unwrap(),
                field
            );
            assert_eq!(
                CredentialField::from_mask_path(field.json_name()).unwrap(),
                field
            );
        }
        let error = CredentialField::from_mask_path("client_id").unwrap_err();
        assert!(error.to_string().starts_with("update_mask:"), "{error}");
        assert!(CredentialField::from_mask_path("Allowed_Ips").is_err());
    }
}
