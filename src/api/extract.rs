//! Extractors whose rejections are [`ApiError`]s, so every bad input becomes a problem
//! document with a stable type.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{header, request::Parts};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::{ApiError, AppState};
use crate::model::{Revision, TenantId};
use crate::store::PageRequest;

/// The request header naming the tenant an admin-key call acts in.
pub const TENANT_HEADER: &str = "rolecall-tenant";
/// Default page size.
pub const DEFAULT_LIMIT: u32 = 100;
/// Largest page size.
pub const MAX_LIMIT: u32 = 1000;

/// True when the request says its body is JSON (`application/json`, or an
/// `application/*+json` type), parameters such as `charset` aside.
pub fn is_json(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            // Compared in place: no lowercased copy per request.
            let v = v.trim().as_bytes();
            let prefixed = |prefix: &[u8]| {
                v.len() >= prefix.len() && v[..prefix.len()].eq_ignore_ascii_case(prefix)
            };
            let suffixed = |suffix: &[u8]| {
                v.len() >= suffix.len() && v[v.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
            };
            v.eq_ignore_ascii_case(b"application/json")
                || (prefixed(b"application/") && suffixed(b"+json"))
        })
}

/// A JSON body: `application/json` only, unknown fields rejected, each error with the
/// JSON pointer of the offending field.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let JsonBytes(bytes) = JsonBytes::from_request(req, state).await?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// The bytes of a JSON body (media type checked, not yet parsed), for a handler that parses
/// into types borrowing from them with [`parse_json`]: a check's action and resource are
/// read in place instead of copied into strings of their own (issue 16).
pub struct JsonBytes(pub axum::body::Bytes);

impl FromRequest<AppState> for JsonBytes {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &AppState) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(ApiError::UnsupportedMediaType(
                "send the body as `application/json`".to_owned(),
            ));
        }
        super::body::read(req.into_body()).await.map(JsonBytes)
    }
}

/// Parses a JSON body, turning serde's error into a problem that names the field.
///
/// A body that parses is read once by plain serde_json; only a failed one is read again
/// through `serde_path_to_error` to locate the field, whose tracking costs every request
/// otherwise. Both reads run the same `Deserialize`, so they fail alike.
pub fn parse_json<'de, T: Deserialize<'de>>(bytes: &'de [u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    if let Ok(value) = T::deserialize(&mut deserializer) {
        if deserializer.end().is_ok() {
            return Ok(value);
        }
    }
    located(bytes)
}

/// [`parse_json`]'s second read: the error, with the pointer of the field at fault.
fn located<'de, T: Deserialize<'de>>(bytes: &'de [u8]) -> Result<T, ApiError> {
    let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut *deserializer).map_err(|error| {
        let inner = error.inner();
        if inner.is_syntax() || inner.is_eof() {
            return ApiError::MalformedBody(format!("the body is not valid JSON: {inner}"));
        }
        let pointer = pointer_of(error.path());
        ApiError::invalid(pointer, inner.to_string())
    })?;
    // One JSON value and nothing after it but whitespace: `{..}{..}` would otherwise act on
    // the first and silently drop the second.
    deserializer.end().map_err(|error| {
        ApiError::MalformedBody(format!("the body holds more than one JSON value: {error}"))
    })?;
    Ok(value)
}

/// The JSON pointer (RFC 6901) of where deserialization failed.
pub(crate) fn pointer_of(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut pointer = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => pointer.push_str(&format!("/{index}")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                pointer.push('/');
                pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
            }
            Segment::Unknown => {}
        }
    }
    pointer
}

/// The tenant a call acts in: a token caller's own tenant; for the admin key, the
/// `Rolecall-Tenant` header, else the configured default. Extracting it authenticates.
#[derive(Debug, Clone, Copy)]
pub struct Tenant(pub TenantId);

impl FromRequestParts<AppState> for Tenant {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let caller = super::authz::Caller::from_request_parts(parts, state).await?;
        Ok(Tenant(caller.tenant))
    }
}

/// `If-Match`: `None` when absent or `*`. A value that is not one of our ETags can never
/// match, so it becomes an impossible revision and the store answers 412.
#[derive(Debug, Clone, Copy)]
pub struct IfMatch(pub Option<Revision>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(header::IF_MATCH) else {
            return Ok(IfMatch(None));
        };
        let raw = value.to_str().unwrap_or("").trim();
        if raw == "*" {
            return Ok(IfMatch(None));
        }
        let revision = raw
            .strip_prefix('"')
            .and_then(|r| r.strip_suffix('"'))
            .and_then(|r| r.parse::<Revision>().ok())
            .unwrap_or(Revision(-1));
        Ok(IfMatch(Some(revision)))
    }
}

/// The ETag of an object last written at `revision`.
pub fn etag(revision: Revision) -> String {
    format!("\"{revision}\"")
}

/// Validates `limit` (1..=1000, default 100, never silently clamped) and takes `cursor`.
pub fn page_request(limit: Option<&str>, cursor: Option<String>) -> Result<PageRequest, ApiError> {
    let limit = match limit {
        None => DEFAULT_LIMIT,
        Some(raw) => match raw.parse::<u32>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                return Err(ApiError::invalid(
                    "?limit",
                    format!("`limit` is an integer from 1 to {MAX_LIMIT}; got `{raw}`"),
                ))
            }
        },
    };
    Ok(PageRequest { limit, cursor })
}

/// A typed query string; unknown parameters are rejected so a misspelt filter never
/// silently widens a listing.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        serde_urlencoded::from_str(query)
            .map(ApiQuery)
            .map_err(|e| ApiError::invalid("?", format!("bad query string: {e}")))
    }
}

/// A path parameter that must be a uuid.
pub struct IdPath(pub uuid::Uuid);

impl<S: Send + Sync> FromRequestParts<S> for IdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(raw) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|e| ApiError::invalid("id", e.body_text()))?;
        path_uuid("id", &raw).map(IdPath)
    }
}

/// A uuid path segment, hyphenated (`8-4-4-4-12`) or simple (32 hex digits), any case.
/// [`uuid::Uuid::parse_str`] also reads `{braced}` and `urn:uuid:` spellings; in a path they
/// would make a second URL for one object, so they name nothing (404), while a segment that
/// is no uuid at all is a 400 as before.
pub fn path_uuid(name: &str, raw: &str) -> Result<uuid::Uuid, ApiError> {
    match uuid::Uuid::parse_str(raw) {
        Ok(id) if raw.len() == 36 || raw.len() == 32 => Ok(id),
        Ok(_) => Err(ApiError::NotFound(format!(
            "nothing has the id `{raw}`: ids in paths are plain uuids, without braces or `urn:uuid:`"
        ))),
        Err(_) => Err(ApiError::invalid(name, format!("`{raw}` is not a uuid"))),
    }
}

/// Two path parameters: a uuid and a second segment (member id or encoded resource).
pub struct IdAndMember(pub uuid::Uuid, pub String);

impl<S: Send + Sync> FromRequestParts<S> for IdAndMember {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path((raw, member)) =
            axum::extract::Path::<(String, String)>::from_request_parts(parts, state)
                .await
                .map_err(|e| ApiError::invalid("id", e.body_text()))?;
        let id = path_uuid("id", &raw)?;
        Ok(IdAndMember(id, member))
    }
}
