//! Identity changes other services act on (published by identity on `<prefix>:identity`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum IdentityEvent {
    /// The user may no longer act: every token of theirs is refused from now on.
    UserSuspended {
        user_id: String,
        reason: String,
        time: DateTime<Utc>,
    },
    UserReinstated {
        user_id: String,
        time: DateTime<Utc>,
    },
    /// One token was revoked before it expired.
    TokenRevoked {
        jti: String,
        expires_at: DateTime<Utc>,
    },
}
