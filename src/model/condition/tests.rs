use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{json, Map, Value};

use super::ast::{
    Base, Builtin, Compare, Family, Lit, Node, Op, Operand, Quant, Source, OPERATORS,
};
use super::eval::{eval, like, Budget};
use super::parse::{parse_with, Limits};
use super::*;
use crate::engine::pattern::Matcher;

const SUBJECT: &str = "6f1c0a9e-1111-4000-8000-00000000000a";

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// One check's inputs, owned; `env` borrows them.
#[derive(Debug, Clone)]
struct World {
    subject_id: String,
    aliases: Vec<String>,
    subject: Map<String, Value>,
    stored_subject: Map<String, Value>,
    resource_id: Option<String>,
    resource_type: Option<String>,
    /// Request properties: win over `stored_resource`.
    resource: Map<String, Value>,
    stored_resource: Map<String, Value>,
    action_name: String,
    action_text: String,
    action: Map<String, Value>,
    environment: Map<String, Value>,
    now: Timestamp,
}

impl Default for World {
    fn default() -> World {
        World {
            subject_id: SUBJECT.to_owned(),
            aliases: vec!["alice@contoso.com".to_owned()],
            subject: Map::new(),
            stored_subject: Map::new(),
            resource_id: Some("42".to_owned()),
            resource_type: Some("todos".to_owned()),
            resource: Map::new(),
            stored_resource: object(json!({
                "status": "Active",
                "file": "report-2024.pdf",
                "size": 5,
                "ratio": 0.5,
                "flag": true,
                "flagText": "TRUE",
                "created": "2025-01-01T00:00:00Z",
                "tags": ["a", "b"],
                "empty": [],
                "mixed": ["a", 1],
                "nothing": null,
            })),
            action_name: "contoso.todo/items/read".to_owned(),
            action_text: "contoso.todo/items/read".to_owned(),
            action: Map::new(),
            environment: Map::new(),
            now: Utc.with_ymd_and_hms(2025, 6, 1, 12, 0, 0).unwrap(),
        }
    }
}

impl World {
    fn env(&self) -> Env<'_> {
        Env {
            subject_id: &self.subject_id,
            subject_aliases: &self.aliases,
            subject: Attrs::two(&self.subject, Some(&self.stored_subject)),
            resource_id: self.resource_id.as_deref(),
            resource_type: self.resource_type.as_deref(),
            resource: Attrs::two(&self.resource, Some(&self.stored_resource)),
            action_name: &self.action_name,
            action_text: &self.action_text,
            action: Attrs::one(&self.action),
            environment: Attrs::one(&self.environment),
            now: self.now,
        }
    }
}

#[track_caller]
fn holds(text: &str, world: &World) -> bool {
    match Condition::parse(text) {
        Ok(c) => c.evaluate(&world.env()),
        Err(e) => panic!("`{text}` does not parse: {e}"),
    }
}

#[track_caller]
fn error(text: &str) -> ConditionError {
    match Condition::parse(text) {
        Ok(c) => panic!("`{text}` parses: {c:?}"),
        Err(e) => e,
    }
}

#[track_caller]
fn assert_error(text: &str, position: usize, fragment: &str) {
    let e = error(text);
    assert_eq!(e.position, position, "`{text}`: {e}");
    assert!(e.message.contains(fragment), "`{text}`: {e}");
}

