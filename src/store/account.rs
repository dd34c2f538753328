//! The grants a user has given, as the account page (`/account`) lists
//! them.
//!
//! A grant is what one authorization (RFC 6749 §4.1) started: its code,
//! and the access and refresh tokens issued from it and from its refresh
//! tokens, all sharing one `grant_id`. The store has no table of grants;
//! each backend reads the user's token rows (`account::token_rows`, one
//! query of the same text in both) and [`grants_from_rows`] folds them
//! into one [`UserGrant`] per grant that can still be used.

use mcpgate_core::model::UnixTime;

/// One grant of a user that still holds a live token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserGrant {
    pub grant_id: String,
    pub client_id: String,
    /// The scope of the grant: that of its newest refresh token, or of its
    /// newest access token when it has no refresh token.
    pub scope: String,
    /// When the first token still stored was issued (the sign-in).
    pub granted_at: UnixTime,
    /// When the newest token was issued: the client's last sign-in or
    /// refresh, so its last use within an access token's lifetime.
    pub last_used_at: UnixTime,
}

/// A token row of the user, access or refresh.
#[derive(Debug, Clone)]
pub struct TokenRow {
    pub grant_id: String,
    pub client_id: String,
    pub scope: String,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
    pub revoked_at: Option<UnixTime>,
    /// Set for a refresh token already exchanged; always `None` for an
    /// access token.
    pub rotated_at: Option<UnixTime>,
    pub is_refresh: bool,
}

impl TokenRow {
    fn live(&self, now: UnixTime) -> bool {
        self.revoked_at.is_none() && self.rotated_at.is_none() && self.expires_at > now
    }
}

/// One [`UserGrant`] per grant with at least one live token (unrevoked,
/// unexpired, and for a refresh token not yet rotated), newest use first.
pub fn grants_from_rows(mut rows: Vec<TokenRow>, now: UnixTime) -> Vec<UserGrant> {
    rows.sort_by(|a, b| {
        (a.grant_id.as_str(), a.created_at, a.is_refresh).cmp(&(
            b.grant_id.as_str(),
            b.created_at,
            b.is_refresh,
        ))
    });
    let mut out: Vec<UserGrant> = Vec::new();
    let mut live = false;
    let mut has_refresh = false;
    for row in rows {
        let same = out.last().is_some_and(|g| g.grant_id == row.grant_id);
        if !same {
            if !live {
                out.pop();
            }
            live = false;
            has_refresh = false;
            out.push(UserGrant {
                grant_id: row.grant_id.clone(),
                client_id: row.client_id.clone(),
                scope: row.scope.clone(),
                granted_at: row.created_at,
                last_used_at: row.created_at,
            });
        }
        live |= row.live(now);
        if let Some(g) = out.last_mut() {
            g.last_used_at = g.last_used_at.max(row.created_at);
            // Rows come oldest first: the last refresh token seen is the newest.
            if row.is_refresh || !has_refresh {
                g.scope = row.scope.clone();
            }
        }
        has_refresh |= row.is_refresh;
    }
    if !live {
        out.pop();
    }
    out.sort_by(|a, b| {
        b.last_used_at
            .cmp(&a.last_used_at)
            .then_with(|| a.grant_id.cmp(&b.grant_id))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(grant: &str, created: i64, refresh: bool, scope: &str) -> TokenRow {
        TokenRow {
            grant_id: grant.into(),
            client_id: format!("client-{grant}"),
            scope: scope.into(),
            created_at: created,
            expires_at: created + 100,
            revoked_at: None,
            rotated_at: None,
            is_refresh: refresh,
        }
    }

    #[test]
    fn grants_fold_with_first_and_last_issue_and_the_refresh_scope() {
        let mut rotated = row("g1", 10, true, "mcp offline_access");
        rotated.rotated_at = Some(50);
        let rows = vec![
            row("g1", 50, false, "mcp"),
            rotated,
            row("g1", 10, false, "mcp"),
            row("g1", 50, true, "mcp offline_access"),
            row("g2", 20, false, "mcp"),
        ];
        let g = grants_from_rows(rows, 60);
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].grant_id, "g1");
        assert_eq!((g[0].granted_at, g[0].last_used_at), (10, 50));
        assert_eq!(g[0].scope, "mcp offline_access");
        assert_eq!(g[0].client_id, "client-g1");
        assert_eq!((g[1].grant_id.as_str(), g[1].scope.as_str()), ("g2", "mcp"));
    }

    #[test]
    fn grants_without_a_live_token_are_left_out() {
        let mut revoked = row("g1", 10, false, "mcp");
        revoked.revoked_at = Some(11);
        let mut rotated = row("g2", 10, true, "mcp");
        rotated.rotated_at = Some(11);
        let expired = row("g3", 10, false, "mcp");
        let live = row("g4", 10, false, "mcp");
        let g = grants_from_rows(vec![revoked, rotated, expired.clone(), live], 50);
        assert_eq!(g.len(), 2, "{g:?}");
        let g = grants_from_rows(vec![expired], 200);
        assert!(g.is_empty());
    }
}
