//! The console's pages and forms. Each reads and writes through [`Console::call`], so the
//! `/v1` handlers authorize it; errors the API answers are shown in place.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::sync::OnceLock;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form};
use serde_json::{json, Value};
use uuid::Uuid;

use super::html::{csrf_field, enc, error_box, esc, page, text_input, Frame};
use super::session::{self, same_token, Session, COOKIE, SIGNIN_COOKIE};
use super::{request_id, see_other, Console, Reply};
use crate::api::authz::{Caller, MANAGE_ASSIGNMENTS, MANAGE_ROLES};
use crate::api::AppState;
use crate::model::{ActionPattern, Catalog, Condition, Scope};

type Fields = Vec<(String, String)>;
type Params = Query<HashMap<String, String>>;

static CSS: &[u8] = include_bytes!("assets/console.css");
static JS: &[u8] = include_bytes!("assets/console.js");

/// A signed-in request: who, as what, and how to call the API as them.
struct Ctx {
    console: Console,
    app: AppState,
    session: Session,
    caller: Caller,
    request_id: String,
}

/// The session of a request, or a redirect to sign in (no cookie, a forged or expired
/// one, or a credential the API no longer accepts: fail closed).
async fn ctx(console: &Console, app: &AppState, headers: &HeaderMap) -> Result<Ctx, Response> {
    let session = cookie(headers, COOKIE)
        .and_then(|value| console.key().open(&value))
        .ok_or_else(|| see_other("/console/signin"))?;
    let caller = console
        .caller(app, &session.credential)
        .await
        .map_err(|_| see_other("/console/signin?expired=1"))?;
    Ok(Ctx {
        console: console.clone(),
        app: app.clone(),
        session,
        caller,
        request_id: request_id(headers),
    })
}

impl Ctx {
    async fn get(&self, uri: &str) -> Reply {
        self.call(Method::GET, uri, None).await
    }

    async fn call(&self, method: Method, uri: &str, body: Option<&Value>) -> Reply {
        self.console
            .call(
                &self.session.credential,
                method,
                uri,
                body,
                &self.request_id,
            )
            .await
    }

    fn holds(&self, action: &str, scope: &Scope) -> bool {
        self.caller.holds(&self.app, action, scope)
    }

    fn page(&self, title: &str, active: &str, body: &str) -> Response {
        self.page_with(StatusCode::OK, title, active, body)
    }

    fn page_with(&self, status: StatusCode, title: &str, active: &str, body: &str) -> Response {
        let frame = Frame {
            label: &self.session.label,
            csrf: &self.session.csrf,
            active,
        };
        page(status, title, Some(&frame), body)
    }

    fn csrf(&self) -> String {
        csrf_field(&self.session.csrf)
    }

    /// A 403 page unless the form echoes this session's CSRF token.
    fn refused_without_csrf(&self, fields: &Fields) -> Option<Response> {
        if same_token(&self.session.csrf, field(fields, "csrf")) {
            None
        } else {
            Some(self.page_with(
                StatusCode::FORBIDDEN,
                "Refused",
                "",
                &error_box(
                    "this form did not carry the session's CSRF token, so it was refused; \
                     reload the page and try again",
                ),
            ))
        }
    }
}

/// A request cookie's value.
pub(super) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.to_owned())
}

fn field<'a>(fields: &'a Fields, name: &str) -> &'a str {
    fields
        .iter()
        .find(|(n, _)| n == name)
        .map_or("", |(_, v)| v.as_str())
}

fn fields_all<'a>(fields: &'a Fields, name: &str) -> Vec<&'a str> {
    fields
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

fn param<'a>(q: &'a HashMap<String, String>, name: &str) -> &'a str {
    q.get(name).map_or("", |v| v.trim())
}

/// `Secure` when the console is reached over TLS (directly or behind a proxy saying so).
pub(super) fn secure(app: &AppState, headers: &HeaderMap) -> bool {
    app.config()
        .public_url
        .as_deref()
        .is_some_and(|u| u.starts_with("https://"))
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, under `/console`.
pub(super) fn set_cookie(name: &str, value: &str, max_age: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let text = format!(
        "{name}={value}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    );
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("x=; Max-Age=0"))
}

fn not_uuid(ctx: &Ctx, what: &str, raw: &str) -> Response {
    ctx.page_with(
        StatusCode::NOT_FOUND,
        "Not found",
        "",
        &error_box(&format!("`{raw}` is not a {what} id")),
    )
}

/// The API's refusal or failure, in place.
fn api_error(reply: &Reply) -> String {
    let mut out = error_box(&reply.detail());
    for (pointer, detail) in reply.field_errors() {
        let _ = write!(
            out,
            "<p class=\"error\">{}: {}</p>",
            esc(&pointer),
            esc(&detail)
        );
    }
    out
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

// ---------------------------------------------------------------- assets and sign-in

pub(super) async fn css() -> Response {
    asset("text/css; charset=utf-8", CSS)
}

pub(super) async fn js() -> Response {
    asset("text/javascript; charset=utf-8", JS)
}

fn asset(kind: &'static str, bytes: &'static [u8]) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        bytes,
    )
        .into_response()
}

pub(super) async fn home(
    State(app): State<AppState>,
    Extension(console): Extension<Console>,
    headers: HeaderMap,
) -> Response {
    match ctx(&console, &app, &headers).await {
        Ok(_) => see_other("/console/roles"),
        Err(redirect) => redirect,
    }
}

fn dev_key(app: &AppState) -> Option<&str> {
    app.config()
        .dev
        .then_some(())
        .and(app.config().admin_key.as_ref())
        .map(crate::config::Secret::expose)
}

fn signin_form(app: &AppState, headers: &HeaderMap, status: StatusCode, error: &str) -> Response {
    let console_token = cookie(headers, SIGNIN_COOKIE);
    let mut body = String::new();
    let token = match console_token {
        Some(t) if t.len() >= 16 => t,
        _ => match super::session::fresh_token() {
            Some(t) => t,
            None => {
                return page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Sign in",
                    None,
                    "<p class=\"error\" role=\"alert\">The system random generator failed; try again.</p>",
                )
            }
        },
    };
    if dev_key(app).is_some() {
        let _ = write!(
            body,
            "<section aria-labelledby=\"dev-h\"><h2 id=\"dev-h\">Dev mode</h2>\
             <form method=\"post\" action=\"/console/signin/dev\">\
             <input type=\"hidden\" name=\"signin\" value=\"{}\">\
             <button type=\"submit\" id=\"dev-signin\">Sign in as the dev administrator</button>\
             <p class=\"hint\">Acts with the dev break-glass admin key. Not for production.</p>\
             </form></section>",
            esc(&token)
        );
    }
    if let Some(oidc) = &app.config().console_oidc {
        let _ = write!(
            body,
            "<section aria-labelledby=\"oidc-h\"><h2 id=\"oidc-h\">Single sign-on</h2>\
             <p><a class=\"button\" id=\"oidc-signin\" href=\"/console/signin/oidc\">Sign in with {}</a></p></section>",
            esc(&oidc.issuer)
        );
    }
    let invalid = if error.is_empty() {
        ""
    } else {
        " aria-invalid=\"true\""
    };
    let _ = write!(
        body,
        "<section aria-labelledby=\"tok-h\"><h2 id=\"tok-h\">Bearer token</h2>\
         <form method=\"post\" action=\"/console/signin/token\">\
         <input type=\"hidden\" name=\"signin\" value=\"{}\">\
         <div class=\"field\"><label for=\"f-token\">Paste a bearer token from a trusted issuer</label>\
         <textarea id=\"f-token\" name=\"token\" rows=\"4\" required autocomplete=\"off\" \
         aria-describedby=\"err-token\"{invalid}></textarea>\
         <span class=\"field-error\" id=\"err-token\" aria-live=\"polite\">{}</span></div>\
         <button type=\"submit\" id=\"token-signin\">Sign in</button>\
         <p class=\"hint\">The token is kept only inside an encrypted, HttpOnly session cookie.</p>\
         </form></section>",
        esc(&token),
        esc(error)
    );
    let mut response = page(status, "Sign in", None, &body);
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SIGNIN_COOKIE, &token, 1800, secure(app, headers)),
    );
    response
}