/// Every operator, one true and one false case each, against the default world.
const OPERATOR_CASES: &[(&str, bool)] = &[
    ("@Resource[status] StringEquals 'Active'", true),
    ("@Resource[status] StringEquals 'active'", false),
    ("@Resource[status] StringNotEquals 'active'", true),
    ("@Resource[status] StringNotEquals 'Active'", false),
    ("@Resource[status] StringEqualsIgnoreCase 'ACTIVE'", true),
    ("@Resource[status] StringEqualsIgnoreCase 'Inactive'", false),
    (
        "@Resource[status] StringNotEqualsIgnoreCase 'Inactive'",
        true,
    ),
    (
        "@Resource[status] StringNotEqualsIgnoreCase 'aCTIVE'",
        false,
    ),
    ("@Resource[file] StringLike 'report-*.pdf'", true),
    ("@Resource[file] StringLike 'report-????.pdf'", true),
    ("@Resource[file] StringLike '*'", true),
    ("@Resource[file] StringLike 'r*2*4*'", true),
    ("@Resource[file] StringLike 'report-???.pdf'", false),
    ("@Resource[file] StringLike '*.doc'", false),
    ("@Resource[file] StringLike 'Report*'", false),
    ("@Resource[file] StringNotLike '*.doc'", true),
    ("@Resource[file] StringNotLike 'report*'", false),
    ("@Resource[file] StringStartsWith 'report-'", true),
    ("@Resource[file] StringStartsWith 'Report'", false),
    ("@Resource[file] StringNotStartsWith 'Report'", true),
    ("@Resource[file] StringNotStartsWith 'report'", false),
    ("@Resource[size] NumericEquals 5", true),
    ("@Resource[size] NumericEquals 5.0", true),
    ("@Resource[size] NumericEquals 6", false),
    ("@Resource[size] NumericNotEquals 6", true),
    ("@Resource[size] NumericNotEquals 5", false),
    ("@Resource[size] NumericLessThan 6", true),
    ("@Resource[size] NumericLessThan 5", false),
    ("@Resource[size] NumericLessThanEquals 5", true),
    ("@Resource[size] NumericLessThanEquals 4.5", false),
    ("@Resource[ratio] NumericGreaterThan -1", true),
    ("@Resource[size] NumericGreaterThan 5", false),
    ("@Resource[size] NumericGreaterThanEquals 5", true),
    ("@Resource[ratio] NumericGreaterThanEquals 0.75", false),
    ("@Resource[flag] BoolEquals true", true),
    ("@Resource[flagText] BoolEquals true", true),
    ("@Resource[flag] BoolEquals 'TRUE'", true),
    ("@Resource[flag] BoolEquals false", false),
    ("@Resource[flag] BoolNotEquals false", true),
    ("@Resource[flagText] BoolNotEquals true", false),
    (
        "@Resource[created] DateTimeEquals '2025-01-01T01:00:00+01:00'",
        true,
    ),
    (
        "@Resource[created] DateTimeEquals '2025-01-02T00:00:00Z'",
        false,
    ),
    (
        "@Resource[created] DateTimeGreaterThan '2024-12-31T23:59:59Z'",
        true,
    ),
    (
        "@Resource[created] DateTimeGreaterThan '2025-01-01T00:00:00Z'",
        false,
    ),
    (
        "@Resource[created] DateTimeGreaterThanEquals '2025-01-01T00:00:00Z'",
        true,
    ),
    (
        "@Resource[created] DateTimeGreaterThanEquals '2025-01-01T00:00:01Z'",
        false,
    ),
    (
        "@Resource[created] DateTimeLessThan '2025-01-01T00:00:01Z'",
        true,
    ),
    (
        "@Resource[created] DateTimeLessThan '2025-01-01T00:00:00Z'",
        false,
    ),
    (
        "@Resource[created] DateTimeLessThanEquals '2025-01-01T00:00:00Z'",
        true,
    ),
    (
        "@Resource[created] DateTimeLessThanEquals '2024-12-31T00:00:00Z'",
        false,
    ),
    // Quantified.
    (
        "@Resource[tags] ForAnyOfAnyValues:StringEquals {'b', 'c'}",
        true,
    ),
    (
        "@Resource[tags] ForAnyOfAnyValues:StringEquals {'c'}",
        false,
    ),
    (
        "@Resource[tags] ForAllOfAnyValues:StringEquals {'a', 'b', 'c'}",
        true,
    ),
    (
        "@Resource[tags] ForAllOfAnyValues:StringEquals {'a'}",
        false,
    ),
    (
        "@Resource[tags] ForAnyOfAnyValues:StringEqualsIgnoreCase {'B'}",
        true,
    ),
    (
        "@Resource[tags] ForAnyOfAnyValues:StringEqualsIgnoreCase {'c'}",
        false,
    ),
    (
        "@Resource[tags] ForAllOfAnyValues:StringEqualsIgnoreCase {'A', 'B'}",
        true,
    ),
    (
        "@Resource[tags] ForAllOfAnyValues:StringEqualsIgnoreCase {'A'}",
        false,
    ),
    (
        "@Resource[tags] ForAnyOfAnyValues:StringNotEquals {'a'}",
        true,
    ),
    (
        "@Resource[status] ForAnyOfAnyValues:StringNotEquals {'Active'}",
        false,
    ),
    (
        "@Resource[tags] ForAllOfAnyValues:StringNotEquals {'a', 'b'}",
        true,
    ),
    (
        "@Resource[tags] ForAllOfAnyValues:StringNotEquals {'a'}",
        false,
    ),
    ("@Resource[tags] ForAnyOfAllValues:StringEquals {'a'}", true),
    (
        "@Resource[tags] ForAnyOfAllValues:StringEquals {'a', 'b'}",
        false,
    ),
    (
        "@Resource[tags] ForAllOfAllValues:StringNotEquals {'c', 'd'}",
        true,
    ),
    (
        "@Resource[tags] ForAllOfAllValues:StringNotEquals {'a', 'c'}",
        false,
    ),
    ("@Resource[tags] ForAnyOfAnyValues:StringLike {'?'}", true),
    ("@Resource[tags] ForAllOfAnyValues:StringLike {'a*'}", false),
    (
        "@Resource[size] ForAnyOfAnyValues:NumericGreaterThan {1, 9}",
        true,
    ),
    (
        "@Resource[size] ForAnyOfAllValues:NumericGreaterThan {1, 9}",
        false,
    ),
    // A set on the right of a scalar operator: any of (none of, negated).
    ("@Resource[status] StringEquals {'Draft', 'Active'}", true),
    ("@Resource[status] StringEquals {'Draft', 'Closed'}", false),
    (
        "@Resource[status] StringNotEquals {'Draft', 'Closed'}",
        true,
    ),
    (
        "@Resource[status] StringNotEquals {'Draft', 'Active'}",
        false,
    ),
    ("@Resource[file] StringLike {'*.doc', '*.pdf'}", true),
    ("@Resource[size] NumericEquals {1, 5}", true),
    ("@Resource[size] NumericNotEquals {1, 5}", false),
    // Attributes on both sides, keywords in any case.
    ("@Resource[status] stringequals @Resource[status]", true),
    ("@Resource[file] StringStartsWith @Resource[status]", false),
];

#[test]
fn every_operator_answers_as_documented() {
    let world = World::default();
    for (text, want) in OPERATOR_CASES {
        assert_eq!(holds(text, &world), *want, "`{text}`");
    }
}

