//! Fuzz targets for the parsers that read untrusted text: action patterns and their matcher,
//! scopes, conditions and bearer tokens. They run on the stable toolchain, with nothing but
//! proptest (already a dev-dependency): each target draws inputs from a structure-aware
//! generator (the grammar's own pieces, spliced with arbitrary text and bytes) in rounds of
//! [`ROUND`] inputs until its time budget is spent, and shrinks any failure to a minimal
//! input. Not coverage-guided (that needs libFuzzer on nightly or an AFL++ build); the
//! generators make up for it by aiming at the grammars' edges.
//!
//! `cargo test --lib fuzz::` runs each target for `ROLECALL_FUZZ_SECONDS` (default 1) from
//! seed `ROLECALL_FUZZ_SEED` (default: fresh, printed); `scripts/fuzz <seconds>` runs them
//! longer and prints each target's input count. The properties: no parser panics; what
//! parses round-trips through its text; the engine's compiled matcher agrees with a naive
//! reference matcher; a condition's evaluation ends within its step budget; a token that
//! verifies is byte for byte the one that was signed.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use serde_json::{json, Map, Value};

use crate::engine::pattern::Matcher;
use crate::model::condition::{Attrs, Condition, Env};
use crate::model::{Action, ActionPattern, Scope};

/// Inputs per round; a failure is shrunk within its round.
const ROUND: u32 = 256;

/// Runs `target` on inputs from `strategy` until the time budget is spent (at least one
/// round), then prints how many inputs it took.
fn fuzz<S>(name: &str, strategy: S, target: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S: Strategy,
    S::Value: Debug,
{
    let seconds: f64 = std::env::var("ROLECALL_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let seed: u64 = std::env::var("ROLECALL_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand_seed);
    let budget = Duration::from_secs_f64(seconds.max(0.0));
    let start = Instant::now();
    let mut inputs: u64 = 0;
    let mut round: u64 = 0;
    while round == 0 || start.elapsed() < budget {
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&seed.to_le_bytes());
        key[8..16].copy_from_slice(&round.to_le_bytes());
        let config = Config {
            cases: ROUND,
            failure_persistence: None,
            max_shrink_iters: 4096,
            ..Config::default()
        };
        let mut runner =
            TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &key));
        if let Err(failure) = runner.run(&strategy, &target) {
            panic!(
                "fuzz target `{name}` failed (ROLECALL_FUZZ_SEED={seed}, round {round}): {failure}"
            );
        }
        inputs += u64::from(ROUND);
        round += 1;
    }
    eprintln!(
        "fuzz {name}: {inputs} inputs in {:.1} s, seed {seed}",
        start.elapsed().as_secs_f64()
    );
}

fn rand_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    hasher.finish()
}

/// Any text: printable, control characters and invalid UTF-8 made lossy.
fn any_text(max: usize) -> BoxedStrategy<String> {
    prop_oneof![
        proptest::string::string_regex(&format!("\\PC{{0,{max}}}"))
            .expect("a valid regex")
            .boxed(),
        proptest::collection::vec(any::<u8>(), 0..max)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned())
            .boxed(),
        proptest::collection::vec(any::<char>(), 0..max)
            .prop_map(|c| c.into_iter().collect())
            .boxed(),
    ]
    .boxed()
}

// --- action patterns -----------------------------------------------------------------------

/// A segment of an action or pattern, biased to the grammar's edges.
fn action_segment() -> BoxedStrategy<String> {
    prop_oneof![
        4 => "[a-cA-C.*_-]{1,4}",
        2 => prop::sample::select(vec![
            "*", "**", "allEntities", "allProperties", "allTasks", "ALLTASKS", "allproperties",
            "microsoft.directory", "applications", "read", "", " ", "a b", "é", "a/b", "\u{0}",
        ])
        .prop_map(str::to_owned),
        1 => any_text(6),
    ]
    .boxed()
}

