//! How AuthZEN entities name Rolecall's: the `[[authzen.mappings]]` rules that turn a
//! resource's `type` and `id` into a resource path, and an action's `name` into an action.
//!
//! Each rule applies to one resource type (or `*`); the first rule matching a request's
//! `resource.type` wins. A rule's `path` template defaults to `/{type}/{id}` and its `action`
//! template to the name itself when it contains `/`, else `{type}/{name}`. A placeholder
//! inserts exactly one path segment: every character outside RFC 3986's unreserved set is
//! percent-encoded, so an id such as `/users/alice` can never climb into another scope.

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::{Action, Scope};

/// Everything but RFC 3986 unreserved characters (`ALPHA / DIGIT / "-" / "." / "_" / "~"`).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// One placeholder's value, percent-encoded into a single path segment.
pub fn encode_segment(value: &str) -> String {
    utf8_percent_encode(value, SEGMENT).to_string()
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Type,
    Id,
    Name,
}

/// A template such as `/todos/{id}` or `todo.app/{name}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template(Vec<Piece>);

impl Template {
    /// Parses `text`, allowing the placeholders named in `allowed` (of `type`, `id`, `name`).
    pub fn parse(text: &str, allowed: &[&str]) -> Result<Template, String> {
        let mut pieces = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_owned()));
            }
            let after = &rest[open + 1..];
            let close = after
                .find('}')
                .ok_or_else(|| format!("`{text}` has a `{{` without its `}}`"))?;
            let name = &after[..close];
            if !allowed.contains(&name) {
                let allowed = allowed
                    .iter()
                    .map(|a| format!("`{{{a}}}`"))
                    .collect::<Vec<_>>()
                    .join(", ");
                return Err(format!(
                    "`{text}` uses the unknown placeholder `{{{name}}}`; this template may use {allowed}"
                ));
            }
            pieces.push(match name {
                "type" => Piece::Type,
                "id" => Piece::Id,
                _ => Piece::Name,
            });
            rest = &after[close + 1..];
        }
        if rest.contains('}') {
            return Err(format!("`{text}` has a `}}` without its `{{`"));
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_owned()));
        }
        Ok(Template(pieces))
    }

    fn uses(&self, wanted: &Piece) -> bool {
        self.0.iter().any(|p| p == wanted)
    }

    /// The name `{name}` must take for this template to give `action` (ASCII case aside),
    /// when it holds `{name}` exactly once.
    fn name_for(&self, entity: &Named<'_>, action: &str) -> Option<String> {
        let at = self.0.iter().position(|p| *p == Piece::Name)?;
        if self.0[at + 1..].contains(&Piece::Name) {
            return None;
        }
        let prefix = Template(self.0[..at].to_vec()).render(entity);
        let suffix = Template(self.0[at + 1..].to_vec()).render(entity);
        strip_around(action, &prefix, &suffix)
    }

    fn render(&self, entity: &Named<'_>) -> String {
        let mut out = String::new();
        for piece in &self.0 {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Type => out.push_str(&encode_segment(entity.resource_type)),
                Piece::Id => out.push_str(&encode_segment(entity.resource_id)),
                Piece::Name => out.push_str(&encode_segment(entity.action_name)),
            }
        }
        out
    }
}

/// `text` without `prefix` and `suffix` (ASCII case aside), percent-decoded; `None` when
/// they are not there or nothing (or no valid UTF-8) is left between them.
fn strip_around(text: &str, prefix: &str, suffix: &str) -> Option<String> {
    if text.len() <= prefix.len() + suffix.len()
        || !text.is_char_boundary(prefix.len())
        || !text.is_char_boundary(text.len() - suffix.len())
    {
        return None;
    }
    let (head, rest) = text.split_at(prefix.len());
    let (middle, tail) = rest.split_at(rest.len() - suffix.len());
    if !head.eq_ignore_ascii_case(prefix) || !tail.eq_ignore_ascii_case(suffix) {
        return None;
    }
    percent_decode_str(middle)
        .decode_utf8()
        .ok()
        .map(|name| name.into_owned())
}

/// The names one AuthZEN request gives.
#[derive(Debug, Clone, Copy)]
pub struct Named<'a> {
    /// `resource.type`.
    pub resource_type: &'a str,
    /// `resource.id`.
    pub resource_id: &'a str,
    /// `action.name`.
    pub action_name: &'a str,
}

/// One `[[authzen.mappings]]` rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// `None` for `*`.
    resource_type: Option<String>,
    path: Option<Template>,
    action: Option<Template>,
}