pub(super) async fn signin_page(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(q): Params,
) -> Response {
    let note = if q.contains_key("expired") {
        "your session ended or its credential is no longer accepted; sign in again"
    } else {
        ""
    };
    signin_form(&app, &headers, StatusCode::OK, note)
}

/// Login CSRF: the sign-in form echoes the random value its page set in a cookie.
fn signin_csrf_ok(headers: &HeaderMap, fields: &Fields) -> bool {
    cookie(headers, SIGNIN_COOKIE)
        .is_some_and(|expected| same_token(&expected, field(fields, "signin")))
}

fn start_session(
    console: &Console,
    app: &AppState,
    headers: &HeaderMap,
    session: Option<Session>,
) -> Response {
    let Some((session, sealed)) =
        session.and_then(|session| console.key().seal(&session).map(|sealed| (session, sealed)))
    else {
        return signin_form(
            app,
            headers,
            StatusCode::SERVICE_UNAVAILABLE,
            "cannot start a session (the system random generator failed); try again",
        );
    };
    let max_age = (session.expires - chrono::Utc::now().timestamp()).max(0);
    let mut response = see_other("/console/roles");
    let secure = secure(app, headers);
    let h = response.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(COOKIE, &sealed, max_age, secure),
    );
    h.append(header::SET_COOKIE, set_cookie(SIGNIN_COOKIE, "", 0, secure));
    response
}

pub(super) async fn signin_dev(
    State(app): State<AppState>,
    Extension(console): Extension<Console>,
    headers: HeaderMap,
    Form(fields): Form<Fields>,
) -> Response {
    if !signin_csrf_ok(&headers, &fields) {
        return signin_form(
            &app,
            &headers,
            StatusCode::FORBIDDEN,
            "the sign-in form was stale; try again",
        );
    }
    let Some(key) = dev_key(&app) else {
        return signin_form(
            &app,
            &headers,
            StatusCode::FORBIDDEN,
            "dev sign-in is only for `serve --dev`",
        );
    };
    let session = console
        .key()
        .start(key.to_owned(), "dev administrator".to_owned(), None);
    start_session(&console, &app, &headers, session)
}

pub(super) async fn signin_token(
    State(app): State<AppState>,
    Extension(console): Extension<Console>,
    headers: HeaderMap,
    Form(fields): Form<Fields>,
) -> Response {
    if !signin_csrf_ok(&headers, &fields) {
        return signin_form(
            &app,
            &headers,
            StatusCode::FORBIDDEN,
            "the sign-in form was stale; try again",
        );
    }
    let token = field(&fields, "token").trim().to_owned();
    let caller = match console.caller(&app, &token).await {
        Ok(caller) => caller,
        Err(error) => {
            return signin_form(&app, &headers, StatusCode::UNAUTHORIZED, &error.to_string())
        }
    };
    let label = label_of(&caller);
    let expires = session::token_expiry(&token);
    let session = console.key().start(token, label, expires);
    start_session(&console, &app, &headers, session)
}

/// Who a caller is, for the page header.
pub(super) fn label_of(caller: &Caller) -> String {
    match caller.identity() {
        Some(identity) => format!("{} ({})", identity.principal_id, identity.issuer.as_str()),
        None => "admin key".to_owned(),
    }
}

pub(super) async fn signout(
    State(app): State<AppState>,
    Extension(console): Extension<Console>,
    headers: HeaderMap,
    Form(fields): Form<Fields>,
) -> Response {
    let ctx = match ctx(&console, &app, &headers).await {
        Ok(ctx) => ctx,
        Err(redirect) => return redirect,
    };
    if let Some(refused) = ctx.refused_without_csrf(&fields) {
        return refused;
    }
    let mut response = see_other("/console/signin");
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(COOKIE, "", 0, secure(&app, &headers)),
    );
    response
}

// ---------------------------------------------------------------- roles

pub(super) async fn roles(
    State(app): State<AppState>,
    Extension(console): Extension<Console>,
    headers: HeaderMap,
    Query(q): Params,
) -> Response {
    let ctx = match ctx(&console, &app, &headers).await {
        Ok(ctx) => ctx,
        Err(redirect) => return redirect,
    };
    let search = param(&q, "q");
    let kind = param(&q, "kind");
    let mut uri = "/v1/roleDefinitions?limit=1000".to_owned();
    if !search.is_empty() {
        let _ = write!(uri, "&displayName={}", enc(search));
    }
    match kind {
        "builtin" => uri.push_str("&isBuiltIn=true"),
        "custom" => uri.push_str("&isBuiltIn=false"),
        _ => {}
    }
    let mut body = String::new();
    if ctx.holds(MANAGE_ROLES, &Scope::root()) {
        body.push_str(
            "<p><a class=\"button admin-action\" href=\"/console/roles/new\">New custom role</a></p>",
        );
    }
    let selected = |k: &str| if kind == k { " selected" } else { "" };
    let _ = write!(
        body,
        "<form class=\"filters\" method=\"get\" action=\"/console/roles\" role=\"search\">\
         <div class=\"field\"><label for=\"f-q\">Name contains</label>\
         <input id=\"f-q\" name=\"q\" value=\"{}\" type=\"search\"></div>\
         <div class=\"field\"><label for=\"f-kind\">Kind</label><select id=\"f-kind\" name=\"kind\">\
         <option value=\"\">All</option><option value=\"builtin\"{}>Built-in</option>\
         <option value=\"custom\"{}>Custom</option></select></div>\
         <button type=\"submit\" id=\"role-search\">Search</button></form>",
        esc(search),
        selected("builtin"),
        selected("custom")
    );
    let reply = ctx.get(&uri).await;
    if !reply.ok() {
        body.push_str(&api_error(&reply));
        return ctx.page("Roles", "/console/roles", &body);
    }
    body.push_str(
        "<table><caption>Roles</caption><thead><tr><th scope=\"col\">Name</th>\
         <th scope=\"col\">Kind</th><th scope=\"col\">Enabled</th><th scope=\"col\">Description</th>\
         </tr></thead><tbody>",
    );
    for role in reply.items() {
        let _ = write!(
            body,
            "<tr><td><a href=\"/console/roles/{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&text(&role["id"])),
            esc(&text(&role["displayName"])),
            if role["isBuiltIn"] == json!(true) {
                "built-in"
            } else {
                "custom"
            },
            if role["isEnabled"] == json!(true) {
                "yes"
            } else {
                "no"
            },
            esc(&text(&role["description"]))
        );
    }
    body.push_str("</tbody></table>");
    ctx.page("Roles", "/console/roles", &body)
}

/// Patterns grouped by namespace, then entity: `microsoft.directory/applications/...`.
fn grouped(patterns: &[String]) -> String {
    let mut groups: BTreeMap<&str, BTreeMap<&str, Vec<&str>>> = BTreeMap::new();
    for p in patterns {
        let mut parts = p.splitn(3, '/');
        let namespace = parts.next().unwrap_or_default();
        let entity = parts.next().unwrap_or("");
        groups
            .entry(namespace)
            .or_default()
            .entry(entity)
            .or_default()
            .push(p.as_str());
    }
    let mut out = String::new();
    for (namespace, entities) in groups {
        let _ = write!(out, "<section class=\"ns\"><h4>{}</h4><dl>", esc(namespace));
        for (entity, actions) in entities {
            let _ = write!(out, "<dt>{}</dt>", esc(entity));
            for a in actions {
                let _ = write!(out, "<dd><code>{}</code></dd>", esc(a));
            }
        }
        out.push_str("</dl></section>");
    }
    out
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().map(text).collect())
        .unwrap_or_default()
}

