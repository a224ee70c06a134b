//! Checks the fake identity provider in `tests/common/idp.rs`: its tokens verify against
//! the JWKs it publishes, and it serves discovery and keys over real HTTP.

use crate::common::idp::{self, Idp, SigningKey};
use jsonwebtoken::{decode, Algorithm, DecodingKey, Validation};
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

const AUD: &str = "api://rolecall";

fn validation(alg: Algorithm, issuer: &str) -> Validation {
    let mut v = Validation::new(alg);
    v.set_issuer(&[issuer]);
    v.set_audience(&[AUD]);
    v
}

fn key_of(jwk: &Value) -> DecodingKey {
    let jwk = serde_json::from_value(jwk.clone()).expect("jsonwebtoken parses the JWK");
    DecodingKey::from_jwk(&jwk).expect("decoding key from JWK")
}

#[test]
fn every_key_type_verifies_against_its_published_jwk() {
    let iss = "https://login.example/tenant/v2.0";
    let (oid, tid) = (Uuid::new_v4(), Uuid::new_v4());
    let keys = [
        (SigningKey::rsa(1, "rsa1"), Algorithm::RS256, "RS256"),
        (SigningKey::rsa(2, "rsa2"), Algorithm::RS256, "RS256"),
        (SigningKey::rsa_pss(1, "pss1"), Algorithm::PS256, "PS256"),
        (SigningKey::ec_p256("ec"), Algorithm::ES256, "ES256"),
        (SigningKey::ed25519("ed"), Algorithm::EdDSA, "EdDSA"),
    ];
    for (key, alg, name) in &keys {
        assert_eq!(key.alg, *alg);
        assert_eq!(key.jwk["alg"], *name);
        assert_eq!(key.jwk["kid"], key.kid);
        assert_eq!(key.jwk["use"], "sig");
        let token = key.sign(&idp::claims(iss, AUD, oid, tid, 300));
        let data = decode::<Value>(&token, &key_of(&key.jwk), &validation(*alg, iss))
            .unwrap_or_else(|e| panic!("{name} token verifies: {e}"));
        assert_eq!(data.header.kid.as_deref(), Some(key.kid.as_str()));
        assert_eq!(data.header.alg, *alg);
        assert_eq!(data.claims["oid"], oid.to_string());
        assert_eq!(data.claims["sub"], oid.to_string());
        assert_eq!(data.claims["tid"], tid.to_string());
        assert_eq!(data.claims["ver"], "2.0");
    }

    // The two RSA fixtures are different keys.
    let token = keys[0].0.sign(&idp::claims(iss, AUD, oid, tid, 300));
    let err = decode::<Value>(
        &token,
        &key_of(&keys[1].0.jwk),
        &validation(Algorithm::RS256, iss),
    );
    assert!(err.is_err(), "key 1's token must not verify under key 2");

    // A custom header is used verbatim and still carries a valid signature.
    let header = json!({ "alg": "RS256", "jku": "https://evil.example/keys" });
    let token = keys[0]
        .0
        .sign_with_header(&header, &idp::claims(iss, AUD, oid, tid, 300));
    let data = decode::<Value>(
        &token,
        &key_of(&keys[0].0.jwk),
        &validation(Algorithm::RS256, iss),
    )
    .expect("custom-header token verifies");
    assert_eq!(data.header.kid, None);
    assert_eq!(
        data.header.jku.as_deref(),
        Some("https://evil.example/keys")
    );

    // The public DER is key 1's: it verifies key 1's RS256 token.
    let der = SigningKey::rsa_public_der(1);
    decode::<Value>(
        &token,
        &DecodingKey::from_rsa_der(&der),
        &validation(Algorithm::RS256, iss),
    )
    .expect("PKCS#1 public DER matches fixture 1");

    // HS256 with the public key bytes as secret, and alg none.
    let header = json!({ "alg": "HS256", "kid": "rsa1" });
    let token = idp::hs256_token(&der, &header, &idp::claims(iss, AUD, oid, tid, 300));
    decode::<Value>(
        &token,
        &DecodingKey::from_secret(&der),
        &validation(Algorithm::HS256, iss),
    )
    .expect("HS256 token verifies with its secret");
    let token = idp::unsigned_token(&json!({ "alg": "none" }), &json!({ "sub": "x" }));
    assert!(token.ends_with('.') && token.matches('.').count() == 2);

    // with_jwk_alg overrides or removes the published alg only.
    let key = SigningKey::ec_p256("ec2").with_jwk_alg(Some("ES384"));
    assert_eq!(key.jwk["alg"], "ES384");
    let key = key.with_jwk_alg(None);
    assert!(key.jwk.get("alg").is_none());
    assert_eq!(key.alg, Algorithm::ES256);
}

#[tokio::test]
async fn idp_serves_discovery_and_keys_over_http() {
    let (a, b) = (SigningKey::rsa(1, "a"), SigningKey::ed25519("b"));
    let idp = Idp::start(&[&a]).await;
    assert!(idp.issuer().starts_with("http://127.0.0.1:"));
    assert_eq!(idp.jwks_uri(), format!("{}/keys", idp.issuer()));
    let client = reqwest::Client::new();
    let get = |url: String| {
        let client = client.clone();
        async move { client.get(url).send().await.expect("request the fake IdP") }
    };

    let discovery = format!("{}/.well-known/openid-configuration", idp.issuer());
    let doc: Value = get(discovery.clone())
        .await
        .json()
        .await
        .expect("discovery JSON");
    assert_eq!(
        doc,
        json!({ "issuer": idp.issuer(), "jwks_uri": idp.jwks_uri() })
    );

    let res = get(idp.jwks_uri()).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "application/json");
    let jwks: Value = res.json().await.expect("JWKS JSON");
    assert_eq!(jwks, json!({ "keys": [a.jwk] }));
    assert_eq!(idp.fetches(), 1);

    idp.set_keys(&[&a, &b]);
    let jwks: Value = get(idp.jwks_uri()).await.json().await.expect("JWKS JSON");
    assert_eq!(jwks, json!({ "keys": [a.jwk, b.jwk] }));

    idp.set_down(true);
    assert_eq!(
        get(discovery.clone()).await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        get(idp.jwks_uri()).await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(idp.fetches(), 3);

    idp.set_down(false);
    assert_eq!(get(idp.jwks_uri()).await.status(), StatusCode::OK);
    assert_eq!(idp.fetches(), 4);
}
