//! Who a question is about: a principal with the claims its token carried, or claims a
//! caller vouches for.

use super::{Caller, Decider};
use crate::auth::TokenError;
use crate::model::Subject;

/// How a question names its subject.
#[derive(Debug, Clone)]
pub enum SubjectSpec {
    /// A token to validate like a caller's: principal, token groups and (for a trusted
    /// issuer) `wids`.
    Token(String),
    /// A principal id, with `groups` and `wids` the caller vouches for.
    Claims(Subject),
}

/// A subject ready for the engine, and how it came to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedSubject {
    /// Who.
    pub subject: Subject,
    /// Its token had a groups overage: only stored memberships count, and an explanation
    /// says so.
    pub groups_overage: bool,
    /// The caller vouched for `groups` or `wids` (given, not read from a validated token),
    /// which only a checker may do.
    pub vouched: bool,
}

/// Why a subject could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubjectError {
    /// The subject's token is unusable; the message says why.
    #[error("{0}")]
    InvalidToken(String),
    /// The token's issuer keys cannot be had: fail closed (503).
    #[error("{0}")]
    KeysUnavailable(String),
}

impl Decider {
    /// Resolves `spec` for a question `caller` asks.
    pub async fn resolve(
        &self,
        caller: &Caller,
        spec: SubjectSpec,
    ) -> Result<ResolvedSubject, SubjectError> {
        let token = match spec {
            SubjectSpec::Claims(subject) => {
                let vouched = !subject.groups.is_empty() || !subject.wids.is_empty();
                return Ok(ResolvedSubject {
                    subject,
                    groups_overage: false,
                    vouched,
                });
            }
            SubjectSpec::Token(token) => token,
        };
        if self.verifier.is_empty() {
            return Err(SubjectError::InvalidToken(
                "no token issuer is configured".to_owned(),
            ));
        }
        match self.verifier.verify(&token).await {
            Ok(identity) if identity.tenant != caller.tenant => {
                Err(SubjectError::InvalidToken(format!(
                    "the token is for tenant {}, and this call acts in {}",
                    identity.tenant, caller.tenant
                )))
            }
            Ok(identity) => Ok(ResolvedSubject {
                subject: identity.subject(),
                groups_overage: identity.groups_overage,
                vouched: false,
            }),
            Err(TokenError::Invalid(reason)) => Err(SubjectError::InvalidToken(format!(
                "the subject's token is not valid: {reason}"
            ))),
            Err(TokenError::KeysUnavailable(reason)) => Err(SubjectError::KeysUnavailable(reason)),
        }
    }
}