pub(super) async fn role_detail(
    State(app): State<AppState>,
    Extension(console): Extension<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let ctx = match ctx(&console, &app, &headers).await {
        Ok(ctx) => ctx,
        Err(redirect) => return redirect,
    };
    let Ok(id) = Uuid::parse_str(&id) else {
        return not_uuid(&ctx, "role", &id);
    };
    let reply = ctx.get(&format!("/v1/roleDefinitions/{id}")).await;
    if !reply.ok() {
        return ctx.page_with(reply.status, "Role", "/console/roles", &api_error(&reply));
    }
    let role = &reply.body;
    let name = text(&role["displayName"]);
    let mut body = String::new();
    let _ = write!(
        body,
        "<p>{}</p><p class=\"meta\">{} · id <code>{id}</code> · {}</p><p class=\"actions\">",
        esc(&text(&role["description"])),
        if role["isBuiltIn"] == json!(true) {
            "Built-in"
        } else {
            "Custom"
        },
        if role["isEnabled"] == json!(true) {
            "enabled"
        } else {
            "disabled"
        }
    );
    if ctx.holds(MANAGE_ROLES, &Scope::root()) {
        let _ = write!(
            body,
            "<a class=\"button admin-action\" id=\"clone\" href=\"/console/roles/new?from={id}\">Clone</a> "
        );
    }
    if ctx.holds(MANAGE_ASSIGNMENTS, &Scope::root()) {
        let _ = write!(
            body,
            "<a class=\"button admin-action\" id=\"assign\" href=\"/console/assignments?role={id}\">Assign</a>"
        );
    }
    body.push_str("</p><h2>Permissions</h2>");
    for (i, entry) in role["rolePermissions"]
        .as_array()
        .map_or(&[][..], Vec::as_slice)
        .iter()
        .enumerate()
    {
        let _ = write!(body, "<section class=\"entry\"><h3>Entry {}</h3>", i + 1);
        body.push_str(&grouped(&strings(&entry["allowedResourceActions"])));
        let excluded = strings(&entry["excludedResourceActions"]);
        if !excluded.is_empty() {
            body.push_str("<h4>Excluded</h4>");
            body.push_str(&grouped(&excluded));
        }
        if let Some(condition) = entry["condition"].as_str() {
            let _ = write!(body, "<p>Condition: <code>{}</code></p>", esc(condition));
        }
        body.push_str("</section>");
    }
    body.push_str("<h2 id=\"assignments\">Assignments</h2>");
    let assignments = ctx
        .get(&format!("/v1/roleDefinitions/{id}/assignments?limit=1000"))
        .await;
    body.push_str(&assignment_table(
        &ctx,
        &assignments,
        &format!("/console/roles/{id}"),
    ));
    ctx.page(&name, "/console/roles", &body)
}

fn assignment_table(ctx: &Ctx, reply: &Reply, back: &str) -> String {
    if !reply.ok() {
        return api_error(reply);
    }
    if reply.items().is_empty() {
        return "<p id=\"no-assignments\">No assignments.</p>".to_owned();
    }
    let mut out = String::from(
        "<table id=\"assignment-list\"><caption>Role assignments</caption><thead><tr>\
         <th scope=\"col\">Principal</th><th scope=\"col\">Type</th><th scope=\"col\">Role</th>\
         <th scope=\"col\">Scope</th><th scope=\"col\">Window</th><th scope=\"col\"><span class=\"sr\">Actions</span></th>\
         </tr></thead><tbody>",
    );
    for a in reply.items() {
        let id = text(&a["id"]);
        let scope = text(&a["directoryScopeId"]);
        let role = text(&a["roleDefinitionId"]);
        let window = match (a["startDateTime"].as_str(), a["endDateTime"].as_str()) {
            (None, None) => "always".to_owned(),
            (s, e) => format!("{} → {}", s.unwrap_or("…"), e.unwrap_or("…")),
        };
        let _ = write!(
            out,
            "<tr><td><code>{}</code></td><td>{}</td><td><a href=\"/console/roles/{}\">{}</a></td>\
             <td><code>{}</code></td><td>{}</td><td>",
            esc(&text(&a["principalId"])),
            esc(&text(&a["principalType"])),
            esc(&role),
            esc(&role),
            esc(&scope),
            esc(&window)
        );
        let removable = Scope::parse(&scope).is_ok_and(|s| ctx.holds(MANAGE_ASSIGNMENTS, &s));
        if removable {
            let _ = write!(
                out,
                "<form method=\"post\" action=\"/console/assignments/{}/delete\">{}\
                 <input type=\"hidden\" name=\"back\" value=\"{}\">\
                 <button type=\"submit\" class=\"danger admin-action\" aria-label=\"Remove assignment {}\">Remove</button></form>",
                esc(&id),
                ctx.csrf(),
                esc(back),
                esc(&id)
            );
        }
        out.push_str("</td></tr>");
    }
    out.push_str("</tbody></table>");
    out
}

/// Every action the built-in catalog's roles name, sorted.
fn catalog_actions() -> &'static [String] {
    static ACTIONS: OnceLock<Vec<String>> = OnceLock::new();
    ACTIONS.get_or_init(|| {
        let mut all = BTreeSet::new();
        if let Ok(catalog) = Catalog::builtin() {
            for role in catalog.roles() {
                for entry in &role.role_permissions {
                    for p in &entry.allowed_resource_actions {
                        all.insert(p.as_str().to_owned());
                    }
                }
            }
        }
        all.into_iter().collect()
    })
}

/// What the role form holds, as typed.
#[derive(Default)]
struct RoleForm {
    name: String,
    description: String,
    perms: Vec<String>,
    extra: String,
    excluded: String,
    condition: String,
}

impl RoleForm {
    fn from_fields(fields: &Fields) -> RoleForm {
        RoleForm {
            name: field(fields, "displayName").trim().to_owned(),
            description: field(fields, "description").trim().to_owned(),
            perms: fields_all(fields, "perm")
                .into_iter()
                .map(str::to_owned)
                .collect(),
            extra: field(fields, "extra").trim().to_owned(),
            excluded: field(fields, "excluded").to_owned(),
            condition: field(fields, "condition").trim().to_owned(),
        }
    }

    fn allowed(&self) -> Vec<String> {
        let mut all: Vec<String> = self.perms.clone();
        all.extend(lines(&self.extra));
        all.dedup();
        all
    }

    fn body(&self) -> Value {
        let mut entry = json!({
            "allowedResourceActions": self.allowed(),
            "excludedResourceActions": lines(&self.excluded),
        });
        if !self.condition.is_empty() {
            entry["condition"] = json!(self.condition);
            entry["conditionVersion"] = json!("2.0");
        }
        json!({
            "displayName": self.name,
            "description": self.description,
            "rolePermissions": [entry],
        })
    }

    fn hidden(&self) -> String {
        let mut out = String::new();
        for (name, value) in [
            ("displayName", &self.name),
            ("description", &self.description),
            ("extra", &self.extra),
            ("excluded", &self.excluded),
            ("condition", &self.condition),
        ] {
            let _ = write!(
                out,
                "<input type=\"hidden\" name=\"{name}\" value=\"{}\">",
                esc(value)
            );
        }
        for p in &self.perms {
            let _ = write!(
                out,
                "<input type=\"hidden\" name=\"perm\" value=\"{}\">",
                esc(p)
            );
        }
        out
    }

