//! `/v1/changes` as the audit log: filters by actor, entity type, entity id and time range,
//! on both stores, kept across pages.

use crate::common::app::{Reply, TestApp};
use crate::common::spec::expect;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Every change a filtered query lists, following `nextLink`.
async fn all(app: &TestApp, query: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut path = format!("/v1/changes?{query}");
    loop {
        let r = app.get(&path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {:?}", r.body);
        expect(&r, 200, "GET", "/v1/changes");
        out.extend(r.body["value"].as_array().unwrap().iter().cloned());
        match r.body["nextLink"].as_str() {
            Some(next) => {
                path = next
                    .find("/v1/changes")
                    .map(|i| next[i..].to_owned())
                    .unwrap();
            }
            None => return out,
        }
    }
}

fn created(r: &Reply) -> String {
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body["id"].as_str().unwrap().to_owned()
}

async fn the_change_log_filters_as_an_audit_log(app: &TestApp) {
    let before = chrono::Utc::now();
    let first = created(
        &app.post("/v1/groups", &json!({"displayName": "First"}))
            .await,
    );
    let role = created(
        &app.post(
            "/v1/roleDefinitions",
            &json!({"displayName": "Audited", "rolePermissions": [{"allowedResourceActions": ["contoso.audit/things/read"]}]}),
        )
        .await,
    );
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let middle = chrono::Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let second = created(
        &app.post("/v1/groups", &json!({"displayName": "Second"}))
            .await,
    );
    let r = app
        .patch(
            &format!("/v1/groups/{first}"),
            &json!({"displayName": "First, renamed"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);

    let groups = all(app, "entityType=group&limit=1").await;
    let ids: Vec<(&str, &str)> = groups
        .iter()
        .map(|c| (c["entityId"].as_str().unwrap(), c["op"].as_str().unwrap()))
        .collect();
    assert_eq!(
        ids,
        [
            (first.as_str(), "create"),
            (second.as_str(), "create"),
            (first.as_str(), "update")
        ]
    );
    let of_first = all(app, &format!("entityId={first}")).await;
    assert_eq!(of_first.len(), 2);
    assert!(of_first.iter().all(|c| c["entityId"] == first.as_str()));
    let roles = all(app, "entityType=roleDefinition").await;
    assert_eq!(roles.len(), 1);
    assert_eq!(roles[0]["entityId"], role.as_str());

    let by_admin = all(app, "actor=admin-key").await;
    assert_eq!(by_admin.len(), 4);
    assert!(all(app, "actor=someone-else").await.is_empty());

    let since_middle = all(
        app,
        &format!(
            "from={}",
            middle.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        ),
    )
    .await;
    let ids: Vec<&str> = since_middle
        .iter()
        .map(|c| c["entityId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [second.as_str(), first.as_str()]);
    let early = all(
        app,
        &format!(
            "from={}&until={}&entityType=group",
            before.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            middle.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        ),
    )
    .await;
    assert_eq!(early.len(), 1);
    assert_eq!(early[0]["entityId"], first.as_str());

    for bad in [
        "entityType=widget",
        "from=yesterday",
        "until=2026-13-01T00:00:00Z",
        "actors=admin-key",
    ] {
        let r = app.get(&format!("/v1/changes?{bad}")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {:?}", r.body);
        assert_eq!(r.header("content-type"), Some("application/problem+json"));
    }
}

on_both_stores!(the_change_log_filters_as_an_audit_log);
