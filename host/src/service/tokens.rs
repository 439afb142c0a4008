//! Token lifecycles: logout, device tokens and REMP's pairing rules, API token administration.

use super::{Services, auth::UserAuthorization};
use crate::domain::{
    Error, Result,
    event::DomainEvent,
    secret::{NewToken, TokenDigest, looks_like_token, new_token},
    token::{AccessToken, ApiToken, DeviceToken},
};
use crate::store::{Batch, Change};

/// Every route name an API token can be granted, as `--allow` takes them.
pub const ROUTE_NAMES: &[&str] = &[
    "user/info",
    "users/login",
    "users/logout",
    "users/email",
    "users/email-check",
    "users/validate-email",
    "users/create",
    "users/update",
    "users/confirm",
    "users/list",
    "users/touch",
    "users/data",
    "user/delete",
    "users/get-device-token",
    "users/autologin-token-login",
    "users/google-token-sign-in",
    "users/apple-token-sign-in",
    "autologin-tokens/create",
    "user-meta/upsert",
    "user-meta/list",
    "user-meta/key-users",
    "user-meta/delete",
    "users/add-to-group",
    "users/remove-from-group",
    "users/set-email-validated",
    "users/set-email-invalidated",
    "groups/create",
    "plugins/list",
    "plugins/reload",
    "users/addresses",
    "users/address",
    "user/addresses",
    "users/change-address-request",
    "address-types/create",
    "address-types/list",
    "address-change-requests/accept",
    "address-change-requests/reject",
    // Roles (issue 5): the resource API's groups and roles.
    "groups/list",
    "groups/show",
    "groups/update",
    "groups/delete",
    "groups/members",
    "roles/list",
    "roles/show",
    "roles/create",
    "roles/update",
    "roles/delete",
    "users/roles",
    "users/permissioncheck",
    // Resource API (issue 5)
    "users/index",
    "users/show",
    "users/store",
    "users/replace",
    "users/patch",
    "users/destroy",
    "users/search",
    "users/set-password",
    "api-tokens/list",
    "api-tokens/create",
    "api-tokens/revoke",
    "autologin-tokens/list",
    "autologin-tokens/revoke",
    // Operations (issue 9): what the admin console and a scraper read.
    "stats/new-users",
    "users/login-attempts",
    "users/password-changes",
    "users/meta",
    "access-tokens/list",
    "access-tokens/revoke",
    "addresses/list",
    "address-change-requests/list",
    "metrics",
];

/// Parse `--allow`: `*` or a comma list of known route names.
pub fn parse_allowed_routes(spec: &str) -> Result<Vec<String>> {
    let routes: Vec<String> = spec.split(',').map(|r| r.trim().to_owned()).filter(|r| !r.is_empty()).collect();
    if routes.is_empty() {
        return Err(Error::invalid("invalid_routes", "allow", "name at least one route, or '*' for all"));
    }
    if routes.iter().any(|r| r == "*") {
        return Ok(vec!["*".into()]);
    }
    for r in &routes {
        if !ROUTE_NAMES.contains(&r.as_str()) {
            return Err(Error::invalid(
                "invalid_routes",
                "allow",
                format!("unknown route '{r}'; known routes: {}", ROUTE_NAMES.join(", ")),
            ));
        }
    }
    Ok(routes)
}

impl Services {
    /// Remove every authorized access token (one, or all on the device) and sign the users out.
    pub async fn logout(&self, authz: &UserAuthorization) -> Result<()> {
        let removed = self.remove_access_tokens(authz.access_tokens.iter().map(|t| t.digest)).await?;
        let mut signed_out = Vec::new();
        for t in removed {
            if !signed_out.contains(&t.user_id) {
                signed_out.push(t.user_id);
                self.events.publish(DomainEvent::UserSignOut { user_id: t.user_id });
            }
        }
        Ok(())
    }

    /// Remove access tokens and publish `RemovedAccessToken` for each one that existed.
    pub async fn remove_access_tokens(
        &self,
        digests: impl IntoIterator<Item = TokenDigest>,
    ) -> Result<Vec<AccessToken>> {
        let batch = Batch(digests.into_iter().map(Change::DeleteAccessToken).collect());
        let applied = self.store.apply(batch).await?;
        for t in &applied.removed_access_tokens {
            self.events.publish(DomainEvent::RemovedAccessToken {
                user_id: t.user_id,
                token_id: t.id,
                source: t.source.clone(),
            });
        }
        Ok(applied.removed_access_tokens)
    }

    /// Look up an access token by its plain text.
    pub async fn find_access_token(&self, plain: &str) -> Result<Option<AccessToken>> {
        if !looks_like_token(plain) {
            return Ok(None);
        }
        self.store.access_token(&TokenDigest::of(plain)).await
    }