impl Mapping {
    /// Validates one rule. `path` must start with `/`; placeholders are `{type}` and `{id}`
    /// in `path`, and `{type}`, `{id}` and `{name}` in `action`.
    pub fn new(
        resource_type: &str,
        path: Option<&str>,
        action: Option<&str>,
    ) -> Result<Mapping, String> {
        if resource_type.is_empty() {
            return Err("`resource_type` is a type name or `*`".to_owned());
        }
        let path = match path {
            None => None,
            Some(p) if !p.starts_with('/') => {
                return Err(format!("`path` starts with `/`; got `{p}`"));
            }
            Some(p) => {
                Some(Template::parse(p, &["type", "id"]).map_err(|e| format!("`path`: {e}"))?)
            }
        };
        let action = action
            .map(|a| {
                Template::parse(a, &["type", "id", "name"]).map_err(|e| format!("`action`: {e}"))
            })
            .transpose()?;
        let rule = Mapping {
            resource_type: (resource_type != "*").then(|| resource_type.to_owned()),
            path,
            action,
        };
        // A sample request must map to a valid path and action, so a template that never
        // could (`/a//{id}`, `bad action/{name}`) is refused at start.
        let sample = Named {
            resource_type: rule.resource_type.as_deref().unwrap_or("type"),
            resource_id: "id",
            action_name: "name",
        };
        rule.path(&sample)
            .map_err(|e| format!("`path` does not make a resource path: {e}"))?;
        rule.action(&sample)
            .map_err(|e| format!("`action` does not make an action: {e}"))?;
        Ok(rule)
    }

    fn applies_to(&self, resource_type: &str) -> bool {
        self.resource_type
            .as_deref()
            .is_none_or(|t| t == resource_type)
    }

    fn path(&self, named: &Named<'_>) -> Result<Scope, String> {
        path_of(self.path.as_ref(), named)
    }

    fn action(&self, named: &Named<'_>) -> Result<Action, String> {
        action_of(self.action.as_ref(), named)
    }
}

/// The path `template` (or the default `/{type}/{id}`) gives `named`.
fn path_of(template: Option<&Template>, named: &Named<'_>) -> Result<Scope, String> {
    let text = match template {
        Some(template) => template.render(named),
        None => format!(
            "/{}/{}",
            encode_segment(named.resource_type),
            encode_segment(named.resource_id)
        ),
    };
    Scope::parse(&text).map_err(|e| format!("`{text}`: {e}"))
}

/// The action `template` (or the default) gives `named`.
fn action_of(template: Option<&Template>, named: &Named<'_>) -> Result<Action, String> {
    let text = match template {
        Some(template) => template.render(named),
        None => default_action(named),
    };
    Action::parse(&text).map_err(|e| format!("`{text}`: {e}"))
}

fn default_action(named: &Named<'_>) -> String {
    if named.action_name.contains('/') {
        named.action_name.to_owned()
    } else {
        format!(
            "{}/{}",
            encode_segment(named.resource_type),
            encode_segment(named.action_name)
        )
    }
}

/// The configured rules, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mappings(Vec<Mapping>);

impl Mappings {
    /// The rules, first match wins.
    pub fn new(rules: Vec<Mapping>) -> Mappings {
        Mappings(rules)
    }

    fn rule(&self, resource_type: &str) -> Option<&Mapping> {
        self.0.iter().find(|m| m.applies_to(resource_type))
    }

    /// The resource path `named` maps to (`/{type}/{id}` when no rule says otherwise).
    pub fn path(&self, named: &Named<'_>) -> Result<Scope, String> {
        let rule = self.rule(named.resource_type);
        path_of(rule.and_then(|r| r.path.as_ref()), named)
    }

    /// The action `named` maps to.
    pub fn action(&self, named: &Named<'_>) -> Result<Action, String> {
        let rule = self.rule(named.resource_type);
        action_of(rule.and_then(|r| r.action.as_ref()), named)
    }

    /// Whether the action a name maps to for `resource_type` depends on the resource's id
    /// (its rule's `action` template uses `{id}`).
    pub fn action_uses_id(&self, resource_type: &str) -> bool {
        self.rule(resource_type)
            .and_then(|r| r.action.as_ref())
            .is_some_and(|t| t.uses(&Piece::Id))
    }

