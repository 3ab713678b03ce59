//! Which scopes each route or gRPC method requires.

/// The scopes required per path prefix: an HTTP route (`/orders`) or a
/// gRPC service (`/shop.Inventory/`) or method (`/shop.Inventory/Reserve`).
/// The longest matching prefix wins; a prefix matches whole path segments
/// only (`/orders` matches `/orders` and `/orders/7`, not `/orders-admin`).
///
/// A path no rule matches is refused with 403 (fail closed), unless a
/// fallback is set with [`otherwise`](Self::otherwise).
#[derive(Debug, Clone, Default)]
pub struct AccessRules {
    routes: Vec<(String, Vec<String>)>,
    fallback: Option<Vec<String>>,
}

impl AccessRules {
    /// No rules: every path is refused until routes are added.
    pub fn new() -> Self {
        Self::default()
    }

    /// Requires every one of `scopes` for paths under `prefix`. No scopes
    /// means any valid token of a credential allowed from the caller's
    /// address.
    pub fn route<S: Into<String>>(
        mut self,
        prefix: impl Into<String>,
        scopes: impl IntoIterator<Item = S>,
    ) -> Self {
        self.routes
            .push((prefix.into(), scopes.into_iter().map(Into::into).collect()));
        self
    }

    /// Requires `scopes` for paths no route matches (instead of refusing
    /// them).
    pub fn otherwise<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.fallback = Some(scopes.into_iter().map(Into::into).collect());
        self
    }

    /// The scopes `path` requires, or `None` when it may not be called.
    pub fn required(&self, path: &str) -> Option<&[String]> {
        self.routes
            .iter()
            .filter(|(prefix, _)| matches_prefix(path, prefix))
            .max_by_key(|(prefix, _)| prefix.len())
            .map(|(_, scopes)| scopes.as_slice())
            .or(self.fallback.as_deref())
    }
}

fn matches_prefix(path: &str, prefix: &str) -> bool {
    let Some(rest) = path.strip_prefix(prefix) else {
        return false;
    };
    rest.is_empty() || prefix.ends_with('/') || rest.starts_with('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_whole_segment_prefix_wins() {
        let rules = AccessRules::new()
            .route("/orders", ["orders.read"])
            .route("/orders/admin", ["orders.admin"])
            .route("/shop.Inventory/", ["inventory.read"])
            .route("/shop.Inventory/Reserve", ["inventory.write"]);
        let required = |path| rules.required(path).map(<[String]>::to_vec);
        assert_eq!(required("/orders"), Some(vec!["orders.read".to_owned()]));
        assert_eq!(required("/orders/7"), Some(vec!["orders.read".to_owned()]));
        assert_eq!(
            required("/orders/admin/x"),
            Some(vec!["orders.admin".to_owned()])
        );
        assert_eq!(required("/orders-admin"), None);
        assert_eq!(
            required("/shop.Inventory/Get"),
            Some(vec!["inventory.read".to_owned()])
        );
        assert_eq!(
            required("/shop.Inventory/Reserve"),
            Some(vec!["inventory.write".to_owned()])
        );
        assert_eq!(required("/health"), None);
        let open = rules.otherwise(Vec::<String>::new());
        assert_eq!(open.required("/health"), Some(&[][..]));
    }
}