#[test]
fn every_operator_has_a_true_and_a_false_case() {
    for (name, _, _) in OPERATORS {
        for want in [true, false] {
            let covered = OPERATOR_CASES
                .iter()
                .any(|(text, w)| *w == want && text.split_whitespace().nth(1) == Some(*name));
            assert!(covered, "no {want} case for `{name}`");
        }
    }
}

#[test]
fn a_missing_attribute_is_false_and_its_negation_true() {
    let world = World::default();
    for text in [
        "@Resource[missing] StringEquals 'x'",
        "@Resource[missing] StringNotEquals 'x'",
        "@Resource[missing] StringNotLike 'x'",
        "@Resource[missing] NumericNotEquals 1",
        "@Resource[missing] BoolNotEquals true",
        "@Resource[missing] ForAllOfAnyValues:StringEquals {'x'}",
        "@Resource[status] StringEquals @Subject[missing]",
        "@Action[missing] StringEquals 'x'",
        "@Environment[missing] StringEquals 'x'",
        "@Resource[nothing] StringNotEquals 'x'",
    ] {
        assert!(!holds(text, &world), "`{text}`");
        assert!(holds(&format!("NOT ({text})"), &world), "NOT `{text}`");
        assert!(holds(&format!("!({text})"), &world), "!`{text}`");
    }
    assert!(holds(
        "NOT (@Resource[archived] StringEquals 'true')",
        &world
    ));
}

#[test]
fn a_type_mismatch_is_false_even_for_the_not_forms() {
    let world = World::default();
    for text in [
        "@Resource[size] StringEquals '5'",
        "@Resource[size] StringNotEquals 'x'",
        "@Resource[status] NumericEquals 5",
        "@Resource[status] NumericNotEquals 5",
        "@Resource[status] BoolEquals true",
        "@Resource[status] BoolNotEquals true",
        "@Resource[status] DateTimeEquals '2025-01-01T00:00:00Z'",
        "@Resource[size] DateTimeLessThan '2025-01-01T00:00:00Z'",
        // An array against a scalar operator.
        "@Resource[tags] StringEquals 'a'",
        "@Resource[tags] StringNotEquals 'zzz'",
        "@Resource[status] StringNotEquals @Resource[tags]",
        "@Resource[empty] StringNotEquals 'a'",
        // One item of the wrong type spoils a quantified comparison.
        "@Resource[mixed] ForAnyOfAnyValues:StringEquals {'a'}",
        // `@Environment[UtcNow]` is a date-time, not a string.
        "@Environment[UtcNow] StringStartsWith '2025'",
    ] {
        assert!(!holds(text, &world), "`{text}`");
    }
}

#[test]
fn quantified_comparisons_treat_scalars_as_one_item_sets_and_empty_sets_as_documented() {
    let world = World::default();
    assert!(holds(
        "@Resource[status] ForAnyOfAnyValues:StringEquals {'Active', 'x'}",
        &world
    ));
    assert!(holds(
        "@Resource[tags] ForAnyOfAnyValues:StringEquals @Resource[file] OR \
         @Resource[status] ForAllOfAnyValues:StringEquals {'Active'}",
        &world
    ));
    // Empty left: ForAny... false, ForAll... true.
    assert!(!holds(
        "@Resource[empty] ForAnyOfAnyValues:StringEquals {'a'}",
        &world
    ));
    assert!(holds(
        "@Resource[empty] ForAllOfAnyValues:StringEquals {'a'}",
        &world
    ));
    // Empty right: nothing is found in it; everything passes "every right value".
    assert!(!holds(
        "@Resource[tags] ForAnyOfAnyValues:StringEquals {}",
        &world
    ));
    assert!(holds(
        "@Resource[tags] ForAllOfAllValues:StringEquals {}",
        &world
    ));
}

#[test]
fn large_string_sets_answer_like_small_ones() {
    let mut world = World::default();
    let allowed: Vec<String> = (0..40).map(|i| format!("Group-{i}")).collect();
    world
        .stored_resource
        .insert("allowed".into(), json!(allowed));
    world
        .subject
        .insert("few".into(), json!(["group-3", "GROUP-7"]));
    world
        .subject
        .insert("some".into(), json!(["group-3", "nope"]));
    for (text, want) in [
        (
            "@Subject[few] ForAllOfAnyValues:StringEqualsIgnoreCase @Resource[allowed]",
            true,
        ),
        (
            "@Subject[some] ForAllOfAnyValues:StringEqualsIgnoreCase @Resource[allowed]",
            false,
        ),
        (
            "@Subject[some] ForAnyOfAnyValues:StringEqualsIgnoreCase @Resource[allowed]",
            true,
        ),
        (
            "@Subject[few] ForAnyOfAnyValues:StringEquals @Resource[allowed]",
            false,
        ),
        (
            "@Resource[allowed] ForAnyOfAnyValues:StringEquals {'Group-39'}",
            true,
        ),
    ] {
        assert_eq!(holds(text, &world), want, "`{text}`");
    }
}

#[test]
fn an_evaluation_that_runs_out_of_steps_is_false_even_under_not() {
    let mut world = World::default();
    let big: Vec<String> = (0..5000).map(|i| format!("v{i}")).collect();
    world.stored_resource.insert("big".into(), json!(big));
    let text = "@Resource[big] ForAllOfAnyValues:StringNotEquals @Resource[big]";
    let c = Condition::parse(text).unwrap();
    assert_eq!(c.try_evaluate(&world.env()), None);
    assert!(!c.evaluate(&world.env()));
    let not = Condition::parse(&format!("NOT ({text})")).unwrap();
    assert!(!not.evaluate(&world.env()));
    // The hashed forms stay linear, so they still answer.
    let hashed = "@Resource[big] ForAllOfAnyValues:StringEquals @Resource[big]";
    assert!(holds(hashed, &world));
}