    /// The AuthZEN action name that maps to `action` on this resource (the rule's template
    /// reversed; ASCII case aside), or `None` when no name does. Under the default rule the
    /// short form (`read` for `record/read`) is preferred to the action itself.
    pub fn name_of(&self, resource_type: &str, resource_id: &str, action: &str) -> Option<String> {
        let template = self.rule(resource_type).and_then(|r| r.action.as_ref());
        let named = Named {
            resource_type,
            resource_id,
            action_name: "",
        };
        let candidates: Vec<String> = match template {
            Some(template) => template.name_for(&named, action).into_iter().collect(),
            None => {
                let prefix = format!("{}/", encode_segment(resource_type));
                let short = strip_around(action, &prefix, "").filter(|n| !n.contains('/'));
                short.into_iter().chain([action.to_owned()]).collect()
            }
        };
        candidates.into_iter().find(|name| {
            let named = Named {
                action_name: name,
                ..named
            };
            action_of(template, &named).is_ok_and(|a| a.as_str().eq_ignore_ascii_case(action))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named<'a>(t: &'a str, id: &'a str, name: &'a str) -> Named<'a> {
        Named {
            resource_type: t,
            resource_id: id,
            action_name: name,
        }
    }

    #[test]
    fn defaults_put_the_type_and_id_in_the_path_and_qualify_bare_action_names() {
        let m = Mappings::default();
        let n = named("record", "record-1", "read");
        assert_eq!(m.path(&n).unwrap().as_str(), "/record/record-1");
        assert_eq!(m.action(&n).unwrap().as_str(), "record/read");
        let full = named("record", "r", "contoso.records/records/read");
        assert_eq!(
            m.action(&full).unwrap().as_str(),
            "contoso.records/records/read"
        );
    }

    #[test]
    fn an_id_is_one_segment_however_it_is_spelled() {
        let m = Mappings::new(vec![
            Mapping::new("user", Some("/users/{id}"), None).unwrap()
        ]);
        let n = named("user", "/users/../admin", "read");
        assert_eq!(m.path(&n).unwrap().as_str(), "/users/%2Fusers%2F..%2Fadmin");
        let email = named("user", "beth@the-smiths.com", "read");
        assert_eq!(
            m.path(&email).unwrap().as_str(),
            "/users/beth%40the-smiths.com"
        );
    }

    #[test]
    fn the_first_rule_for_the_type_wins_and_star_matches_any_type() {
        let m = Mappings::new(vec![
            Mapping::new("todo", Some("/todos/{id}"), Some("todo.app/{name}")).unwrap(),
            Mapping::new("*", Some("/things/{type}/{id}"), None).unwrap(),
            Mapping::new("todo", Some("/never/{id}"), None).unwrap(),
        ]);
        let todo = named("todo", "t1", "can_update_todo");
        assert_eq!(m.path(&todo).unwrap().as_str(), "/todos/t1");
        assert_eq!(
            m.action(&todo).unwrap().as_str(),
            "todo.app/can_update_todo"
        );
        let other = named("car", "c1", "drive");
        assert_eq!(m.path(&other).unwrap().as_str(), "/things/car/c1");
        assert_eq!(m.action(&other).unwrap().as_str(), "car/drive");
    }

    #[test]
    fn bad_rules_are_refused_with_a_reason() {
        let unknown = Mapping::new("todo", Some("/todos/{name}"), None).unwrap_err();
        assert!(unknown.contains("`{name}`"), "{unknown}");
        let relative = Mapping::new("todo", Some("todos/{id}"), None).unwrap_err();
        assert!(relative.contains("starts with `/`"), "{relative}");
        let open = Mapping::new("todo", None, Some("todo.app/{name")).unwrap_err();
        assert!(open.contains("without its"), "{open}");
        let bad_action = Mapping::new("todo", None, Some("todo app/{name}")).unwrap_err();
        assert!(
            bad_action.contains("does not make an action"),
            "{bad_action}"
        );
        assert!(Mapping::new("", None, None).is_err());
    }

    #[test]
    fn action_names_come_back_from_their_actions() {
        let m = Mappings::new(vec![
            Mapping::new("todo", None, Some("todo.app/{name}")).unwrap(),
            Mapping::new("doc", None, Some("docs/{type}.{name}/do")).unwrap(),
            Mapping::new("fixed", None, Some("fixed/thing/do")).unwrap(),
        ]);
        assert_eq!(
            m.name_of("todo", "t1", "todo.app/can_read_todos")
                .as_deref(),
            Some("can_read_todos")
        );
        assert_eq!(
            m.name_of("todo", "t1", "TODO.APP/can_read").as_deref(),
            Some("can_read")
        );
        assert_eq!(m.name_of("todo", "t1", "other.app/can_read"), None);
        assert_eq!(m.name_of("todo", "t1", "todo.app/a/b"), None);
        assert_eq!(
            m.name_of("doc", "d", "docs/doc.edit/do").as_deref(),
            Some("edit")
        );
        assert_eq!(m.name_of("fixed", "f", "fixed/thing/do"), None);
        // The default rule: `record/read` is `read`; anything else is its own name.
        assert_eq!(
            m.name_of("record", "r", "record/read").as_deref(),
            Some("read")
        );
        assert_eq!(
            m.name_of("record", "r", "contoso.records/records/read")
                .as_deref(),
            Some("contoso.records/records/read")
        );
        for (kind, name) in [("todo", "can_read"), ("record", "write"), ("doc", "x")] {
            let n = named(kind, "id", name);
            let action = m.action(&n).unwrap();
            assert_eq!(
                m.name_of(kind, "id", action.as_str()).as_deref(),
                Some(name)
            );
        }
        assert!(!m.action_uses_id("todo"));
        let by_id = Mappings::new(vec![Mapping::new("t", None, Some("t/{id}/{name}")).unwrap()]);
        assert!(by_id.action_uses_id("t"));
        assert_eq!(by_id.name_of("t", "x1", "t/x1/go").as_deref(), Some("go"));
        assert_eq!(by_id.name_of("t", "x2", "t/x1/go"), None);
    }

    #[test]
    fn a_name_that_cannot_be_an_action_is_an_error_not_a_guess() {
        let m = Mappings::default();
        assert!(m.action(&named("record", "r", "read everything")).is_err());
    }
}