fn action_like() -> BoxedStrategy<String> {
    prop_oneof![
        4 => proptest::collection::vec(action_segment(), 0..15).prop_map(|s| s.join("/")),
        1 => any_text(300),
        1 => "[a*/]{250,260}",
    ]
    .boxed()
}

#[test]
fn action_and_pattern_parsers_never_panic_and_round_trip() {
    fuzz("action-parse", action_like(), |raw| {
        let pattern = ActionPattern::parse(&raw);
        let action = Action::parse(&raw);
        if let Ok(p) = &pattern {
            prop_assert_eq!(p.as_str(), raw.as_str());
            prop_assert_eq!(p.to_string(), raw.clone());
            let reparsed = ActionPattern::parse(&p.to_string());
            prop_assert_eq!(reparsed.as_ref(), Ok(p));
            // Compiling and matching any valid pattern never panics.
            let _ = Matcher::compile(p.as_str()).matches("a/b/c");
        }
        if let Ok(a) = &action {
            prop_assert_eq!(a.as_str(), raw.as_str());
            prop_assert!(pattern.is_ok(), "an action is also a pattern: {}", raw);
            prop_assert!(
                Matcher::compile(a.as_str()).matches(&a.as_str().to_ascii_lowercase()),
                "an action matches itself: {}",
                raw
            );
        }
        Ok(())
    });
}

/// The reference matcher of `tests/it/engine/reference.rs` (which the library's unit tests
/// cannot import): recursive over segments, written without looking at the engine's.
mod reference {
    fn glob(p: &[char], s: &[char]) -> bool {
        match p.split_first() {
            None => s.is_empty(),
            Some(('*', rest)) => glob(rest, s) || (!s.is_empty() && glob(p, &s[1..])),
            Some((c, rest)) => s.first() == Some(c) && glob(rest, &s[1..]),
        }
    }

    fn segments_match(p: &[String], a: &[String]) -> bool {
        let Some((first, rest)) = p.split_first() else {
            return a.is_empty();
        };
        match first.as_str() {
            "allentities" => !a.is_empty() && segments_match(rest, &a[1..]),
            "alltasks" => (1..=a.len()).any(|k| segments_match(rest, &a[k..])),
            "allproperties" => (0..=a.len()).any(|k| segments_match(rest, &a[k..])),
            g if g.contains('*') => {
                let g: Vec<char> = g.chars().collect();
                (1..=a.len()).any(|k| {
                    let joined: Vec<char> = a[..k].join("/").chars().collect();
                    glob(&g, &joined) && segments_match(rest, &a[k..])
                })
            }
            lit => a.first().map(String::as_str) == Some(lit) && segments_match(rest, &a[1..]),
        }
    }

    /// Does `pattern` grant `action`? Case-insensitive.
    pub fn pattern_matches(pattern: &str, action: &str) -> bool {
        let split =
            |s: &str| -> Vec<String> { s.to_lowercase().split('/').map(str::to_owned).collect() };
        segments_match(&split(pattern), &split(action))
    }
}

#[test]
fn the_compiled_matcher_agrees_with_the_reference_matcher() {
    let pattern_segment = prop_oneof![
        4 => "[abAB*]{1,3}",
        1 => prop::sample::select(vec!["allEntities", "allProperties", "allTasks", "*"])
            .prop_map(str::to_owned),
    ];
    let patterns = proptest::collection::vec(pattern_segment, 1..6).prop_map(|s| s.join("/"));
    let actions = proptest::collection::vec("[abAB]{1,2}", 2..7).prop_map(|s| s.join("/"));
    fuzz(
        "action-match",
        (patterns, proptest::collection::vec(actions, 1..8)),
        |(pattern, actions)| {
            let Ok(p) = ActionPattern::parse(&pattern) else {
                return Ok(());
            };
            let matcher = Matcher::compile(p.as_str());
            for action in actions {
                let Ok(a) = Action::parse(&action) else {
                    continue;
                };
                let lower = a.as_str().to_ascii_lowercase();
                prop_assert_eq!(
                    matcher.matches(&lower),
                    reference::pattern_matches(p.as_str(), a.as_str()),
                    "pattern `{}` on action `{}`",
                    pattern,
                    action
                );
            }
            Ok(())
        },
    );
}

