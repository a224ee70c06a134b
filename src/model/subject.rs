//! Who a decision is about.

use uuid::Uuid;

/// Who is asking: a principal, plus what its token asserts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Subject {
    /// The principal's object id (`oid`).
    pub id: Uuid,
    /// Group ids from the token's `groups` claim: treated as direct memberships, then
    /// expanded through stored memberships like any other group.
    pub groups: Vec<Uuid>,
    /// Role template ids from the token's `wids` claim, from an issuer trusted to assert
    /// them: each one naming a built-in role grants it at `/`.
    pub wids: Vec<Uuid>,
}

impl Subject {
    /// A principal with nothing asserted by a token.
    pub fn new(id: Uuid) -> Subject {
        Subject {
            id,
            groups: Vec::new(),
            wids: Vec::new(),
        }
    }
}