    /// Local validation through the model (the API validates again on create).
    fn errors(&self) -> HashMap<&'static str, String> {
        let mut errors = HashMap::new();
        if self.name.is_empty() {
            errors.insert("displayName", "a role needs a name".to_owned());
        }
        if self.allowed().is_empty() {
            errors.insert("perm", "tick at least one permission".to_owned());
        }
        if let Some(message) = pattern_errors(&self.extra) {
            errors.insert("extra", message);
        }
        if let Some(message) = pattern_errors(&self.excluded) {
            errors.insert("excluded", message);
        }
        if !self.condition.is_empty() {
            if let Err(e) = Condition::parse(&self.condition) {
                errors.insert("condition", e.to_string());
            }
        }
        errors
    }
}

fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

fn pattern_errors(text: &str) -> Option<String> {
    let bad: Vec<String> = lines(text)
        .iter()
        .filter_map(|l| ActionPattern::parse(l).err().map(|e| format!("`{l}`: {e}")))
        .collect();
    (!bad.is_empty()).then(|| bad.join("; "))
}

fn role_form(
    ctx: &Ctx,
    form: &RoleForm,
    errors: &HashMap<&'static str, String>,
    top: &str,
) -> Response {
    let err = |k: &str| errors.get(k).map_or("", String::as_str);
    let mut body = String::new();
    body.push_str(top);
    let _ = write!(
        body,
        "<form method=\"post\" action=\"/console/roles/review\" id=\"role-form\">{}",
        ctx.csrf()
    );
    body.push_str(&text_input(
        "displayName",
        "Name",
        &form.name,
        err("displayName"),
        "required",
    ));
    let _ = write!(
        body,
        "<div class=\"field\"><label for=\"f-description\">Description</label>\
         <textarea id=\"f-description\" name=\"description\" rows=\"2\">{}</textarea></div>",
        esc(&form.description)
    );
    let ticked: BTreeSet<&str> = form.perms.iter().map(String::as_str).collect();
    let _ = write!(
        body,
        "<fieldset><legend>Permissions</legend>\
         <div class=\"field\"><label for=\"perm-search\">Search the catalog's actions</label>\
         <input id=\"perm-search\" type=\"search\" autocomplete=\"off\" aria-controls=\"perm-list\"></div>\
         <p><button type=\"button\" id=\"untick-all\">Untick all</button> \
         <span id=\"perm-count\" aria-live=\"polite\">{} ticked</span></p>\
         <span class=\"field-error\" id=\"err-perm\" aria-live=\"polite\">{}</span>\
         <ul id=\"perm-list\" class=\"perms\">",
        ticked.len(),
        esc(err("perm"))
    );
    let mut listed: Vec<&str> = form.perms.iter().map(String::as_str).collect();
    listed.extend(
        catalog_actions()
            .iter()
            .map(String::as_str)
            .filter(|a| !ticked.contains(a)),
    );
    for action in listed {
        let checked = if ticked.contains(action) {
            " checked"
        } else {
            ""
        };
        let _ = write!(
            body,
            "<li><label><input type=\"checkbox\" name=\"perm\" value=\"{0}\"{checked}> {0}</label></li>",
            esc(action)
        );
    }
    body.push_str("</ul>");
    let _ = write!(
        body,
        "<div class=\"field\"><label for=\"f-extra\">Other allowed patterns (one per line, wildcards allowed)</label>\
         <textarea id=\"f-extra\" name=\"extra\" rows=\"2\" data-validate=\"patterns\" aria-describedby=\"err-extra\">{}</textarea>\
         <span class=\"field-error\" id=\"err-extra\" aria-live=\"polite\">{}</span></div></fieldset>",
        esc(&form.extra),
        esc(err("extra"))
    );
    let _ = write!(
        body,
        "<div class=\"field\"><label for=\"f-excluded\">Exclusions (one pattern per line)</label>\
         <textarea id=\"f-excluded\" name=\"excluded\" rows=\"2\" data-validate=\"patterns\" aria-describedby=\"err-excluded\">{}</textarea>\
         <span class=\"field-error\" id=\"err-excluded\" aria-live=\"polite\">{}</span></div>",
        esc(&form.excluded),
        esc(err("excluded"))
    );
    body.push_str(&text_input(
        "condition",
        "Condition (optional, Azure ABAC syntax)",
        &form.condition,
        err("condition"),
        "data-validate=\"condition\" autocomplete=\"off\"",
    ));
    body.push_str("<p><button type=\"submit\" id=\"review\">Review</button></p></form>");
    ctx.page("New custom role", "/console/roles", &body)
}

pub(super) async fn role_new(
    State(app): State<AppState>,
    Extension(console): Extension<Console>,
    headers: HeaderMap,
    Query(q): Params,
) -> Response {
    let ctx = match ctx(&console, &app, &headers).await {
        Ok(ctx) => ctx,
        Err(redirect) => return redirect,
    };
    let mut form = RoleForm::default();
    let mut top = String::new();
    let from = param(&q, "from");
    if !from.is_empty() {
        let Ok(id) = Uuid::parse_str(from) else {
            return not_uuid(&ctx, "role", from);
        };
        let reply = ctx.get(&format!("/v1/roleDefinitions/{id}")).await;
        if reply.ok() {
            let source = &reply.body;
            let name = text(&source["displayName"]);
            let _ = write!(
                top,
                "<p>Cloning <strong>{}</strong>: untick what the new role should not have.</p>",
                esc(&name)
            );
            form.name = format!("{name} (copy)");
            form.description = text(&source["description"]);
            let mut excluded = Vec::new();
            for entry in source["rolePermissions"]
                .as_array()
                .map_or(&[][..], Vec::as_slice)
            {
                form.perms.extend(strings(&entry["allowedResourceActions"]));
                excluded.extend(strings(&entry["excludedResourceActions"]));
                if form.condition.is_empty() {
                    form.condition = entry["condition"].as_str().unwrap_or_default().to_owned();
                }
            }
            form.excluded = excluded.join("\n");
        } else {
            top.push_str(&api_error(&reply));
        }
    }
    role_form(&ctx, &form, &HashMap::new(), &top)
}

pub(super) async fn role_review(
    State(app): State<AppState>,
    Extension(console): Extension<Console>,
    headers: HeaderMap,
    Form(fields): Form<Fields>,
) -> Response {
    let ctx = match ctx(&console, &app, &headers).await {
        Ok(ctx) => ctx,
        Err(redirect) => return redirect,
    };
    if let Some(refused) = ctx.refused_without_csrf(&fields) {
        return refused;
    }
    let form = RoleForm::from_fields(&fields);
    let errors = form.errors();
    if !errors.is_empty() || !field(&fields, "edit").is_empty() {
        return role_form(&ctx, &form, &errors, "");
    }
    let mut body = String::new();
    let _ = write!(
        body,
        "<dl class=\"review\"><dt>Name</dt><dd id=\"review-name\">{}</dd><dt>Description</dt><dd>{}</dd></dl>\
         <h2>Permissions ({})</h2>{}",
        esc(&form.name),
        esc(&form.description),
        form.allowed().len(),
        grouped(&form.allowed())
    );
    let excluded = lines(&form.excluded);
    if !excluded.is_empty() {
        body.push_str("<h2>Exclusions</h2>");
        body.push_str(&grouped(&excluded));
    }
    if !form.condition.is_empty() {
        let _ = write!(
            body,
            "<h2>Condition</h2><p><code>{}</code></p>",
            esc(&form.condition)
        );
    }
    let _ = write!(
        body,
        "<form method=\"post\" action=\"/console/roles\">{}{}\
         <button type=\"submit\" id=\"create\">Create role</button> \
         <button type=\"submit\" name=\"edit\" value=\"1\" formaction=\"/console/roles/review\">Back to edit</button>\
         </form>",
        ctx.csrf(),
        form.hidden()
    );
    ctx.page("Review the new role", "/console/roles", &body)
}