#[test]
fn not_binds_tighter_than_and_which_binds_tighter_than_or() {
    let world = World::default();
    let t = "@Resource[status] StringEquals 'Active'";
    let f = "@Resource[status] StringEquals 'x'";
    assert!(holds(&format!("{t} OR {t} AND {f}"), &world));
    assert!(!holds(&format!("({t} OR {t}) AND {f}"), &world));
    assert!(holds(&format!("{f} AND {f} OR {t}"), &world));
    assert!(holds(&format!("NOT {t} OR {t}"), &world));
    assert!(!holds(&format!("NOT ({t} OR {t})"), &world));
    assert!(holds(&format!("{t} || {t} && {f}"), &world));
    assert!(!holds(&format!("!{t} || !({t})"), &world));
    assert!(holds(&format!("not {f} and not not {t}"), &world));
    assert!(holds(&format!("(\n\t{t}\n)\nAND\n(NOT\t{f})"), &world));
}

#[test]
fn subject_is_owner_reads_owners_then_owner_id_then_owner() {
    let with = |attrs: Value| World {
        stored_resource: object(attrs),
        ..World::default()
    };
    let owner = "$SubjectIsOwner";
    assert!(holds(
        owner,
        &with(json!({ "ownerID": SUBJECT.to_uppercase() }))
    ));
    assert!(holds(
        owner,
        &with(json!({ "owners": ["someone", SUBJECT] }))
    ));
    assert!(holds(owner, &with(json!({ "owner": SUBJECT }))));
    // An alias, ASCII-case-insensitively.
    assert!(holds(
        owner,
        &with(json!({ "owners": ["ALICE@Contoso.com"] }))
    ));
    // Not the subject.
    assert!(!holds(
        owner,
        &with(json!({ "owners": ["bob@contoso.com"] }))
    ));
    assert!(!holds(owner, &with(json!({ "ownerID": "" }))));
    assert!(!holds(owner, &with(json!({}))));
    assert!(holds("NOT $SubjectIsOwner", &with(json!({}))));
    // The first present name wins, even when a later one would match.
    assert!(!holds(
        owner,
        &with(json!({ "owners": ["bob"], "ownerID": SUBJECT }))
    ));
    assert!(!holds(
        owner,
        &with(json!({ "owners": 7, "owner": SUBJECT }))
    ));
    // Request properties count: they are resource attributes too.
    let mut world = with(json!({ "owners": ["bob"] }));
    world.resource.insert("owners".into(), json!([SUBJECT]));
    assert!(holds("$subjectisowner", &world));
}

#[test]
fn resource_is_self_compares_the_resource_id_with_the_subject() {
    let at = |id: Option<&str>| World {
        resource_id: id.map(str::to_owned),
        ..World::default()
    };
    assert!(holds(
        "$ResourceIsSelf",
        &at(Some(SUBJECT.to_uppercase().as_str()))
    ));
    assert!(holds("$ResourceIsSelf", &at(Some("Alice@contoso.com"))));
    assert!(!holds("$ResourceIsSelf", &at(Some("42"))));
    assert!(!holds("$ResourceIsSelf", &at(None)));
    assert!(holds(
        "$ResourceIsSelf OR $SubjectIsOwner",
        &at(Some(SUBJECT))
    ));
}

#[test]
fn the_todo_scenario_needs_the_editor_role_and_ownership() {
    let text = "(@Subject[roles] ForAnyOfAnyValues:StringEquals {'editor'}) AND $SubjectIsOwner";
    let world = |roles: Value, owner: &str| {
        let mut w = World {
            stored_resource: object(json!({ "ownerID": owner })),
            ..World::default()
        };
        w.subject.insert("roles".into(), roles);
        w
    };
    assert!(holds(text, &world(json!(["viewer", "editor"]), SUBJECT)));
    assert!(holds(text, &world(json!("editor"), SUBJECT)));
    assert!(!holds(text, &world(json!(["viewer"]), SUBJECT)));
    assert!(!holds(text, &world(json!(["editor"]), "someone-else")));
    assert!(!holds(text, &World::default()));
}

#[test]
fn request_properties_override_stored_attributes() {
    let mut world = World::default();
    world.resource.insert("status".into(), json!("Draft"));
    assert!(holds("@Resource[status] StringEquals 'Draft'", &world));
    assert!(!holds("@Resource[status] StringEquals 'Active'", &world));
    // Names only the stored layer holds still read through.
    assert!(holds("@Resource[size] NumericEquals 5", &world));
    // A null in the request still shadows, and matches nothing.
    world.resource.insert("size".into(), Value::Null);
    assert!(!holds("@Resource[size] NumericEquals 5", &world));
    world.stored_subject.insert("dept".into(), json!("sales"));
    world.subject.insert("dept".into(), json!("hr"));
    assert!(holds("@Principal[dept] StringEquals 'hr'", &world));
    let env = world.env();
    assert_eq!(env.subject.get("dept"), Some(&json!("hr")));
    assert_eq!(Attrs::default().get("dept"), None);
}

