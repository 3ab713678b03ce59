//! Who called: the verified identity a request carries in its extensions.

/// The caller of a request the layer let through, from Latchkey's
/// introspection. Read it in an axum handler with
/// `axum::Extension<Identity>`, in a tonic method with
/// `request.extensions().get::<Identity>()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The credential's public client ID.
    pub client_id: String,
    /// The credential's ID.
    pub credential_id: String,
    /// The credential's project.
    pub project_id: String,
    /// The credential's owner.
    pub owner: String,
    /// The token's scopes still allowed by the credential.
    pub scopes: Vec<String>,
}

impl Identity {
    /// Whether the token grants `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|granted| granted == scope)
    }
}