// --- scopes --------------------------------------------------------------------------------

fn scope_like() -> BoxedStrategy<String> {
    let id = uuid::Uuid::from_u128(0x6f1c_0a9e_1111_4000_8000_0000_0000_000a);
    let segment = prop_oneof![
        3 => "[a-zA-Z0-9._~-]{1,6}",
        2 => prop::sample::select(vec![
            "applications".to_owned(),
            "administrativeUnits".to_owned(),
            id.hyphenated().to_string(),
            id.hyphenated().to_string().to_uppercase(),
            id.simple().to_string(),
            id.braced().to_string(),
            id.urn().to_string(),
            ".".to_owned(),
            "..".to_owned(),
            String::new(),
            "%2F".to_owned(),
            "a b".to_owned(),
            "é".to_owned(),
        ]),
        1 => any_text(5),
    ];
    prop_oneof![
        5 => (any::<bool>(), proptest::collection::vec(segment, 0..12)).prop_map(
            |(slash, s)| format!("{}{}", if slash { "/" } else { "" }, s.join("/"))
        ),
        1 => any_text(400),
    ]
    .boxed()
}

#[test]
fn the_scope_parser_never_panics_and_its_canonical_form_is_stable() {
    fuzz("scope-parse", scope_like(), |raw| {
        let Ok(scope) = Scope::parse(&raw) else {
            return Ok(());
        };
        prop_assert_eq!(scope.to_string(), scope.as_str().to_owned());
        let again = Scope::parse(scope.as_str());
        prop_assert_eq!(again.as_ref(), Ok(&scope), "`{}` reparses to itself", raw);
        prop_assert!(scope.covers(&scope));
        prop_assert!(Scope::root().covers(&scope));
        for ancestor in scope.ancestors() {
            let ancestor = Scope::parse(ancestor);
            prop_assert!(ancestor.is_ok_and(|a| a.covers(&scope)));
        }
        Ok(())
    });
}

// --- conditions ----------------------------------------------------------------------------

fn condition_like() -> BoxedStrategy<String> {
    let token = prop_oneof![
        6 => prop::sample::select(vec![
            "@Resource[status]", "@Resource[tags]", "@Subject[department]", "@Action[name]",
            "@Environment[UtcNow]", "@Resource[id]", "@Resource[type]", "@Subject[id]",
            "@Subject[aliases]", "@Resource[", "@Nowhere[x]", "]", "[",
            "StringEquals", "StringNotEquals", "StringEqualsIgnoreCase", "StringLike",
            "StringNotLike", "StringStartsWith", "NumericEquals", "NumericLessThan",
            "NumericGreaterThanEquals", "BoolEquals", "DateTimeGreaterThan",
            "ForAnyOfAnyValues:StringEquals", "ForAllOfAnyValues:StringLike",
            "ForAnyOfAllValues:NumericLessThan", "ForAllOfAllValues:StringNotEquals",
            "ActionMatches", "Exists", "NOT", "AND", "OR", "&&", "||", "!", "(", ")", "{", "}",
            ",", "'Active'", "'a*b*c*d*e*'", "'*'", "''", "'", "42", "-1.5e308", "1e999",
            "true", "false", "'2025-01-01T00:00:00Z'", "$SubjectIsOwner", "$ResourceIsSelf",
            "{'a/*'}", "{'a', 'b', 'c'}",
        ])
        .prop_map(str::to_owned),
        1 => any_text(4),
    ];
    prop_oneof![
        5 => proptest::collection::vec(token, 0..40).prop_map(|t| t.join(" ")),
        1 => any_text(200),
        // Deep nesting, against the depth bound.
        1 => (1usize..300).prop_map(|n| format!(
            "{}@Resource[status] StringEquals 'x'{}",
            "(NOT ".repeat(n),
            ")".repeat(n)
        )),
    ]
    .boxed()
}