pub(super) async fn role_create(
    State(app): State<AppState>,
    Extension(console): Extension<Console>,
    headers: HeaderMap,
    Form(fields): Form<Fields>,
) -> Response {
    let ctx = match ctx(&console, &app, &headers).await {
        Ok(ctx) => ctx,
        Err(redirect) => return redirect,
    };
    if let Some(refused) = ctx.refused_without_csrf(&fields) {
        return refused;
    }
    let form = RoleForm::from_fields(&fields);
    let reply = ctx
        .call(Method::POST, "/v1/roleDefinitions", Some(&form.body()))
        .await;
    if reply.ok() {
        return see_other(&format!("/console/roles/{}", text(&reply.body["id"])));
    }
    // Each field error next to its field; anything else above the form.
    let mut errors: HashMap<&'static str, String> = HashMap::new();
    let mut rest = Vec::new();
    for (pointer, detail) in reply.field_errors() {
        let key = if pointer.starts_with("/displayName") {
            "displayName"
        } else if pointer.contains("/excludedResourceActions") {
            "excluded"
        } else if pointer.contains("/allowedResourceActions") {
            "perm"
        } else if pointer.contains("/condition") {
            "condition"
        } else {
            rest.push(format!("{pointer}: {detail}"));
            continue;
        };
        errors
            .entry(key)
            .and_modify(|e| {
                e.push_str("; ");
                e.push_str(&detail);
            })
            .or_insert(detail);
    }
    let mut top = error_box(&reply.detail());
    for r in rest {
        top.push_str(&error_box(&r));
    }
    role_form(&ctx, &form, &errors, &top)
}

pub(super) async fn validate(
    State(app): State<AppState>,
    Extension(console): Extension<Console>,
    headers: HeaderMap,
    Query(q): Params,
) -> Response {
    if ctx(&console, &app, &headers).await.is_err() {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"ok": false, "message": "sign in"})),
        )
            .into_response();
    }
    let value = q.get("value").map_or("", String::as_str);
    let message = match param(&q, "kind") {
        "patterns" => pattern_errors(value),
        "condition" if value.trim().is_empty() => None,
        "condition" => Condition::parse(value.trim()).err().map(|e| e.to_string()),
        _ => Some("unknown kind".to_owned()),
    };
    axum::Json(json!({"ok": message.is_none(), "message": message.unwrap_or_default()}))
        .into_response()
}

// ---------------------------------------------------------------- assignments

#[derive(Default)]
struct AssignForm {
    role: String,
    principal: String,
    principal_type: String,
    scope: String,
    start: String,
    end: String,
}

pub(super) async fn assignments(
    State(app): State<AppState>,
    Extension(console): Extension<Console>,
    headers: HeaderMap,
    Query(q): Params,
) -> Response {
    let ctx = match ctx(&console, &app, &headers).await {
        Ok(ctx) => ctx,
        Err(redirect) => return redirect,
    };
    let form = AssignForm {
        role: param(&q, "role").to_owned(),
        scope: "/".to_owned(),
        ..AssignForm::default()
    };
    render_assignments(&ctx, &form, &HashMap::new(), "").await
}

async fn render_assignments(
    ctx: &Ctx,
    form: &AssignForm,
    errors: &HashMap<&'static str, String>,
    top: &str,
) -> Response {
    let err = |k: &str| errors.get(k).map_or("", String::as_str);
    let mut body = String::from(top);
    let roles = ctx.get("/v1/roleDefinitions?limit=1000").await;
    if ctx.holds(MANAGE_ASSIGNMENTS, &Scope::root()) {
        let _ = write!(
            body,
            "<section aria-labelledby=\"add-h\" class=\"admin-action\"><h2 id=\"add-h\">Add an assignment</h2>\
             <form method=\"post\" action=\"/console/assignments\" id=\"assign-form\">{}",
            ctx.csrf()
        );
        if roles.ok() {
            body.push_str(
                "<div class=\"field\"><label for=\"f-role\">Role</label><select id=\"f-role\" name=\"role\" aria-describedby=\"err-role\">",
            );
            for r in roles.items() {
                let id = text(&r["id"]);
                let sel = if id == form.role { " selected" } else { "" };
                let _ = write!(
                    body,
                    "<option value=\"{}\"{sel}>{}</option>",
                    esc(&id),
                    esc(&text(&r["displayName"]))
                );
            }
            let _ = write!(
                body,
                "</select><span class=\"field-error\" id=\"err-role\" aria-live=\"polite\">{}</span></div>",
                esc(err("role"))
            );
        } else {
            body.push_str(&text_input(
                "role",
                "Role id",
                &form.role,
                err("role"),
                "required",
            ));
        }
        body.push_str(&text_input(
            "principal",
            "Principal (object id or alias)",
            &form.principal,
            err("principal"),
            "required autocomplete=\"off\"",
        ));
        let t = |k: &str| {
            if form.principal_type == k {
                " selected"
            } else {
                ""
            }
        };
        let _ = write!(
            body,
            "<div class=\"field\"><label for=\"f-principalType\">Principal type (taken from the directory when it knows the principal)</label>\
             <select id=\"f-principalType\" name=\"principalType\"><option value=\"user\"{}>User</option>\
             <option value=\"servicePrincipal\"{}>Service principal</option><option value=\"group\"{}>Group</option></select></div>",
            t("user"),
            t("servicePrincipal"),
            t("group")
        );
        body.push_str(&text_input(
            "scope",
            "Scope (e.g. / or /applications/{id})",
            &form.scope,
            err("scope"),
            "required",
        ));
        body.push_str(&text_input(
            "start",
            "Starts (UTC, optional)",
            &form.start,
            err("start"),
            "type=\"datetime-local\"",
        ));
        body.push_str(&text_input(
            "end",
            "Ends (UTC, optional)",
            &form.end,
            err("end"),
            "type=\"datetime-local\"",
        ));
        body.push_str(
            "<p><button type=\"submit\" id=\"assign-submit\">Assign</button></p></form></section>",
        );
    }
    body.push_str("<h2>Assignments</h2>");
    let mut uri = "/v1/roleAssignments?limit=1000".to_owned();
    if Uuid::parse_str(&form.role).is_ok() {
        let _ = write!(uri, "&roleDefinitionId={}", form.role);
    }
    let list = ctx.get(&uri).await;
    body.push_str(&assignment_table(ctx, &list, "/console/assignments"));
    ctx.page("Assignments", "/console/assignments", &body)
}

/// A principal named by object id, else looked up by alias: (id, type) or the error.
async fn resolve_principal(ctx: &Ctx, raw: &str) -> Result<(String, Option<String>), String> {
    if raw.is_empty() {
        return Err("name a principal by object id or alias".to_owned());
    }
    if let Ok(id) = Uuid::parse_str(raw) {
        return Ok((id.to_string(), None));
    }
    let reply = ctx
        .get(&format!("/v1/principals?alias={}&limit=2", enc(raw)))
        .await;
    if !reply.ok() {
        return Err(format!("cannot look up `{raw}`: {}", reply.detail()));
    }
    match reply.items() {
        [one] => Ok((text(&one["id"]), Some(text(&one["type"])))),
        [] => Err(format!("no principal has the alias `{raw}`")),
        _ => Err(format!("more than one principal has the alias `{raw}`")),
    }
}

