//! What a caller is doing, as the kernel sees it: one name that maps to the SMART permission
//! it needs, the consent action it is, and the action the ledger records.

use custodian_events::AccessAction;
use custodian_policy::ConsentAction;

use crate::scope::Permission;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Interaction {
    /// read, vread, instance history.
    Read,
    /// type search, `_include`d resources, `$everything`, type history.
    Search,
    /// create, and update-as-create.
    Create,
    /// update, patch.
    Update,
    Delete,
}

impl Interaction {
    /// The SMART v2 letter the token's scopes must grant.
    pub fn permission(self) -> Permission {
        match self {
            Interaction::Read => Permission::Read,
            Interaction::Search => Permission::Search,
            Interaction::Create => Permission::Create,
            Interaction::Update => Permission::Update,
            Interaction::Delete => Permission::Delete,
        }
    }

    /// The consent action (`provision.action`): reading is `access`, new data is `collect`,
    /// changing or removing data is `correct`.
    pub fn consent_action(self) -> ConsentAction {
        match self {
            Interaction::Read | Interaction::Search => ConsentAction::Access,
            Interaction::Create => ConsentAction::Collect,
            Interaction::Update | Interaction::Delete => ConsentAction::Correct,
        }
    }

    pub fn event_action(self) -> AccessAction {
        match self {
            Interaction::Read => AccessAction::Read,
            Interaction::Search => AccessAction::Search,
            Interaction::Create => AccessAction::Create,
            Interaction::Update => AccessAction::Update,
            Interaction::Delete => AccessAction::Delete,
        }
    }

    pub fn writes(self) -> bool {
        matches!(
            self,
            Interaction::Create | Interaction::Update | Interaction::Delete
        )
    }
}
