//! Response shapes shared by every admin route: one object with its ETag, a write with its
//! revision, and the Graph-style list envelope.

use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use super::extract::etag;
use crate::model::Revision;
use crate::store::{Page, Stored, Written};

/// The response header carrying the revision a write committed at.
pub static REVISION_HEADER: HeaderName = HeaderName::from_static("rolecall-revision");

/// An object plus the `revision` field every write response carries.
#[derive(Serialize)]
struct WithRevision<'a, T> {
    #[serde(flatten)]
    value: &'a T,
    revision: Revision,
}

fn headers(etag_of: Option<Revision>, revision: Option<Revision>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Some(r) = etag_of {
        if let Ok(v) = HeaderValue::from_str(&etag(r)) {
            headers.insert(header::ETAG, v);
        }
    }
    if let Some(r) = revision {
        if let Ok(v) = HeaderValue::from_str(&r.to_string()) {
            headers.insert(REVISION_HEADER.clone(), v);
        }
    }
    headers
}

/// `GET` of one object: 200, body = the object, `ETag` = its last write's revision.
pub struct One<T>(pub Stored<T>);

impl<T: Serialize> IntoResponse for One<T> {
    fn into_response(self) -> Response {
        (headers(Some(self.0.revision), None), Json(self.0.value)).into_response()
    }
}

/// A create: 201 (200 when an idempotent create found the object), `Location`, `ETag`,
/// `Rolecall-Revision`, and the object with its `revision`.
pub struct Created<T> {
    /// What the store wrote.
    pub written: Written<T>,
    /// The new object's URL path.
    pub location: String,
}

impl<T: Serialize> IntoResponse for Created<T> {
    fn into_response(self) -> Response {
        let revision = self.written.revision;
        let status = if self.written.created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        let mut headers = headers(Some(revision), Some(revision));
        if let Ok(v) = HeaderValue::from_str(&self.location) {
            headers.insert(header::LOCATION, v);
        }
        let body = WithRevision {
            value: &self.written.value,
            revision,
        };
        (status, headers, Json(body)).into_response()
    }
}

/// An update: 200, `ETag`, `Rolecall-Revision`, and the object with its `revision`.
pub struct Updated<T>(pub Written<T>);

impl<T: Serialize> IntoResponse for Updated<T> {
    fn into_response(self) -> Response {
        let revision = self.0.revision;
        let body = WithRevision {
            value: &self.0.value,
            revision,
        };
        (headers(Some(revision), Some(revision)), Json(body)).into_response()
    }
}

/// A delete: 200 with `{"revision": "..."}` and `Rolecall-Revision`.
pub struct Deleted(pub Revision);

impl<T> From<Written<T>> for Deleted {
    fn from(written: Written<T>) -> Self {
        Deleted(written.revision)
    }
}

impl IntoResponse for Deleted {
    fn into_response(self) -> Response {
        #[derive(Serialize)]
        struct Body {
            revision: Revision,
        }
        (headers(None, Some(self.0)), Json(Body { revision: self.0 })).into_response()
    }
}

/// `{"value": [...], "nextLink": "/v1/...?cursor=..."}`; `nextLink` is null on the last page.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct List<T> {
    /// This page's items.
    pub value: Vec<T>,
    /// The same request for the next page (relative URL), or null.
    pub next_link: Option<String>,
}

impl<T> List<T> {
    /// Builds the envelope; `nextLink` repeats the request's path and query with the cursor replaced.
    pub fn new<S>(uri: &Uri, page: Page<S>, map: impl FnMut(S) -> T) -> Self {
        let next_link = page.next.map(|cursor| next_link(uri, &cursor));
        List {
            value: page.items.into_iter().map(map).collect(),
            next_link,
        }
    }

    /// A page of stored objects, without their revisions.
    pub fn of_stored(uri: &Uri, page: Page<Stored<T>>) -> Self {
        Self::new(uri, page, |s| s.value)
    }
}

impl<T: Serialize> IntoResponse for List<T> {
    fn into_response(self) -> Response {
        Json(self).into_response()
    }
}

/// The request's path and query with `cursor` set to `cursor`.
pub fn next_link(uri: &Uri, cursor: &str) -> String {
    let mut pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(uri.query().unwrap_or("")).unwrap_or_default();
    pairs.retain(|(k, _)| k != "cursor");
    pairs.push(("cursor".to_owned(), cursor.to_owned()));
    let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
    format!("{}?{}", uri.path(), query)
}
