//! Rolecall: an HTTP policy decision point modeled on Microsoft Entra ID custom roles and
//! Azure RBAC. See `DESIGN.md` for the concepts and `README.md` for running it.
#![warn(missing_docs)]

pub mod engine;
pub mod model;
pub mod store;