#[test]
fn built_ins_cannot_be_spoofed_by_attributes() {
    let mut world = World {
        resource_id: None,
        resource_type: None,
        ..World::default()
    };
    for layer in [&mut world.subject, &mut world.stored_subject] {
        layer.insert("id".into(), json!("attacker"));
        layer.insert("aliases".into(), json!(["attacker"]));
    }
    world.resource.insert("id".into(), json!("spoofed"));
    world.resource.insert("type".into(), json!("spoofed"));
    world.action.insert("name".into(), json!("spoofed"));
    world
        .environment
        .insert("UtcNow".into(), json!("2000-01-01T00:00:00Z"));
    for text in [
        "@Subject[id] StringEquals 'attacker'",
        "@Subject[ID] StringEquals 'attacker'",
        "@Principal[ id ] StringEquals 'attacker'",
        "@Subject[aliases] ForAnyOfAnyValues:StringEquals {'attacker'}",
        "@Resource[id] StringEquals 'spoofed'",
        "@Resource[Type] StringEquals 'spoofed'",
        "@Action[name] StringEquals 'spoofed'",
        "@Environment[utcnow] DateTimeLessThan '2001-01-01T00:00:00Z'",
    ] {
        assert!(!holds(text, &world), "`{text}`");
    }
    for text in [
        &format!("@Subject[id] StringEquals '{SUBJECT}'"),
        "@Subject[aliases] ForAnyOfAnyValues:StringEquals {'alice@contoso.com'}",
        "@Action[name] StringEquals 'contoso.todo/items/read'",
        "NOT (@Resource[id] StringLike '*')",
    ] {
        assert!(holds(text, &world), "`{text}`");
    }
    // `aliases` is multi-valued: a scalar operator on it is false.
    assert!(!holds(
        "@Subject[aliases] StringEquals 'alice@contoso.com'",
        &world
    ));
    let with_ids = World::default();
    assert!(holds("@Resource[id] StringEquals '42'", &with_ids));
    assert!(holds("@Resource[type] StringEquals 'todos'", &with_ids));
}

#[test]
fn utc_now_compares_with_literals_and_attributes() {
    let world = World::default(); // now = 2025-06-01T12:00:00Z
    assert!(holds(
        "@Environment[UtcNow] DateTimeGreaterThan '2025-01-01T00:00:00Z'",
        &world
    ));
    assert!(!holds(
        "@Environment[UtcNow] DateTimeLessThan '2025-06-01T12:00:00Z'",
        &world
    ));
    assert!(holds(
        "@Environment[UtcNow] DateTimeEquals '2025-06-01T14:00:00+02:00'",
        &world
    ));
    assert!(holds(
        "@Environment[UtcNow] DateTimeGreaterThanEquals @Resource[created]",
        &world
    ));
    assert!(holds(
        "@Resource[created] DateTimeLessThan @Environment[UtcNow]",
        &world
    ));
    let mut bad = World::default();
    bad.stored_resource
        .insert("created".into(), json!("yesterday"));
    assert!(!holds(
        "@Resource[created] DateTimeLessThan @Environment[UtcNow]",
        &bad
    ));
}

#[test]
fn action_matches_tests_the_checked_action_against_a_pattern() {
    let world = World::default(); // contoso.todo/items/read
    assert!(holds("ActionMatches{'contoso.todo/items/read'}", &world));
    assert!(holds("ActionMatches{'Contoso.Todo/*'}", &world));
    assert!(holds(
        "actionmatches { 'contoso.todo/allEntities/read' }",
        &world
    ));
    assert!(!holds("ActionMatches{'contoso.todo/items/delete'}", &world));
    assert!(holds(
        "!(ActionMatches{'contoso.todo/items/delete'})",
        &world
    ));
    assert!(!holds(
        "!(ActionMatches{'contoso.todo/items/read'}) OR $SubjectIsOwner",
        &world
    ));
    let upper = World {
        action_text: "Contoso.Todo/Items/Read".to_owned(),
        ..World::default()
    };
    assert!(holds("ActionMatches{'contoso.todo/items/read'}", &upper));
}