/// `2026-11-30T21:00` (a datetime-local value, taken as UTC) → RFC 3339.
fn utc(raw: &str) -> Option<String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return None;
    }
    Some(match raw.len() {
        16 => format!("{raw}:00Z"),
        19 => format!("{raw}Z"),
        _ => raw.to_owned(),
    })
}

pub(super) async fn assignment_create(
    State(app): State<AppState>,
    Extension(console): Extension<Console>,
    headers: HeaderMap,
    Form(fields): Form<Fields>,
) -> Response {
    let ctx = match ctx(&console, &app, &headers).await {
        Ok(ctx) => ctx,
        Err(redirect) => return redirect,
    };
    if let Some(refused) = ctx.refused_without_csrf(&fields) {
        return refused;
    }
    let form = AssignForm {
        role: field(&fields, "role").trim().to_owned(),
        principal: field(&fields, "principal").trim().to_owned(),
        principal_type: field(&fields, "principalType").trim().to_owned(),
        scope: field(&fields, "scope").trim().to_owned(),
        start: field(&fields, "start").trim().to_owned(),
        end: field(&fields, "end").trim().to_owned(),
    };
    let mut errors = HashMap::new();
    let (principal, kind) = match resolve_principal(&ctx, &form.principal).await {
        Ok((id, kind)) => (id, kind.unwrap_or_else(|| form.principal_type.clone())),
        Err(message) => {
            errors.insert("principal", message);
            return render_assignments(&ctx, &form, &errors, "").await;
        }
    };
    let mut body = json!({
        "principalId": principal,
        "principalType": kind,
        "roleDefinitionId": form.role,
        "directoryScopeId": form.scope,
    });
    if let Some(start) = utc(&form.start) {
        body["startDateTime"] = json!(start);
    }
    if let Some(end) = utc(&form.end) {
        body["endDateTime"] = json!(end);
    }
    let reply = ctx
        .call(Method::POST, "/v1/roleAssignments", Some(&body))
        .await;
    if reply.ok() {
        return see_other(&format!(
            "/console/roles/{}#assignments",
            text(&reply.body["roleDefinitionId"])
        ));
    }
    let mut top = error_box(&reply.detail());
    for (pointer, detail) in reply.field_errors() {
        let key = match pointer.as_str() {
            "/roleDefinitionId" => "role",
            "/principalId" | "/principalType" => "principal",
            "/directoryScopeId" => "scope",
            "/startDateTime" => "start",
            "/endDateTime" => "end",
            _ => {
                top.push_str(&error_box(&format!("{pointer}: {detail}")));
                continue;
            }
        };
        errors.insert(key, detail);
    }
    if reply.status == StatusCode::FORBIDDEN {
        errors.insert("scope", reply.detail());
    }
    render_assignments(&ctx, &form, &errors, &top).await
}

pub(super) async fn assignment_delete(
    State(app): State<AppState>,
    Extension(console): Extension<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(fields): Form<Fields>,
) -> Response {
    let ctx = match ctx(&console, &app, &headers).await {
        Ok(ctx) => ctx,
        Err(redirect) => return redirect,
    };
    if let Some(refused) = ctx.refused_without_csrf(&fields) {
        return refused;
    }
    let Ok(id) = Uuid::parse_str(&id) else {
        return not_uuid(&ctx, "role assignment", &id);
    };
    let reply = ctx
        .call(Method::DELETE, &format!("/v1/roleAssignments/{id}"), None)
        .await;
    if !reply.ok() {
        return ctx.page_with(
            reply.status,
            "Not removed",
            "/console/assignments",
            &api_error(&reply),
        );
    }
    let back = field(&fields, "back");
    // Only back to a console page: never an open redirect.
    let back = if back.starts_with("/console/") && !back.contains("//") {
        back
    } else {
        "/console/assignments"
    };
    see_other(back)
}

// ---------------------------------------------------------------- directory

async fn listing(
    ctx: &Ctx,
    title: &str,
    active: &str,
    uri: &str,
    columns: &[(&str, &str)],
    link: Option<&str>,
    top: &str,
) -> Response {
    let reply = ctx.get(uri).await;
    let mut body = String::from(top);
    if !reply.ok() {
        body.push_str(&api_error(&reply));
        return ctx.page(title, active, &body);
    }
    let _ = write!(body, "<table><caption>{}</caption><thead><tr>", esc(title));
    for (_, label) in columns {
        let _ = write!(body, "<th scope=\"col\">{label}</th>");
    }
    body.push_str("</tr></thead><tbody>");
    for item in reply.items() {
        body.push_str("<tr>");
        for (i, (key, _)) in columns.iter().enumerate() {
            let value = match &item[*key] {
                Value::Array(values) => values.iter().map(text).collect::<Vec<_>>().join(", "),
                other => text(other),
            };
            match link {
                Some(base) if i == 0 => {
                    let _ = write!(
                        body,
                        "<td><a href=\"{base}/{}\">{}</a></td>",
                        esc(&text(&item["id"])),
                        esc(&value)
                    );
                }
                _ => {
                    let _ = write!(body, "<td>{}</td>", esc(&value));
                }
            }
        }
        body.push_str("</tr>");
    }
    body.push_str("</tbody></table>");
    if reply.body["nextLink"].is_string() {
        body.push_str("<p class=\"hint\">Showing the first 1000.</p>");
    }
    ctx.page(title, active, &body)
}

pub(super) async fn groups(
    State(app): State<AppState>,
    Extension(console): Extension<Console>,
    headers: HeaderMap,
) -> Response {
    let ctx = match ctx(&console, &app, &headers).await {
        Ok(ctx) => ctx,
        Err(redirect) => return redirect,
    };
    let columns = [
        ("displayName", "Name"),
        ("id", "Id"),
        ("description", "Description"),
    ];
    listing(
        &ctx,
        "Groups",
        "/console/groups",
        "/v1/groups?limit=1000",
        &columns,
        Some("/console/groups"),
        "",
    )
    .await
}

pub(super) async fn units(
    State(app): State<AppState>,
    Extension(console): Extension<Console>,
    headers: HeaderMap,
) -> Response {
    let ctx = match ctx(&console, &app, &headers).await {
        Ok(ctx) => ctx,
        Err(redirect) => return redirect,
    };
    let columns = [
        ("displayName", "Name"),
        ("id", "Id"),
        ("description", "Description"),
    ];
    listing(
        &ctx,
        "Administrative units",
        "/console/units",
        "/v1/administrativeUnits?limit=1000",
        &columns,
        Some("/console/units"),
        "",
    )
    .await
}

/// Who may change a group's or unit's members, asked of the decision layer (the API
/// decides again when the form is sent).
fn may_change_members(ctx: &Ctx, collection: &str, id: Uuid) -> bool {
    let scope = crate::api::authz::object_scope(collection, id);
    let action = if collection == "groups" {
        crate::api::authz::UPDATE_GROUP_MEMBERS
    } else {
        crate::api::authz::MANAGE_UNITS
    };
    ctx.holds(action, &scope)
}