fn json_value() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        prop::sample::select(vec![
            "Active",
            "a",
            "b",
            "2025-01-01T00:00:00Z",
            "*",
            "",
            "x/y"
        ])
        .prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(2, 300, 150, |inner| {
        proptest::collection::vec(inner, 0..150).prop_map(Value::Array)
    })
    .boxed()
}

fn attributes() -> BoxedStrategy<Map<String, Value>> {
    proptest::collection::btree_map(
        prop::sample::select(vec![
            "status",
            "tags",
            "department",
            "UtcNow",
            "id",
            "owner",
        ]),
        json_value(),
        0..4,
    )
    .prop_map(|m| m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    .boxed()
}

#[test]
fn conditions_parse_without_panic_and_evaluate_within_their_budget() {
    fuzz(
        "condition",
        (condition_like(), attributes(), attributes(), attributes()),
        |(text, subject, resource, environment)| {
            let Ok(condition) = Condition::parse(&text) else {
                return Ok(());
            };
            prop_assert_eq!(condition.text(), text.as_str());
            prop_assert!(Condition::parse(condition.text()).is_ok());
            let aliases = vec!["alice@contoso.com".to_owned()];
            let env = Env {
                subject_id: "6f1c0a9e-1111-4000-8000-00000000000a",
                subject_aliases: &aliases,
                subject: Attrs::one(&subject),
                resource_id: Some("42"),
                resource_type: Some("todos"),
                resource: Attrs::one(&resource),
                action_name: "contoso.todo/items/read",
                action_text: "contoso.todo/items/read",
                action: Attrs::default(),
                environment: Attrs::one(&environment),
                now: chrono::DateTime::UNIX_EPOCH,
            };
            let start = Instant::now();
            let answer = condition.try_evaluate(&env);
            let took = start.elapsed();
            // The step budget bounds the work: milliseconds, even unoptimized. The bound here
            // is loose so that a loaded CI machine cannot make it flaky.
            prop_assert!(took < Duration::from_secs(10), "`{}` took {:?}", text, took);
            prop_assert_eq!(condition.evaluate(&env), answer.unwrap_or(false));
            Ok(())
        },
    );
}

// --- tokens --------------------------------------------------------------------------------

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A token input: a real signed token and how to change it.
#[derive(Debug, Clone)]
enum Mutation {
    /// Sent as is (must verify).
    Unchanged,
    /// One byte replaced.
    Byte(prop::sample::Index, u8),
    /// Cut at a position.
    Truncate(prop::sample::Index),
    /// Header and payload re-encoded from these JSON objects, the real signature kept.
    Forged(Value, Value),
    /// Any text.
    Text(String),
}

fn header() -> BoxedStrategy<Value> {
    (
        prop::sample::select(vec![
            json!("RS256"),
            json!("none"),
            json!("NONE"),
            json!("HS256"),
            json!("ES256"),
            json!("EdDSA"),
            json!("PS512"),
            json!(null),
            json!(1),
            json!("RS257"),
        ]),
        prop::sample::select(vec![json!(null), json!("dev"), json!(7), json!("")]),
        prop::sample::select(vec!["", "jku", "x5u", "x5c", "jwk", "crit", "typ"]),
    )
        .prop_map(|(alg, kid, extra)| {
            let mut h = json!({"alg": alg, "typ": "JWT"});
            if !kid.is_null() {
                h["kid"] = kid;
            }
            if !extra.is_empty() {
                h[extra] = json!(["x"]);
            }
            h
        })
        .boxed()
}

fn claims() -> BoxedStrategy<Value> {
    let number = prop_oneof![
        Just(json!(null)),
        Just(json!(-1)),
        Just(json!(1e300)),
        Just(json!(u64::MAX)),
        Just(json!(i64::MIN)),
        Just(json!("soon")),
        Just(json!(4_000_000_000u64)),
        Just(json!(0.5)),
    ];
    (
        prop::sample::select(vec![
            json!("rolecall-dev"),
            json!("other"),
            json!(1),
            json!(null),
        ]),
        prop::sample::select(vec![
            json!("rolecall"),
            json!(["rolecall", "x"]),
            json!([]),
            json!(null),
        ]),
        number.clone(),
        number.clone(),
        number,
        prop::sample::select(vec![
            json!("6f1c0a9e-1111-4000-8000-00000000000a"),
            json!("not-a-uuid"),
            json!(null),
            json!(["6f1c0a9e-1111-4000-8000-00000000000a"]),
        ]),
        prop::sample::select(vec![
            json!(null),
            json!([]),
            json!(["x", 1]),
            json!("g"),
            json!({}),
        ]),
    )
        .prop_map(|(iss, aud, exp, nbf, iat, oid, groups)| {
            let mut c = Map::new();
            for (name, value) in [
                ("iss", iss),
                ("aud", aud),
                ("exp", exp),
                ("nbf", nbf),
                ("iat", iat),
                ("oid", oid),
                ("groups", groups.clone()),
                ("wids", groups),
            ] {
                if !value.is_null() {
                    c.insert(name.to_owned(), value);
                }
            }
            Value::Object(c)
        })
        .boxed()
}

#[test]
fn the_token_parser_never_panics_and_accepts_only_what_was_signed() {
    use crate::auth::dev::{DevClaims, DevKey};
    use crate::auth::Verifier;

    let dir = std::env::temp_dir().join(format!("rolecall-fuzz-{}", uuid::Uuid::new_v4()));
    let key = DevKey::load_or_create(&dir).expect("a dev key");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let verifier = runtime
        .block_on(async {
            Verifier::start(
                vec![key.issuer()],
                crate::model::TenantId(crate::config::DEFAULT_TENANT),
            )
        })
        .map(Arc::new)
        .expect("a verifier");
    let signed = key
        .mint(&DevClaims {
            oid: uuid::Uuid::from_u128(7),
            tid: None,
            groups: vec![uuid::Uuid::from_u128(8)],
            wids: Vec::new(),
            ttl: Duration::from_secs(3600),
        })
        .expect("a token");
    let _ = std::fs::remove_dir_all(&dir);
    let mutation = prop_oneof![
        1 => Just(Mutation::Unchanged),
        6 => (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Byte(i, b)),
        2 => any::<prop::sample::Index>().prop_map(Mutation::Truncate),
        6 => (header(), claims()).prop_map(|(h, c)| Mutation::Forged(h, c)),
        2 => any_text(300).prop_map(Mutation::Text),
    ];
    fuzz("token", mutation, |mutation| {
        let token = match &mutation {
            Mutation::Unchanged => signed.clone(),
            Mutation::Byte(at, byte) => {
                let mut bytes = signed.clone().into_bytes();
                let at = at.index(bytes.len());
                bytes[at] = *byte;
                String::from_utf8_lossy(&bytes).into_owned()
            }
            Mutation::Truncate(at) => signed[..at.index(signed.len())].to_owned(),
            Mutation::Forged(h, c) => {
                let signature = signed.rsplit('.').next().unwrap_or("");
                format!(
                    "{}.{}.{signature}",
                    b64(h.to_string().as_bytes()),
                    b64(c.to_string().as_bytes())
                )
            }
            Mutation::Text(text) => text.clone(),
        };
        let start = Instant::now();
        let verified = runtime.block_on(verifier.verify(&token));
        prop_assert!(start.elapsed() < Duration::from_secs(10));
        if verified.is_ok() {
            prop_assert_eq!(&token, &signed, "only the signed token verifies");
        } else {
            prop_assert!(
                !matches!(mutation, Mutation::Unchanged),
                "the signed token verifies: {:?}",
                verified
            );
        }
        Ok(())
    });
}