#[test]
fn each_error_names_its_position_and_what_was_expected() {
    assert_error(
        "@Resource[a] StringEqual 'x'",
        14,
        "unknown operator `StringEqual`",
    );
    assert_error("@Resource[é] StringEqual 'x'", 14, "unknown operator");
    assert_error(
        "@Foo[x] StringEquals 'a'",
        1,
        "unknown attribute source `@Foo`",
    );
    assert_error("@Resource a", 10, "expected `[` after `@Resource`");
    assert_error("@Resource[a] StringEquals 'abc", 27, "unterminated string");
    assert_error("@Resource[a StringEquals 'x'", 10, "missing `]`");
    assert_error(
        "@Resource[ ] StringEquals 'x'",
        10,
        "attribute name is not empty",
    );
    assert_error(
        &format!("@Resource[{}] StringEquals 'x'", "n".repeat(257)),
        11,
        "at most 256 characters",
    );
    assert_error(
        "(@Resource[a] StringEquals 'x'",
        31,
        "expected `)` to close the `(` at position 1",
    );
    assert_error(
        "@Resource[a] StringEquals {'x', 'y'",
        36,
        "expected `,` or `}`",
    );
    assert_error(
        "@Resource[a] StringEquals 'x' 'y'",
        31,
        "expected `AND`, `OR` or the end",
    );
    assert_error("@Resource[a] StringEquals 'x')", 30, "unmatched `)`");
    assert_error("", 1, "empty condition");
    assert_error(" \n\t", 1, "empty condition");
    assert_error(
        "@Resource[a] StringEquals",
        26,
        "expected a value after `StringEquals`",
    );
    assert_error("@Resource[a]", 13, "expected an operator");
    assert_error(
        "@Resource[a] StringEquals 'x' AND",
        34,
        "expected a comparison",
    );
    assert_error(
        "@Environment[UtcNow] DateTimeGreaterThan '2025-13-01'",
        42,
        "`2025-13-01` is not an RFC 3339 date-time",
    );
    assert_error("ActionMatches{'a//b'}", 15, "bad action pattern `a//b`");
    assert_error(
        "ActionMatches 'a/b'",
        15,
        "expected `{` after `ActionMatches`",
    );
    assert_error("ActionMatches{'a/b'", 20, "expected `}`");
    assert_error("SubOperationMatches{'Blob.List'}", 1, "not supported");
    assert_error("$SubjectIsOwnr", 1, "unknown atom `$SubjectIsOwnr`");
    assert_error("{'a'} StringEquals 'a'", 1, "a set goes on the right");
    assert_error("@Resource[n] NumericLessThan {1, 2}", 30, "not a set");
    assert_error(
        "@Resource[s] StringEquals 5",
        27,
        "compares strings; found the number `5`",
    );
    assert_error("@Resource[n] NumericEquals '5'", 28, "compares numbers");
    assert_error("@Resource[b] BoolEquals 'yes'", 25, "compares booleans");
    assert_error("@Resource[s] StringEquals {'a', 1}", 33, "compares strings");
    assert_error(
        "@Resource[s] StringEquals 'a' & $SubjectIsOwner",
        31,
        "expected `&&`",
    );
    assert_error(
        "@Resource[n] NumericEquals 1.",
        29,
        "expected a digit after `.`",
    );
    assert_error(
        "@Resource[s] StringEquals #",
        27,
        "unexpected character `#`",
    );
    let e = error("@Resource[a] StringEqual 'x'");
    assert_eq!(
        e.to_string(),
        "at position 14: unknown operator `StringEqual`"
    );
}

#[test]
fn limits_answer_errors_at_their_position() {
    let t = "$SubjectIsOwner";
    let nested = |n: usize| format!("{}{t}{}", "(".repeat(n), ")".repeat(n));
    assert!(Condition::parse(&nested(MAX_DEPTH)).is_ok());
    assert_error(&nested(MAX_DEPTH + 1), MAX_DEPTH + 1, "nests at most 32");
    assert_error(
        &format!("{}{t}", "!".repeat(40)),
        MAX_DEPTH + 1,
        "nests at most 32",
    );
    assert_error(
        &format!("{}{t}", "NOT ".repeat(40)),
        4 * MAX_DEPTH + 1,
        "nests at most 32",
    );
    // Depth is checked before recursing, however deep the input: no stack overflow.
    let no_text_limit = Limits {
        text_len: usize::MAX,
        ..Limits::DEFAULT
    };
    for hostile in [
        "(".repeat(100_000),
        "!".repeat(100_000),
        "NOT ".repeat(100_000),
    ] {
        assert!(Condition::parse(&hostile).is_err());
        let e = parse_with(&hostile, no_text_limit).unwrap_err();
        assert!(e.message.contains("nests at most"), "{e}");
    }
    // Text length, counted in bytes and reported in characters.
    let long = format!("{t} OR {}", "x".repeat(MAX_TEXT_LEN));
    assert_error(&long, MAX_TEXT_LEN + 1, "at most 4096 bytes");
    assert_error(&"a".repeat(1 << 20), MAX_TEXT_LEN + 1, "at most 4096 bytes");
    assert_error(
        &"é".repeat(1 << 19),
        MAX_TEXT_LEN / 2 + 1,
        "at most 4096 bytes",
    );
    let exactly = format!("'{}' StringEquals 'x'", "x".repeat(MAX_TEXT_LEN - 19));
    assert_eq!(exactly.len(), MAX_TEXT_LEN);
    assert!(Condition::parse(&exactly).is_ok());
    // Set items.
    let set = |n: usize| format!("@Resource[n] NumericEquals {{{}}}", vec!["1"; n].join(","));
    assert!(Condition::parse(&set(MAX_SET_ITEMS)).is_ok());
    assert_error(
        &set(MAX_SET_ITEMS + 1),
        29 + 2 * MAX_SET_ITEMS,
        "at most 256 items",
    );
    // Comparisons (unreachable within the text limit, so checked with a smaller one).
    let few = Limits {
        comparisons: 3,
        ..Limits::DEFAULT
    };
    assert!(parse_with(
        "$SubjectIsOwner OR $ResourceIsSelf OR 1 NumericEquals 1",
        few
    )
    .is_ok());
    let e = parse_with(
        "$SubjectIsOwner OR $ResourceIsSelf OR 1 NumericEquals 1 OR ActionMatches{'*'}",
        few,
    )
    .unwrap_err();
    assert_eq!(e.position, 60);
    assert!(e.message.contains("at most 3 comparisons"), "{e}");
}

#[test]
fn text_is_kept_as_written_and_equality_is_by_text() {
    let a = Condition::parse("$SubjectIsOwner").unwrap();
    let b = Condition::parse("$subjectisowner").unwrap();
    assert_eq!(a.text(), "$SubjectIsOwner");
    assert_ne!(a, b);
    assert_eq!(a, Condition::parse("$SubjectIsOwner").unwrap());
    assert_eq!(a.to_string(), "$SubjectIsOwner");
    assert_eq!(serde_json::to_value(&a).unwrap(), json!("$SubjectIsOwner"));
    let back: Condition = serde_json::from_value(json!("$SubjectIsOwner")).unwrap();
    assert_eq!(back, a);
    let bad = serde_json::from_value::<Condition>(json!("$Nope")).unwrap_err();
    assert!(bad.to_string().contains("unknown atom"), "{bad}");
}