async fn members(ctx: &Ctx, collection: &str, id: &str, active: &str, top: &str) -> Response {
    let Ok(id) = Uuid::parse_str(id) else {
        return not_uuid(ctx, "directory object", id);
    };
    let one = ctx.get(&format!("/v1/{collection}/{id}")).await;
    if !one.ok() {
        return ctx.page_with(one.status, "Not found", active, &api_error(&one));
    }
    let name = text(&one.body["displayName"]);
    let editable = may_change_members(ctx, collection, id);
    let mut body = format!(
        "{top}<p>{}</p><p class=\"meta\">id <code>{id}</code></p>",
        esc(&text(&one.body["description"]))
    );
    if editable {
        let _ = write!(
            body,
            "<section class=\"admin-action\" aria-labelledby=\"add-m\"><h2 id=\"add-m\">Add a member</h2>\
             <form method=\"post\" action=\"{active}/{id}/members\">{}",
            ctx.csrf()
        );
        if collection == "groups" {
            body.push_str(&text_input(
                "member",
                "Member (object id or alias)",
                "",
                "",
                "required autocomplete=\"off\"",
            ));
            body.push_str(
                "<div class=\"field\"><label for=\"f-memberType\">Type (taken from the directory when it knows the member)</label>\
                 <select id=\"f-memberType\" name=\"memberType\"><option value=\"user\">User</option>\
                 <option value=\"servicePrincipal\">Service principal</option><option value=\"group\">Group</option></select></div>",
            );
        } else {
            body.push_str(&text_input(
                "resource",
                "Resource path (e.g. /applications/{id})",
                "",
                "",
                "required",
            ));
        }
        body.push_str("<p><button type=\"submit\">Add</button></p></form></section>");
    }
    body.push_str("<h2>Members</h2>");
    let reply = ctx
        .get(&format!("/v1/{collection}/{id}/members?limit=1000"))
        .await;
    if !reply.ok() {
        body.push_str(&api_error(&reply));
    } else if reply.items().is_empty() {
        body.push_str("<p>No members.</p>");
    } else {
        body.push_str("<ul class=\"members\">");
        for m in reply.items() {
            let (key, label) = if collection == "groups" {
                let member = text(&m["id"]);
                let label = format!("{member} · {}", text(&m["type"]));
                (member, label)
            } else {
                let resource = text(&m["resource"]);
                (resource.clone(), resource)
            };
            let _ = write!(body, "<li><code>{}</code>", esc(&label));
            if editable {
                let _ = write!(
                    body,
                    " <form class=\"inline\" method=\"post\" action=\"{active}/{id}/members/remove\">{}\
                     <input type=\"hidden\" name=\"member\" value=\"{}\">\
                     <button type=\"submit\" class=\"danger admin-action\" aria-label=\"Remove {}\">Remove</button></form>",
                    ctx.csrf(),
                    esc(&key),
                    esc(&key)
                );
            }
            body.push_str("</li>");
        }
        body.push_str("</ul>");
    }
    ctx.page(&name, active, &body)
}

/// Adds or removes one member through the API, then shows the page again (with the API's
/// refusal, if any, above it).
async fn change_member(
    ctx: &Ctx,
    collection: &str,
    id: &str,
    active: &str,
    fields: &Fields,
    add: bool,
) -> Response {
    if let Some(refused) = ctx.refused_without_csrf(fields) {
        return refused;
    }
    let Ok(uuid) = Uuid::parse_str(id) else {
        return not_uuid(ctx, "directory object", id);
    };
    let reply = if add && collection == "groups" {
        let raw = field(fields, "member").trim();
        match resolve_principal(ctx, raw).await {
            Ok((member, kind)) => {
                let kind = kind.unwrap_or_else(|| field(fields, "memberType").to_owned());
                let body = json!({"id": member, "type": kind});
                ctx.call(
                    Method::POST,
                    &format!("/v1/groups/{uuid}/members"),
                    Some(&body),
                )
                .await
            }
            Err(message) => {
                let top = error_box(&message);
                return members(ctx, collection, id, active, &top).await;
            }
        }
    } else if add {
        let body = json!({"resource": field(fields, "resource").trim()});
        ctx.call(
            Method::POST,
            &format!("/v1/administrativeUnits/{uuid}/members"),
            Some(&body),
        )
        .await
    } else {
        let member = field(fields, "member");
        ctx.call(
            Method::DELETE,
            &format!("/v1/{collection}/{uuid}/members/{}", enc(member)),
            None,
        )
        .await
    };
    if reply.ok() {
        return see_other(&format!("{active}/{uuid}"));
    }
    members(ctx, collection, id, active, &api_error(&reply)).await
}

pub(super) async fn group_member_add(
    State(app): State<AppState>,
    Extension(console): Extension<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(fields): Form<Fields>,
) -> Response {
    match ctx(&console, &app, &headers).await {
        Ok(ctx) => change_member(&ctx, "groups", &id, "/console/groups", &fields, true).await,
        Err(redirect) => redirect,
    }
}

pub(super) async fn group_member_remove(
    State(app): State<AppState>,
    Extension(console): Extension<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(fields): Form<Fields>,
) -> Response {
    match ctx(&console, &app, &headers).await {
        Ok(ctx) => change_member(&ctx, "groups", &id, "/console/groups", &fields, false).await,
        Err(redirect) => redirect,
    }
}

pub(super) async fn unit_member_add(
    State(app): State<AppState>,
    Extension(console): Extension<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(fields): Form<Fields>,
) -> Response {
    match ctx(&console, &app, &headers).await {
        Ok(ctx) => {
            change_member(
                &ctx,
                "administrativeUnits",
                &id,
                "/console/units",
                &fields,
                true,
            )
            .await
        }
        Err(redirect) => redirect,
    }
}

pub(super) async fn unit_member_remove(
    State(app): State<AppState>,
    Extension(console): Extension<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(fields): Form<Fields>,
) -> Response {
    match ctx(&console, &app, &headers).await {
        Ok(ctx) => {
            change_member(
                &ctx,
                "administrativeUnits",
                &id,
                "/console/units",
                &fields,
                false,
            )
            .await
        }
        Err(redirect) => redirect,
    }
}

pub(super) async fn group_detail(
    State(app): State<AppState>,
    Extension(console): Extension<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    match ctx(&console, &app, &headers).await {
        Ok(ctx) => members(&ctx, "groups", &id, "/console/groups", "").await,
        Err(redirect) => redirect,
    }
}

pub(super) async fn unit_detail(
    State(app): State<AppState>,
    Extension(console): Extension<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    match ctx(&console, &app, &headers).await {
        Ok(ctx) => members(&ctx, "administrativeUnits", &id, "/console/units", "").await,
        Err(redirect) => redirect,
    }
}

pub(super) async fn principals(
    State(app): State<AppState>,
    Extension(console): Extension<Console>,
    headers: HeaderMap,
    Query(q): Params,
) -> Response {
    let ctx = match ctx(&console, &app, &headers).await {
        Ok(ctx) => ctx,
        Err(redirect) => return redirect,
    };
    let alias = param(&q, "alias");
    let top = format!(
        "<form class=\"filters\" method=\"get\" action=\"/console/principals\" role=\"search\">\
         <div class=\"field\"><label for=\"f-alias\">Alias</label><input id=\"f-alias\" name=\"alias\" value=\"{}\"></div>\
         <button type=\"submit\">Find</button></form>",
        esc(alias)
    );
    let mut uri = "/v1/principals?limit=1000".to_owned();
    if !alias.is_empty() {
        let _ = write!(uri, "&alias={}", enc(alias));
    }
    let columns = [
        ("displayName", "Name"),
        ("type", "Type"),
        ("id", "Object id"),
        ("aliases", "Aliases"),
    ];
    listing(
        &ctx,
        "Principals",
        "/console/principals",
        &uri,
        &columns,
        None,
        &top,
    )
    .await
}

// ---------------------------------------------------------------- decisions

