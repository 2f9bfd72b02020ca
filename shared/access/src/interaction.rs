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
    /// Bulk Data `$export`: the data leaves in files. SMART's bulk scopes are read scopes; the
    /// ledger records it as an export (what anomaly watches for exfiltration).
    Export,
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
            Interaction::Export => Permission::Read,
        }
    }

    /// The consent action (`provision.action`): reading is `access`, new data is `collect`,
    /// changing or removing data is `correct`.
    pub fn consent_action(self) -> ConsentAction {
        match self {
            Interaction::Read | Interaction::Search | Interaction::Export => ConsentAction::Access,
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
            Interaction::Export => AccessAction::Export,
        }
    }

    pub fn writes(self) -> bool {
        matches!(
            self,
            Interaction::Create | Interaction::Update | Interaction::Delete
        )
    }
}
