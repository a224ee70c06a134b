//! The admin REST API under `/v1`: thin handlers over the store. Each write waits for the
//! local snapshot to reach its revision before answering (read-your-writes).

pub(crate) mod assignments;
mod changes;
mod directory;
mod groups;
mod import;
pub(crate) mod pim;
mod principals;
mod resources;
pub(crate) mod roles;
mod units;

use axum::http::Method;
use axum::routing::{delete, get, patch, post, put};

pub use import::{EXPORT_PATH, IMPORT_PATH};

use super::{route, ApiError, Route};
use crate::model::{AdministrativeUnit as Unit, Group};

const GET: Method = Method::GET;
const POST: Method = Method::POST;
const PATCH: Method = Method::PATCH;
const DELETE: Method = Method::DELETE;
const PUT: Method = Method::PUT;

/// Every admin route as (method, path, handler).
pub fn routes() -> Vec<Route> {
    vec![
        route(GET, "/v1/roleDefinitions", get(roles::list)),
        route(POST, "/v1/roleDefinitions", post(roles::create)),
        route(GET, "/v1/roleDefinitions/{id}", get(roles::get)),
        route(PATCH, "/v1/roleDefinitions/{id}", patch(roles::update)),
        route(DELETE, "/v1/roleDefinitions/{id}", delete(roles::delete)),
        route(POST, "/v1/roleDefinitions/{id}/clone", post(roles::clone)),
        route(
            GET,
            "/v1/roleDefinitions/{id}/assignments",
            get(roles::assignments),
        ),
        route(GET, "/v1/roleAssignments", get(assignments::list)),
        route(POST, "/v1/roleAssignments", post(assignments::create)),
        route(GET, "/v1/roleAssignments/{id}", get(assignments::get)),
        route(
            DELETE,
            "/v1/roleAssignments/{id}",
            delete(assignments::delete),
        ),
        route(GET, "/v1/denyAssignments", get(assignments::list_deny)),
        route(POST, "/v1/denyAssignments", post(assignments::create_deny)),
        route(GET, "/v1/denyAssignments/{id}", get(assignments::get_deny)),
        route(
            PATCH,
            "/v1/denyAssignments/{id}",
            patch(assignments::update_deny),
        ),
        route(
            DELETE,
            "/v1/denyAssignments/{id}",
            delete(assignments::delete_deny),
        ),
        route(GET, "/v1/groups", get(directory::list::<Group>)),
        route(POST, "/v1/groups", post(directory::create::<Group>)),
        route(GET, "/v1/groups/{id}", get(directory::get::<Group>)),
        route(PATCH, "/v1/groups/{id}", patch(directory::update::<Group>)),
        route(DELETE, "/v1/groups/{id}", delete(groups::delete)),
        route(
            GET,
            "/v1/groups/{id}/members",
            get(directory::list_members::<Group>),
        ),
        route(POST, "/v1/groups/{id}/members", post(groups::add_member)),
        route(
            DELETE,
            "/v1/groups/{id}/members/{memberId}",
            delete(groups::remove_member),
        ),
        route(GET, "/v1/administrativeUnits", get(directory::list::<Unit>)),
        route(
            POST,
            "/v1/administrativeUnits",
            post(directory::create::<Unit>),
        ),
        route(
            GET,
            "/v1/administrativeUnits/{id}",
            get(directory::get::<Unit>),
        ),
        route(
            PATCH,
            "/v1/administrativeUnits/{id}",
            patch(directory::update::<Unit>),
        ),
        route(
            DELETE,
            "/v1/administrativeUnits/{id}",
            delete(units::delete),
        ),
        route(
            GET,
            "/v1/administrativeUnits/{id}/members",
            get(directory::list_members::<Unit>),
        ),
        route(
            POST,
            "/v1/administrativeUnits/{id}/members",
            post(units::add_member),
        ),
        route(
            DELETE,
            "/v1/administrativeUnits/{id}/members/{memberId}",
            delete(units::remove_member),
        ),
        route(GET, "/v1/principals", get(principals::list)),
        route(POST, "/v1/principals", post(principals::create)),
        route(GET, "/v1/principals/{id}", get(principals::get)),
        route(PATCH, "/v1/principals/{id}", patch(principals::update)),
        route(DELETE, "/v1/principals/{id}", delete(principals::delete)),
        route(GET, "/v1/resources", get(resources::list)),
        route(POST, "/v1/resources", post(resources::create)),
        route(POST, "/v1/resources/bulk", post(resources::bulk)),
        route(GET, "/v1/resources/{type}/{id}", get(resources::get)),
        route(PATCH, "/v1/resources/{type}/{id}", patch(resources::update)),
        route(
            DELETE,
            "/v1/resources/{type}/{id}",
            delete(resources::delete),
        ),
        route(
            GET,
            "/v1/roleEligibilitySchedules",
            get(pim::list_eligibilities),
        ),
        route(
            POST,
            "/v1/roleEligibilitySchedules",
            post(pim::create_eligibility),
        ),
        route(
            GET,
            "/v1/roleEligibilitySchedules/{id}",
            get(pim::get_eligibility),
        ),
        route(
            DELETE,
            "/v1/roleEligibilitySchedules/{id}",
            delete(pim::delete_eligibility),
        ),
        route(GET, "/v1/roleManagementPolicies/{id}", get(pim::get_policy)),
        route(PUT, "/v1/roleManagementPolicies/{id}", put(pim::put_policy)),
        route(
            GET,
            "/v1/roleAssignmentScheduleRequests",
            get(pim::list_requests),
        ),
        route(
            POST,
            "/v1/roleAssignmentScheduleRequests",
            post(pim::submit_request),
        ),
        route(
            GET,
            "/v1/roleAssignmentScheduleRequests/{id}",
            get(pim::get_request),
        ),
        route(
            POST,
            "/v1/roleAssignmentScheduleRequests/{id}/approve",
            post(pim::approve),
        ),
        route(
            POST,
            "/v1/roleAssignmentScheduleRequests/{id}/deny",
            post(pim::deny),
        ),
        route(
            POST,
            "/v1/roleAssignmentScheduleRequests/{id}/cancel",
            post(pim::cancel),
        ),
        route(GET, "/v1/changes", get(changes::list)),
        route(GET, EXPORT_PATH, get(import::export)),
        route(POST, IMPORT_PATH, post(import::import)),
    ]
}

/// Parses an optional `true`/`false` query parameter.
fn parse_bool(name: &str, raw: Option<&str>) -> Result<Option<bool>, ApiError> {
    match raw {
        None => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(other) => Err(ApiError::invalid(
            format!("?{name}"),
            format!("`{name}` is `true` or `false`; got `{other}`"),
        )),
    }
}

/// Parses an optional uuid query parameter.
fn parse_uuid(name: &str, raw: Option<&str>) -> Result<Option<uuid::Uuid>, ApiError> {
    raw.map(|r| {
        uuid::Uuid::parse_str(r)
            .map_err(|_| ApiError::invalid(format!("?{name}"), format!("`{r}` is not a uuid")))
    })
    .transpose()
}