    /// Look up a device token by its plain text.
    pub async fn find_device_token(&self, plain: &str) -> Result<Option<DeviceToken>> {
        if !looks_like_token(plain) {
            return Ok(None);
        }
        self.store.device_token(&TokenDigest::of(plain)).await
    }

    /// A new device token for `device_id` (REMP always inserts a new one), paired with
    /// `access` when given.
    pub async fn new_device_token(&self, device_id: &str, access: Option<&AccessToken>) -> Result<String> {
        let NewToken { plain, digest } = new_token()?;
        let applied = self
            .store
            .apply(Batch(vec![Change::InsertDeviceToken { digest, device_id: device_id.to_owned() }]))
            .await?;
        let device = applied
            .device_token()
            .cloned()
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("device token insert returned nothing")))?;
        if let Some(access) = access {
            self.pair(access, &device).await?;
        }
        Ok(plain)
    }

    /// REMP's `pairWithDeviceToken`: a device holds the tokens of at most one claimed user, so
    /// pairing a claimed user's token first unpairs other claimed users' tokens from the device.
    pub async fn pair(&self, access: &AccessToken, device: &DeviceToken) -> Result<()> {
        let mut batch = Batch::new();
        let mut unpaired = Vec::new();
        let owner = self.store.user(access.user_id).await?;
        let owner_unclaimed = match &owner {
            Some(u) => self.is_unclaimed(u).await?,
            None => false,
        };
        if !owner_unclaimed {
            for other in self.store.access_tokens_of_device(device.id).await? {
                if other.user_id == access.user_id {
                    continue;
                }
                let other_unclaimed = match self.store.user(other.user_id).await? {
                    Some(u) => self.is_unclaimed(&u).await?,
                    None => false,
                };
                if !other_unclaimed {
                    batch.push(Change::PairAccessToken { access: other.digest, device_token_id: None });
                    unpaired.push(other.id);
                }
            }
        }
        batch.push(Change::PairAccessToken { access: access.digest, device_token_id: Some(device.id) });
        self.store.apply(batch).await?;
        for access_token_id in unpaired {
            self.events.publish(DomainEvent::UnpairDeviceAccessTokens { device_token_id: device.id, access_token_id });
        }
        self.events
            .publish(DomainEvent::PairDeviceAccessTokens { device_token_id: device.id, access_token_id: access.id });
        Ok(())
    }

    /// Remember that a request with this idempotency key succeeded on `scope` (a route).
    pub async fn remember_idempotency_key(&self, scope: &str, key: &str) -> Result<()> {
        self.store
            .apply(Batch(vec![Change::RememberIdempotencyKey { scope: scope.to_owned(), key: key.to_owned() }]))
            .await
            .map(|_| ())
    }

    /// Create an API token; the plain text is returned once and never stored.
    pub async fn create_api_token(&self, name: &str, allowed_routes: Vec<String>) -> Result<(ApiToken, String)> {
        let name = name.trim();
        if name.is_empty() || name.len() > 255 {
            return Err(Error::invalid("invalid_name", "name", "an API token needs a name of 1 to 255 characters"));
        }
        let NewToken { plain, digest } = new_token()?;
        let applied = self
            .store
            .apply(Batch(vec![Change::InsertApiToken { digest, name: name.to_owned(), allowed_routes }]))
            .await?;
        let token = applied
            .api_token()
            .cloned()
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("API token insert returned nothing")))?;
        Ok((token, plain))
    }

    /// Revoke API tokens by id, or every active token with that name.
    pub async fn revoke_api_token(&self, id_or_name: &str) -> Result<Vec<ApiToken>> {
        let tokens = self.store.api_tokens().await?;
        let matching: Vec<ApiToken> = match id_or_name.parse::<u64>() {
            Ok(id) => tokens.into_iter().filter(|t| t.id == id).collect(),
            Err(_) => tokens.into_iter().filter(|t| t.name == id_or_name && t.active).collect(),
        };
        if matching.is_empty() {
            return Err(Error::NotFound(format!("no active API token with id or name '{id_or_name}'")));
        }
        let batch = Batch(matching.iter().map(|t| Change::SetApiTokenActive { id: t.id, active: false }).collect());
        self.store.apply(batch).await?;
        Ok(matching)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_lists_take_star_or_known_routes() {
        assert_eq!(parse_allowed_routes("*").unwrap(), vec!["*"]);
        assert_eq!(parse_allowed_routes("users/create, users/list").unwrap(), vec!["users/create", "users/list"]);
        assert_eq!(parse_allowed_routes("users/nope").unwrap_err().code(), "invalid_routes");
        assert_eq!(parse_allowed_routes(" , ").unwrap_err().code(), "invalid_routes");
    }
}
