//! `openapi.yaml` as a test oracle: checks a response body against the schema the contract
//! documents for that operation and status.
//!
//! The spec is parsed once. Each response schema is compiled once (JSON Schema 2020-12,
//! formats checked) into a validator shared by every test in the binary, so checking a body
//! costs one validation, not one compilation.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use jsonschema::{Draft, Validator};
use serde_json::{json, Value};

/// The contract, compiled into the test binary so a change to it rebuilds the tests.
const OPENAPI_YAML: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml"));

/// The media types whose bodies are JSON, in the order they are looked for.
const JSON_MEDIA_TYPES: [&str; 2] = ["application/json", "application/problem+json"];

/// The parsed spec. Panics (once, clearly) when `openapi.yaml` is not YAML.
pub fn spec() -> &'static Value {
    static SPEC: OnceLock<Value> = OnceLock::new();
    SPEC.get_or_init(|| {
        serde_yaml::from_str(OPENAPI_YAML)
            .unwrap_or_else(|e| panic!("openapi.yaml does not parse: {e}"))
    })
}

/// Follows `$ref`s (local ones, `#/...`) until `value` is not a reference.
pub fn resolve(mut value: &Value) -> Result<&Value, String> {
    // A chain longer than this is a cycle.
    for _ in 0..16 {
        let Some(reference) = value.get("$ref").and_then(Value::as_str) else {
            return Ok(value);
        };
        let pointer = reference
            .strip_prefix('#')
            .ok_or_else(|| format!("`{reference}` is not a local reference"))?;
        value = spec()
            .pointer(pointer)
            .ok_or_else(|| format!("`{reference}` resolves to nothing"))?;
    }
    Err("a `$ref` chain is too long (a cycle?)".to_owned())
}

/// Compiles a schema taken from the spec, so its `#/components/...` references resolve.
///
/// The schema is wrapped in a root document that also carries the spec's `components`:
/// references are resolved against the root, and unknown keywords (`components`) are
/// ignored by JSON Schema.
pub fn compile_schema(schema: &Value) -> Result<Validator, String> {
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "allOf": [schema],
        "components": spec()["components"],
    });
    jsonschema::options()
        .with_draft(Draft::Draft202012)
        .should_validate_formats(true)
        .build(&root)
        .map_err(|e| format!("the schema does not compile: {e}\nschema: {schema:#}"))
}

/// The response object documented for `status` (exact code, then `4XX`-style range, then
/// `default`), with `$ref`s resolved.
pub fn response_object(
    method: &str,
    path_template: &str,
    status: u16,
) -> Result<&'static Value, String> {
    let method = method.to_ascii_lowercase();
    let operation = spec()["paths"]
        .get(path_template)
        .ok_or_else(|| format!("openapi.yaml has no path `{path_template}`"))?
        .get(&method)
        .ok_or_else(|| {
            format!(
                "openapi.yaml has no `{} {path_template}` operation",
                method.to_ascii_uppercase()
            )
        })?;
    let responses = &operation["responses"];
    let exact = status.to_string();
    let range = format!("{}XX", status / 100);
    let response = [exact.as_str(), range.as_str(), "default"]
        .iter()
        .find_map(|key| responses.get(*key))
        .ok_or_else(|| {
            let documented: Vec<&str> = responses
                .as_object()
                .map(|r| r.keys().map(String::as_str).collect())
                .unwrap_or_default();
            format!(
                "`{} {path_template}` documents no {status} response (it documents {})",
                method.to_ascii_uppercase(),
                documented.join(", ")
            )
        })?;
    resolve(response)
}

/// The validator for the JSON body of one documented response, compiled on first use.
pub fn validator_for(
    method: &str,
    path_template: &str,
    status: u16,
) -> Result<Arc<Validator>, String> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<Validator>>>> = OnceLock::new();
    let key = format!("{} {path_template} {status}", method.to_ascii_uppercase());
    let cache = CACHE.get_or_init(Default::default);
    if let Some(validator) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return Ok(Arc::clone(validator));
    }
    let response = response_object(method, path_template, status)?;
    let schema = JSON_MEDIA_TYPES
        .iter()
        .find_map(|media| response.get("content")?.get(*media)?.get("schema"))
        .ok_or_else(|| {
            format!("`{key}` documents no JSON body (application/json or application/problem+json)")
        })?;
    let validator = Arc::new(compile_schema(schema).map_err(|e| format!("`{key}`: {e}"))?);
    cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key, Arc::clone(&validator));
    Ok(validator)
}

/// Checks `body` against the documented response; the error lists every violation.
pub fn check_response(
    method: &str,
    path_template: &str,
    status: u16,
    body: &Value,
) -> Result<(), String> {
    let validator = validator_for(method, path_template, status)?;
    let errors: Vec<String> = validator
        .iter_errors(body)
        .map(|e| {
            let at = e.instance_path.to_string();
            let at = if at.is_empty() {
                "(the body)".to_owned()
            } else {
                at
            };
            format!("  - at {at}: {e} (schema {})", e.schema_path)
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the {status} body of `{} {path_template}` does not match openapi.yaml:\n{}\nbody: {body:#}",
            method.to_ascii_uppercase(),
            errors.join("\n")
        ))
    }
}

/// Panics unless `body` matches the schema openapi.yaml documents for this operation and
/// status, listing every violation and the body.
#[track_caller]
pub fn assert_response_matches(method: &str, path_template: &str, status: u16, body: &Value) {
    if let Err(message) = check_response(method, path_template, status, body) {
        panic!("{message}");
    }
}

/// Asserts the reply's status and that its body matches the spec for this operation.
pub fn expect(reply: &super::app::Reply, status: u16, method: &str, template: &str) {
    assert_eq!(
        reply.status.as_u16(),
        status,
        "{method} {template}: {:#?}",
        reply.body
    );
    assert_response_matches(method, template, status, &reply.body);
}