#[test]
fn a_never_condition_keeps_its_text_and_never_holds() {
    let never = Condition::never("@Resource[x] Bogus 'y'");
    assert_eq!(never.text(), "@Resource[x] Bogus 'y'");
    assert!(!never.evaluate(&World::default().env()));
    // Its printed form means the same.
    let printed = Condition::parse(&never.root.to_string()).unwrap();
    assert!(!printed.evaluate(&World::default().env()));
}

#[test]
fn printing_gives_canonical_text_that_parses_back_the_same() {
    for (text, printed) in [
        (
            "@principal[ a b ] stringequals 'it''s'",
            "@Subject[a b] StringEquals 'it''s'",
        ),
        (
            "$SubjectIsOwner || $ResourceIsSelf && !($SubjectIsOwner || $ResourceIsSelf)",
            "$SubjectIsOwner OR $ResourceIsSelf AND NOT ($SubjectIsOwner OR $ResourceIsSelf)",
        ),
        (
            "@Resource[tags] forallofanyvalues:stringequalsignorecase {'A','b'}",
            "@Resource[tags] ForAllOfAnyValues:StringEqualsIgnoreCase {'A', 'b'}",
        ),
        (
            "@Resource[n] NumericGreaterThan -2.50",
            "@Resource[n] NumericGreaterThan -2.5",
        ),
        (
            "@Resource[f] BoolEquals 'TRUE' AND ActionMatches{'a/b'}",
            "@Resource[f] BoolEquals true AND ActionMatches{'a/b'}",
        ),
        (
            "@Environment[utcnow] DateTimeLessThan '2025-01-01T00:00:00Z'",
            "@Environment[UtcNow] DateTimeLessThan '2025-01-01T00:00:00Z'",
        ),
    ] {
        let c = Condition::parse(text).unwrap();
        assert_eq!(c.root.to_string(), printed);
        assert_eq!(Condition::parse(printed).unwrap().root.to_string(), printed);
    }
}

#[test]
fn like_is_a_glob_with_star_and_question_mark() {
    for (pattern, value, want) in [
        ("", "", true),
        ("", "a", false),
        ("*", "", true),
        ("a*", "a", true),
        ("*a", "ba", true),
        ("a*b*c", "abc", true),
        ("a*b*c", "acb", false),
        ("a*b*c", "axxbyyc", true),
        ("a?c", "abc", true),
        ("a?c", "ac", false),
        ("?", "é", true),
        ("**", "x", true),
        ("*ab*ab*", "abab", true),
        ("*ab*ab*", "aba", false),
        ("a*a", "a", false),
    ] {
        assert_eq!(like(pattern, value), want, "`{pattern}` on `{value}`");
    }
    // A pattern that backtracks badly elsewhere answers at once here.
    let value = "a".repeat(4000);
    assert!(!like(&format!("{}b", "*a".repeat(1000)), &value));
    assert!(like(&"*a".repeat(1000), &value));
}

// Random conditions.

const ATTR_NAMES: &[&str] = &["a", "b", "tags", "owners", "x:y/z<$k$>"];
const STRINGS: &[&str] = &[
    "x",
    "X",
    "y",
    "",
    "x*",
    "*",
    "?",
    "it's",
    "2025-01-01T00:00:00Z",
    "true",
    "FALSE",
];
const NUMBERS: &[f64] = &[-1.5, 0.0, 1.0, 2.0, 10.0, 0.1];
const TIMES: &[&str] = &[
    "2025-01-01T00:00:00Z",
    "2025-06-01T12:00:00Z",
    "2030-01-01T00:00:00+02:00",
];
const PATTERNS: &[&str] = &[
    "contoso.todo/items/read",
    "contoso.todo/*",
    "*",
    "contoso.todo/allEntities/read",
    "microsoft.directory/users/create",
];

fn time(s: &str) -> Timestamp {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn lit(family: Family) -> BoxedStrategy<Lit> {
    match family {
        Family::String => select(STRINGS).prop_map(|s| Lit::Str(s.into())).boxed(),
        Family::Numeric => select(NUMBERS).prop_map(Lit::Num).boxed(),
        Family::Bool => any::<bool>().prop_map(Lit::Bool).boxed(),
        Family::DateTime => select(TIMES)
            .prop_map(|s| Lit::Time(s.into(), time(s)))
            .boxed(),
    }
}

fn operand(op: Op, right: bool) -> BoxedStrategy<Operand> {
    let family = op.base.family();
    let sources = vec![
        Source::Subject,
        Source::Resource,
        Source::Action,
        Source::Environment,
    ];
    let attr = (select(sources), select(ATTR_NAMES))
        .prop_map(|(source, name)| Operand::Attr(source, name.into()));
    let builtin = select(Builtin::ALL.to_vec()).prop_map(Operand::Builtin);
    let single = lit(family).prop_map(Operand::Lit);
    if op.quant.is_some() || (right && !op.base.ordered()) {
        let set = proptest::collection::vec(lit(family), 0..4).prop_map(Operand::Set);
        prop_oneof![3 => attr, 1 => builtin, 2 => single, 2 => set].boxed()
    } else {
        prop_oneof![3 => attr, 1 => builtin, 2 => single].boxed()
    }
}

fn compare() -> impl Strategy<Value = Node> {
    let quants: Vec<Option<Quant>> = std::iter::once(None).chain(Quant::ALL.map(Some)).collect();
    (select(OPERATORS.to_vec()), select(quants))
        .prop_map(|((_, base, negated), quant): ((&str, Base, bool), _)| Op {
            quant,
            base,
            negated,
        })
        .prop_flat_map(|op| {
            (operand(op, false), operand(op, true))
                .prop_map(move |(left, right)| Node::Compare(Box::new(Compare { left, op, right })))
        })
}

fn node() -> impl Strategy<Value = Node> {
    let leaf = prop_oneof![
        1 => Just(Node::SubjectIsOwner),
        1 => Just(Node::ResourceIsSelf),
        1 => select(PATTERNS).prop_map(|p| Node::ActionMatches {
            pattern: p.into(),
            matcher: Matcher::compile(p),
        }),
        6 => compare(),
    ];
    leaf.prop_recursive(4, 24, 3, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 2..4).prop_map(Node::And),
            proptest::collection::vec(inner.clone(), 2..4).prop_map(Node::Or),
            inner.prop_map(|n| Node::Not(Box::new(n))),
        ]
    })
}

