//! Token validation overhead: what `Verifier::verify` costs per request with the issuer's
//! keys cached (no network), for each accepted algorithm, on first sight of a token (the
//! signature is checked) and when the same token comes again (the validated-token cache),
//! beside an in-process check on a small directory measured in the same run.
//!
//! `cargo bench --bench token`. Prints median and p99 per algorithm before criterion runs.
#![allow(clippy::unwrap_used, clippy::expect_used)] // measurement code: a failed set-up should stop the run

use std::hint::black_box;
use std::time::Instant;

use criterion::Criterion;
use jsonwebtoken::jwk::JwkSet;
use rolecall::auth::{IssuerSettings, IssuerSpec, KeySource, Verifier};
use rolecall::engine::Snapshot;
use rolecall::model::{Catalog, TenantId};
use uuid::Uuid;

#[path = "support/dataset.rs"]
#[allow(dead_code)] // this bench needs one small directory, not every knob
mod dataset;
#[path = "../tests/it/common/idp.rs"]
mod idp;

use dataset::{generate, DatasetSize};

use idp::SigningKey;

const ISSUER: &str = "https://login.example.com/{tid}/v2.0";
const AUDIENCE: &str = "api://rolecall";

fn verifier(keys: &[&SigningKey]) -> Verifier {
    let mut spec = IssuerSpec::from_settings(IssuerSettings {
        issuer: ISSUER.to_owned(),
        audiences: vec![AUDIENCE.to_owned()],
        jwks_uri: Some("https://login.example.com/keys".to_owned()),
        trust_wids: true,
        ..IssuerSettings::default()
    })
    .expect("valid issuer");
    let jwks: JwkSet = serde_json::from_value(serde_json::json!({
        "keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()
    }))
    .expect("a JWKS");
    spec.source = KeySource::Static(jwks);
    Verifier::start(vec![spec], TenantId(Uuid::from_u128(1))).expect("verifier")
}

fn token(key: &SigningKey) -> String {
    let tid = Uuid::new_v4();
    let mut claims = idp::claims(
        &ISSUER.replace("{tid}", &tid.to_string()),
        AUDIENCE,
        Uuid::new_v4(),
        tid,
        3600,
    );
    // A realistic Entra access token: a few groups and one directory role.
    claims["groups"] = serde_json::json!((0..5).map(|_| Uuid::new_v4()).collect::<Vec<_>>());
    claims["wids"] = serde_json::json!(["e8611ab8-c189-46e8-94e1-60213ab1f814"]);
    key.sign(&claims)
}

fn percentiles(mut ns: Vec<u64>) -> String {
    ns.sort_unstable();
    let at = |q: f64| ns[((ns.len() as f64 - 1.0) * q) as usize];
    format!(
        "median {:.1} µs, p99 {:.1} µs (n={})",
        at(0.5) as f64 / 1000.0,
        at(0.99) as f64 / 1000.0,
        ns.len()
    )
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let keys = [
        SigningKey::rsa(1, "rsa"),
        SigningKey::rsa_pss(2, "ps"),
        SigningKey::ec_p256("ec"),
        SigningKey::ed25519("ed"),
    ];
    let verifier = rt.block_on(async { verifier(&keys.iter().collect::<Vec<_>>()) });

    // Baseline in the same run: one in-process check on the S directory.
    let data = generate(DatasetSize::S, 7);
    let catalog = Catalog::builtin().expect("catalog");
    let snapshot = Snapshot::build(&data.dump, &catalog);
    let now = data.now;
    let mut check_ns = Vec::new();
    for request in data.likely_allowed.iter().cycle().take(20_000) {
        let t = Instant::now();
        black_box(snapshot.check(data.tenant, request, now, false));
        check_ns.push(t.elapsed().as_nanos() as u64);
    }
    println!("baseline check (S, allow): {}", percentiles(check_ns));
    for key in &keys {
        // First sight: every token distinct, so each one's signature is checked.
        let fresh: Vec<String> = (0..2_000).map(|_| token(key)).collect();
        let mut ns = Vec::new();
        for token in &fresh {
            let t = Instant::now();
            let ok = rt.block_on(verifier.verify(token)).is_ok();
            ns.push(t.elapsed().as_nanos() as u64);
            assert!(ok, "{:?} verifies", key.alg);
        }
        println!("verify {:?}, first sight: {}", key.alg, percentiles(ns));
        // Presented again: answered from the validated-token cache.
        let token = &fresh[0];
        let mut ns = Vec::new();
        for _ in 0..5_000 {
            let t = Instant::now();
            black_box(rt.block_on(verifier.verify(token)).is_ok());
            ns.push(t.elapsed().as_nanos() as u64);
        }
        println!("verify {:?}, repeated: {}", key.alg, percentiles(ns));
    }

    let mut c = Criterion::default().configure_from_args();
    for key in &keys {
        let token = token(key);
        c.bench_function(&format!("verify-repeated/{:?}", key.alg), |b| {
            b.iter(|| rt.block_on(verifier.verify(black_box(&token))).is_ok())
        });
    }
    c.final_summary();
}
