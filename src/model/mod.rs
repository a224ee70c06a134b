//! Ids, scope paths, action patterns and entities. Constructors validate, so a value you
//! hold is already well formed.

mod action;
mod catalog;
pub mod condition;
pub mod directory_file;
mod dump;
mod entities;
pub mod import_plan;
mod input;
mod mapping;
pub mod pim;
mod principal;
mod resource;
mod scope;
mod subject;
mod validation;

pub use action::{Action, ActionError, ActionPattern, MAX_ACTION_LEN, MAX_ACTION_SEGMENTS};
pub use catalog::{Catalog, CatalogError, AUTHORIZATION_CHECKER, PRIVILEGED_ROLE_ADMINISTRATOR};
pub use condition::{Attrs, Condition, ConditionError, Env};
pub use dump::{Dump, DumpBatch, DumpRow, TenantDump};
pub use entities::*;
pub use input::*;
pub use mapping::{encode_segment, Mapping, Mappings, Named};
pub use pim::{
    NewRoleEligibility, NewScheduleRequest, Refusal, RequestStatus, RoleAssignmentScheduleRequest,
    RoleEligibilityInput, RoleEligibilitySchedule, RoleManagementPolicy, RoleManagementPolicyInput,
    ScheduleAction, ScheduleRequestInput,
};
pub use principal::*;
pub use resource::*;
pub use scope::{ancestors, Scope, ScopeError, MAX_SCOPE_DEPTH, MAX_SCOPE_LEN};
pub use subject::Subject;
pub use validation::{FieldError, ValidationErrors};