fn json_value() -> impl Strategy<Value = Value> {
    let strings: Vec<&str> = STRINGS.iter().chain(TIMES).copied().collect();
    let scalar = prop_oneof![
        3 => select(strings).prop_map(Value::from),
        2 => select(NUMBERS).prop_map(Value::from),
        1 => any::<bool>().prop_map(Value::from),
        1 => Just(Value::Null),
    ];
    prop_oneof![
        3 => scalar.clone(),
        1 => proptest::collection::vec(scalar, 0..4).prop_map(Value::Array),
    ]
}

fn attrs() -> impl Strategy<Value = Map<String, Value>> {
    let names: Vec<&str> = ATTR_NAMES
        .iter()
        .chain(&[
            "id", "type", "name", "aliases", "UtcNow", "ownerID", "owner",
        ])
        .copied()
        .collect();
    proptest::collection::vec((select(names), json_value()), 0..6)
        .prop_map(|pairs| pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

fn world() -> impl Strategy<Value = World> {
    let ids = vec!["x", "X", "y", "it's"];
    let actions = vec![
        "contoso.todo/items/read",
        "microsoft.directory/users/create",
    ];
    (
        (
            select(ids.clone()),
            proptest::collection::vec(select(ids.clone()), 0..2),
            attrs(),
            attrs(),
        ),
        (
            proptest::option::of(select(ids)),
            proptest::option::of(select(STRINGS)),
            attrs(),
            attrs(),
        ),
        (select(actions), attrs(), attrs(), select(TIMES)),
    )
        .prop_map(
            |(
                (subject_id, aliases, subject, stored_subject),
                (resource_id, resource_type, resource, stored_resource),
                (action, action_attrs, environment, now),
            )| World {
                subject_id: subject_id.to_owned(),
                aliases: aliases.into_iter().map(str::to_owned).collect(),
                subject,
                stored_subject,
                resource_id: resource_id.map(str::to_owned),
                resource_type: resource_type.map(str::to_owned),
                resource,
                stored_resource,
                action_name: action.to_owned(),
                action_text: action.to_owned(),
                action: action_attrs,
                environment,
                now: time(now),
            },
        )
}

/// Pieces of the language, right and wrong, for random token soups.
const SOUP: &[&str] = &[
    "(",
    ")",
    "{",
    "}",
    ",",
    "!",
    "&&",
    "||",
    "&",
    "AND",
    "or",
    "NOT",
    "'x'",
    "'",
    "''",
    "1",
    "-2.5",
    "-",
    "1.",
    "true",
    "@Resource[a]",
    "@Subject[id]",
    "@Subject[aliases]",
    "@Environment[UtcNow]",
    "@Foo[x]",
    "@Resource[",
    "]",
    "@",
    "$SubjectIsOwner",
    "$Nope",
    "$",
    "StringEquals",
    "StringLike",
    "ForAllOfAnyValues:StringEquals",
    "NumericLessThan",
    "DateTimeGreaterThan",
    "BoolEquals",
    "'2025-01-01T00:00:00Z'",
    "ActionMatches",
    "SubOperationMatches",
    "'contoso.todo/items/read'",
    "é",
    "\n",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn printing_a_condition_and_parsing_it_back_evaluates_the_same(
        node in node(),
        world in world(),
    ) {
        let text = node.to_string();
        prop_assume!(text.len() <= MAX_TEXT_LEN);
        let parsed = Condition::parse(&text)
            .map_err(|e| TestCaseError::fail(format!("`{text}`: {e}")))?;
        prop_assert_eq!(parsed.root.to_string(), text.clone());
        let env = world.env();
        let want = eval(&node, &env, &mut Budget::new()).ok();
        prop_assert_eq!(parsed.try_evaluate(&env), want, "`{}`", text);
    }

    #[test]
    fn parsing_random_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = Condition::parse(&text);
    }

    #[test]
    fn parsing_and_evaluating_a_token_soup_never_panics(
        tokens in proptest::collection::vec(select(SOUP), 0..30),
        glue in select(vec!["", " "]),
        world in world(),
    ) {
        let text = tokens.join(glue);
        match Condition::parse(&text) {
            Ok(c) => {
                let _ = c.evaluate(&world.env());
            }
            Err(e) => {
                prop_assert!(e.position >= 1 && e.position <= text.chars().count() + 1, "{}", e);
                prop_assert!(!e.message.is_empty());
            }
        }
    }
}