pub(super) async fn check(
    State(app): State<AppState>,
    Extension(console): Extension<Console>,
    headers: HeaderMap,
    Query(q): Params,
) -> Response {
    let ctx = match ctx(&console, &app, &headers).await {
        Ok(ctx) => ctx,
        Err(redirect) => return redirect,
    };
    let (subject, action, resource) = (
        param(&q, "subject"),
        param(&q, "action"),
        param(&q, "resource"),
    );
    let mut errors: HashMap<&str, String> = HashMap::new();
    let mut result = String::new();
    if !(subject.is_empty() && action.is_empty() && resource.is_empty()) {
        match resolve_principal(&ctx, subject).await {
            Err(message) => {
                errors.insert("subject", message);
            }
            Ok((id, _)) => {
                let body = json!({
                    "subject": {"principalId": id},
                    "action": action,
                    "resource": resource,
                    "explain": true,
                });
                let reply = ctx.call(Method::POST, "/v1/check", Some(&body)).await;
                if reply.ok() {
                    result = decision(&reply.body);
                } else {
                    for (pointer, detail) in reply.field_errors() {
                        let key = if pointer.starts_with("/action") {
                            "action"
                        } else if pointer.starts_with("/resource") {
                            "resource"
                        } else {
                            "subject"
                        };
                        errors.insert(key, detail);
                    }
                    if errors.is_empty() {
                        result = api_error(&reply);
                    }
                }
            }
        }
    }
    let err = |k: &str| errors.get(k).map_or("", String::as_str);
    let mut body = String::from(
        "<form method=\"get\" action=\"/console/check\" class=\"filters\" id=\"check-form\">",
    );
    body.push_str(&text_input(
        "subject",
        "Subject (object id or alias)",
        subject,
        err("subject"),
        "required",
    ));
    body.push_str(&text_input(
        "action",
        "Action",
        action,
        err("action"),
        "required",
    ));
    body.push_str(&text_input(
        "resource",
        "Resource",
        resource,
        err("resource"),
        "required",
    ));
    body.push_str("<button type=\"submit\" id=\"check-submit\">Check</button></form>");
    body.push_str(&result);
    ctx.page("Check access", "/console/check", &body)
}

/// The decision and its explanation, each grant drawn as assignment → role → pattern →
/// scope (via groups).
fn decision(answer: &Value) -> String {
    let allowed = answer["allowed"] == json!(true);
    let mut out = format!(
        "<section aria-labelledby=\"decision\" class=\"decision {}\"><h2 id=\"decision\">{}</h2>",
        if allowed { "allow" } else { "deny" },
        if allowed { "Allowed" } else { "Denied" }
    );
    for reason in answer["reasons"].as_array().map_or(&[][..], Vec::as_slice) {
        let kind = text(&reason["kind"]);
        let via = strings(&reason["via"]);
        let via = if via.is_empty() {
            String::new()
        } else {
            format!(
                "<li class=\"via\">via groups <code>{}</code></li>",
                esc(&via.join(", "))
            )
        };
        match kind.as_str() {
            "grant" | "notGranted" => {
                let mut assignment = match reason["assignmentId"].as_str() {
                    Some(id) => format!("assignment <code>{}</code>", esc(id)),
                    None => "token's wids claim".to_owned(),
                };
                if let Some(request) = reason["activationRequestId"].as_str() {
                    let _ = write!(
                        assignment,
                        ", activated by request <code>{}</code>",
                        esc(request)
                    );
                }
                if let Some(end) = reason["endDateTime"].as_str() {
                    let _ = write!(assignment, ", until <time>{}</time>", esc(end));
                }
                let pattern = match reason["matchedPattern"].as_str() {
                    Some(p) => format!("<li>pattern <code>{}</code></li>", esc(p)),
                    None => format!(
                        "<li>not granted: <code>{}</code></li>",
                        esc(&text(&reason["why"]["code"]))
                    ),
                };
                let _ = write!(
                    out,
                    "<ol class=\"chain {kind}\" aria-label=\"{}\"><li>{assignment}</li>{via}\
                     <li>role <a href=\"/console/roles/{}\">{}</a></li>{pattern}\
                     <li>scope <code>{}</code></li></ol>",
                    if kind == "grant" {
                        "grant"
                    } else {
                        "not granted"
                    },
                    esc(&text(&reason["roleDefinitionId"])),
                    esc(&text(&reason["roleDisplayName"])),
                    esc(&text(&reason["scope"]))
                );
            }
            "deny" => {
                let _ = write!(
                    out,
                    "<ol class=\"chain deny\" aria-label=\"deny\"><li>deny assignment {} (<code>{}</code>)</li>{via}\
                     <li>pattern <code>{}</code></li><li>scope <code>{}</code></li></ol>",
                    esc(&text(&reason["displayName"])),
                    esc(&text(&reason["denyAssignmentId"])),
                    esc(&text(&reason["matchedPattern"])),
                    esc(&text(&reason["scope"]))
                );
            }
            "noAssignments" => out.push_str("<p>No role assignment reaches the subject.</p>"),
            other => {
                let _ = write!(
                    out,
                    "<p><code>{}</code>: <code>{}</code></p>",
                    esc(other),
                    esc(&reason.to_string())
                );
            }
        }
    }
    out.push_str("</section>");
    out
}

pub(super) async fn who_can(
    State(app): State<AppState>,
    Extension(console): Extension<Console>,
    headers: HeaderMap,
    Query(q): Params,
) -> Response {
    let ctx = match ctx(&console, &app, &headers).await {
        Ok(ctx) => ctx,
        Err(redirect) => return redirect,
    };
    let (action, resource) = (param(&q, "action"), param(&q, "resource"));
    let mut top =
        String::from("<form method=\"get\" action=\"/console/who-can\" class=\"filters\">");
    top.push_str(&text_input("action", "Action", action, "", "required"));
    top.push_str(&text_input(
        "resource", "Resource", resource, "", "required",
    ));
    top.push_str("<button type=\"submit\">Find</button></form>");
    if action.is_empty() || resource.is_empty() {
        return ctx.page("Who can", "/console/who-can", &top);
    }
    let uri = format!(
        "/v1/access?action={}&resource={}&limit=1000",
        enc(action),
        enc(resource)
    );
    let columns = [
        ("principalId", "Principal"),
        ("principalType", "Type"),
        ("roleDisplayName", "Role"),
        ("matchedPattern", "Pattern"),
        ("scope", "Scope"),
        ("via", "Via groups"),
    ];
    listing(
        &ctx,
        "Who can",
        "/console/who-can",
        &uri,
        &columns,
        None,
        &top,
    )
    .await
}

pub(super) async fn changes(
    State(app): State<AppState>,
    Extension(console): Extension<Console>,
    headers: HeaderMap,
    Query(q): Params,
) -> Response {
    let ctx = match ctx(&console, &app, &headers).await {
        Ok(ctx) => ctx,
        Err(redirect) => return redirect,
    };
    let mut top =
        String::from("<form method=\"get\" action=\"/console/changes\" class=\"filters\">");
    let mut uri = "/v1/changes?limit=200".to_owned();
    for (name, label, api) in [
        ("actor", "Actor", "actor"),
        ("entityType", "Entity type", "entityType"),
        ("from", "From (RFC 3339)", "from"),
        ("until", "Until (RFC 3339)", "until"),
    ] {
        let value = param(&q, name);
        top.push_str(&text_input(name, label, value, "", ""));
        if !value.is_empty() {
            let _ = write!(uri, "&{api}={}", enc(value));
        }
    }
    top.push_str("<button type=\"submit\">Filter</button></form>");
    let columns = [
        ("revision", "Revision"),
        ("at", "At"),
        ("actor", "Actor"),
        ("entityType", "Entity"),
        ("entityId", "Id"),
        ("op", "Change"),
    ];
    listing(
        &ctx,
        "Change log",
        "/console/changes",
        &uri,
        &columns,
        None,
        &top,
    )
    .await
}
