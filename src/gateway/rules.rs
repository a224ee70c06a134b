//! `[[gateway.routes]]`: rules that map a request's method, path and host to an action and a
//! resource path, validated once at start (and at each reload) into a table sorted most
//! specific first, so the first rule that matches is the one that wins.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;

use super::path::{normalize, PathError};
use crate::config::{GatewaySettings, MethodSetting, RouteSettings, Secret, MIN_ADMIN_KEY_LEN};
use crate::model::{encode_segment, Action, Scope};

/// Why the `[gateway]` settings are refused. The message names the key at fault, or both
/// rules of a conflict.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    /// One `[[gateway.routes]]` entry is invalid.
    #[error("invalid `gateway.routes[{index}]`: {message}")]
    Route {
        /// Its position in the file (0-based).
        index: usize,
        /// What is wrong, naming the field.
        message: String,
    },
    /// Two rules match the same requests, equally specifically, with different outcomes.
    #[error("`gateway.routes[{first}]` and `gateway.routes[{second}]` match the same requests ({requests}) with different outcomes; make one more specific or remove one")]
    Conflict {
        /// The earlier rule's position.
        first: usize,
        /// The later rule's position.
        second: usize,
        /// The requests both match, e.g. `GET /api/apps/{appId}`.
        requests: String,
    },
    /// Another `[gateway]` key is invalid.
    #[error("invalid `gateway.{key}`: {message}")]
    Setting {
        /// The key.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// What a request no rule matches gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Unmatched {
    /// 403 (the default: fail closed).
    #[default]
    Deny,
    /// 200 for any authenticated caller.
    Allow,
}

/// One segment of a path pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// Matches exactly this (decoded) text.
    Literal(String),
    /// `{name}`: any one segment.
    One,
    /// `{name*}`: one or more segments, the rest of the path.
    Rest,
}

impl Segment {
    /// Literal segments are more specific than placeholders, `{name}` than `{name*}`.
    fn rank(&self) -> u8 {
        match self {
            Segment::Literal(_) => 2,
            Segment::One => 1,
            Segment::Rest => 0,
        }
    }
}

/// A piece of an `action` or `resource` template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    /// The value of the path's n-th placeholder.
    Capture(usize),
}

/// What a placeholder matched: one segment, or the rest of the path.
#[derive(Debug, Clone, Copy)]
enum Captured<'a> {
    One(&'a str),
    Rest(&'a [Cow<'a, str>]),
}

/// Which methods a rule applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Methods {
    Any,
    /// Uppercase.
    Listed(Vec<String>),
}

impl Methods {
    fn matches(&self, method: &str) -> bool {
        match self {
            Methods::Any => true,
            Methods::Listed(list) => list.iter().any(|m| m.eq_ignore_ascii_case(method)),
        }
    }

    fn overlaps(&self, other: &Methods) -> bool {
        match (self, other) {
            (Methods::Listed(a), Methods::Listed(b)) => a.iter().any(|m| b.contains(m)),
            _ => true,
        }
    }
}

impl fmt::Display for Methods {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Methods::Any => f.write_str("*"),
            Methods::Listed(list) => f.write_str(&list.join("|")),
        }
    }
}

/// One validated `[[gateway.routes]]` rule.
#[derive(Debug, Clone)]
struct Rule {
    /// Its position in the file, for messages and [`Target::rule`].
    index: usize,
    methods: Methods,
    /// Lowercase, without a port.
    host: Option<String>,
    pattern: Vec<Segment>,
    /// The placeholders' names, in path order.
    names: Vec<String>,
    /// As written, for messages.
    path: String,
    action: Vec<Piece>,
    resource: Vec<Piece>,
}

/// Compares specificity: literal segments over placeholders (left to right), then longer
/// paths, then a rule for a host over one for any host, then listed methods over `*`.
type Specificity = (Vec<u8>, bool, bool);

impl Rule {
    fn new(index: usize, settings: &RouteSettings) -> Result<Rule, GatewayError> {
        let fail = |message: String| GatewayError::Route { index, message };
        let methods = methods(&settings.method).map_err(|e| fail(format!("`method`: {e}")))?;
        let host = settings
            .host
            .as_deref()
            .map(rule_host)
            .transpose()
            .map_err(|e| fail(format!("`host`: {e}")))?;
        let (pattern, names) = pattern(&settings.path).map_err(|e| fail(format!("`path`: {e}")))?;
        let action =
            template(&settings.action, &names).map_err(|e| fail(format!("`action`: {e}")))?;
        let resource =
            template(&settings.resource, &names).map_err(|e| fail(format!("`resource`: {e}")))?;
        if let Some(i) = action.iter().find_map(|p| match p {
            Piece::Capture(i) if capture_kind(&pattern, *i) == Some(&Segment::Rest) => Some(*i),
            _ => None,
        }) {
            return Err(fail(format!(
                "`action`: `{{{}}}` holds several segments and cannot be part of an action",
                names[i]
            )));
        }
        if !settings.resource.starts_with('/') {
            return Err(fail(format!(
                "`resource` starts with `/`; got `{}`",
                settings.resource
            )));
        }
        let rule = Rule {
            index,
            methods,
            host,
            pattern,
            names,
            path: settings.path.clone(),
            action,
            resource,
        };
        // A sample request must give a valid action and resource path, so a template that
        // never could (`bad action`, `/a//{id}`) is refused now, not at each request.
        let sample: Vec<Cow<'_, str>> = vec![Cow::Borrowed("x")];
        let captures: Vec<Captured<'_>> = rule
            .pattern
            .iter()
            .filter_map(|s| match s {
                Segment::Literal(_) => None,
                Segment::One => Some(Captured::One("x")),
                Segment::Rest => Some(Captured::Rest(&sample)),
            })
            .collect();
        rule.render_action(&captures)
            .map_err(|e| fail(format!("`action` does not make an action: {e}")))?;
        rule.render_resource(&captures)
            .map_err(|e| fail(format!("`resource` does not make a resource path: {e}")))?;
        Ok(rule)
    }

    fn specificity(&self) -> Specificity {
        (
            self.pattern.iter().map(Segment::rank).collect(),
            self.host.is_some(),
            matches!(self.methods, Methods::Listed(_)),
        )
    }

    /// True when some request matches both rules.
    fn overlaps(&self, other: &Rule) -> bool {
        let same_shape = self.pattern.len() == other.pattern.len()
            && self
                .pattern
                .iter()
                .zip(&other.pattern)
                .all(|(a, b)| match (a, b) {
                    (Segment::Literal(a), Segment::Literal(b)) => a == b,
                    (Segment::Literal(_), _) | (_, Segment::Literal(_)) => false,
                    _ => true,
                });
        same_shape && self.host == other.host && self.methods.overlaps(&other.methods)
    }

    /// What the rule's placeholders captured from `segments`, when it matches.
    fn matches<'a>(
        &self,
        method: &str,
        host: Option<&str>,
        segments: &'a [Cow<'a, str>],
    ) -> Option<Vec<Captured<'a>>> {
        if !self.methods.matches(method) {
            return None;
        }
        if let Some(wanted) = &self.host {
            if host != Some(wanted.as_str()) {
                return None;
            }
        }
        let mut captures = Vec::with_capacity(self.names.len());
        for (i, segment) in self.pattern.iter().enumerate() {
            match segment {
                Segment::Rest => {
                    let rest = segments.get(i..).filter(|r| !r.is_empty())?;
                    captures.push(Captured::Rest(rest));
                    return Some(captures);
                }
                Segment::One => captures.push(Captured::One(segments.get(i)?.as_ref())),
                Segment::Literal(text) => {
                    if segments.get(i)?.as_ref() != text {
                        return None;
                    }
                }
            }
        }
        (segments.len() == self.pattern.len()).then_some(captures)
    }

    fn render_action(&self, captures: &[Captured<'_>]) -> Result<Action, String> {
        let mut text = String::new();
        for piece in &self.action {
            match piece {
                Piece::Text(t) => text.push_str(t),
                // A value that is not made of action characters fails to parse below.
                Piece::Capture(i) => match captures.get(*i) {
                    Some(Captured::One(value)) => text.push_str(value),
                    _ => return Err(format!("no value for `{{{}}}`", self.names[*i])),
                },
            }
        }
        Action::parse(&text).map_err(|e| format!("`{text}`: {e}"))
    }

    fn render_resource(&self, captures: &[Captured<'_>]) -> Result<Scope, String> {
        let mut text = String::new();
        for piece in &self.resource {
            match piece {
                Piece::Text(t) => text.push_str(t),
                // Each value is one segment however it is spelled: `/` and every other
                // character outside RFC 3986's unreserved set are percent-encoded.
                Piece::Capture(i) => match captures.get(*i) {
                    Some(Captured::One(value)) => text.push_str(&encode_segment(value)),
                    Some(Captured::Rest(values)) => {
                        for (n, value) in values.iter().enumerate() {
                            if n > 0 {
                                text.push('/');
                            }
                            text.push_str(&encode_segment(value));
                        }
                    }
                    None => return Err(format!("no value for `{{{}}}`", self.names[*i])),
                },
            }
        }
        Scope::parse(&text).map_err(|e| format!("`{text}`: {e}"))
    }

    fn describe(&self) -> String {
        match &self.host {
            Some(host) => format!("{} {}{}", self.methods, host, self.path),
            None => format!("{} {}", self.methods, self.path),
        }
    }
}

fn capture_kind(pattern: &[Segment], capture: usize) -> Option<&Segment> {
    pattern
        .iter()
        .filter(|s| !matches!(s, Segment::Literal(_)))
        .nth(capture)
}

fn methods(setting: &MethodSetting) -> Result<Methods, String> {
    let list: Vec<&str> = match setting {
        MethodSetting::One(one) => vec![one.as_str()],
        MethodSetting::Many(many) => many.iter().map(String::as_str).collect(),
    };
    if list.contains(&"*") {
        return if list.len() == 1 {
            Ok(Methods::Any)
        } else {
            Err("`*` stands alone, not in a list".to_owned())
        };
    }
    if list.is_empty() {
        return Err("give a method, a list of methods, or `*`".to_owned());
    }
    let mut methods = Vec::with_capacity(list.len());
    for m in list {
        if m.is_empty() || !m.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(format!("`{m}` is not an HTTP method such as `GET`"));
        }
        let m = m.to_ascii_uppercase();
        if !methods.contains(&m) {
            methods.push(m);
        }
    }
    Ok(Methods::Listed(methods))
}

fn rule_host(raw: &str) -> Result<String, String> {
    let valid = !raw.is_empty()
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if !valid {
        return Err(format!(
            "`{raw}` is not a host name (letters, digits, `-` and `.`; no port)"
        ));
    }
    Ok(raw.trim_end_matches('.').to_ascii_lowercase())
}

/// A request's host as rules compare it: lowercase, without a port or a final `.`.
pub(super) fn request_host(raw: &str) -> &str {
    let without_port = match raw.rfind(':') {
        Some(colon) if !raw[colon..].contains(']') => &raw[..colon],
        _ => raw,
    };
    without_port.trim_end_matches('.')
}

/// The segments of a path pattern and its placeholders' names.
fn pattern(path: &str) -> Result<(Vec<Segment>, Vec<String>), String> {
    let rest = path
        .strip_prefix('/')
        .ok_or_else(|| format!("starts with `/`; got `{path}`"))?;
    let mut segments = Vec::new();
    let mut names: Vec<String> = Vec::new();
    if rest.is_empty() {
        return Ok((segments, names));
    }
    let count = rest.split('/').count();
    for (i, raw) in rest.split('/').enumerate() {
        if raw.is_empty() {
            return Err(format!("`{path}` has an empty segment"));
        }
        let segment = if let Some(inner) = raw.strip_prefix('{').and_then(|r| r.strip_suffix('}')) {
            let (name, rest) = match inner.strip_suffix('*') {
                Some(name) => (name, true),
                None => (inner, false),
            };
            if !is_name(name) {
                return Err(format!(
                    "`{raw}` is not a placeholder such as `{{id}}` or `{{rest*}}`"
                ));
            }
            if names.iter().any(|n| n == name) {
                return Err(format!("`{path}` uses `{{{name}}}` twice"));
            }
            if rest && i + 1 != count {
                return Err(format!(
                    "`{raw}` takes the rest of the path, so it comes last"
                ));
            }
            names.push(name.to_owned());
            if rest {
                Segment::Rest
            } else {
                Segment::One
            }
        } else if raw.contains(['{', '}']) {
            return Err(format!(
                "`{raw}`: a placeholder is a whole segment, such as `{{id}}`"
            ));
        } else {
            // Literals compare with decoded request segments, so they are decoded (and
            // checked) the same way.
            let rooted = format!("/{raw}");
            let decoded = normalize(&rooted).map_err(|e| format!("`{raw}`: {e}"))?;
            match decoded.as_slice() {
                [one] => Segment::Literal(one.clone().into_owned()),
                _ => return Err(format!("`{raw}` is not a plain segment (no `.` or `..`)")),
            }
        };
        segments.push(segment);
    }
    Ok((segments, names))
}

fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// An `action` or `resource` template: text and `{name}`s of the path's placeholders.
fn template(text: &str, names: &[String]) -> Result<Vec<Piece>, String> {
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
        let name = after[..close].trim_end_matches('*');
        let index = names.iter().position(|n| n == name).ok_or_else(|| {
            format!("`{text}` uses `{{{name}}}`, which is not a placeholder of `path`")
        })?;
        pieces.push(Piece::Capture(index));
        rest = &after[close + 1..];
    }
    if rest.contains('}') {
        return Err(format!("`{text}` has a `}}` without its `{{`"));
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest.to_owned()));
    }
    Ok(pieces)
}

/// Where a request goes: the action and the resource path its rule gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The action to check.
    pub action: Action,
    /// The resource path to check it at.
    pub resource: Scope,
    /// The rule's position in `[[gateway.routes]]` (0-based).
    pub rule: usize,
    /// Each placeholder's name and decoded value (a `{name*}`'s segments joined by `/`), for
    /// conditions to read as `@Resource[name]`.
    pub captures: Vec<(String, String)>,
}

/// Why a request cannot be put to the engine: it is denied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// The original path is refused (see [`super::path`]).
    #[error(transparent)]
    Path(#[from] PathError),
    /// The matching rule's template, filled with this request's values, is no valid action
    /// or resource path (e.g. a placeholder value with characters an action cannot hold).
    #[error(
        "`gateway.routes[{rule}]` maps this request to no valid action and resource: {message}"
    )]
    Unmappable {
        /// The rule.
        rule: usize,
        /// Why.
        message: String,
    },
}

/// The validated `[gateway]` settings: route rules (most specific first), what an unmatched
/// request gets, and the secret a gateway must send. Immutable; a reload builds a new one.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    rules: Vec<Rule>,
    unmatched: Unmatched,
    shared_secret: Option<Secret>,
}

impl Routes {
    /// Validates `[gateway]`: every rule on its own, then every pair of rules that match the
    /// same requests equally specifically, which must agree on the outcome.
    pub fn new(settings: &GatewaySettings) -> Result<Routes, GatewayError> {
        let unmatched = match settings.unmatched.as_deref() {
            None | Some("deny") => Unmatched::Deny,
            Some("allow") => Unmatched::Allow,
            Some(other) => {
                return Err(GatewayError::Setting {
                    key: "unmatched",
                    message: format!("`{other}` is neither `deny` nor `allow`"),
                })
            }
        };
        let shared_secret = match &settings.shared_secret {
            Some(secret) if secret.len() < MIN_ADMIN_KEY_LEN => {
                return Err(GatewayError::Setting {
                    key: "shared_secret",
                    message: format!("a shared secret is at least {MIN_ADMIN_KEY_LEN} bytes"),
                })
            }
            Some(secret) => Some(Secret::new(secret.clone())),
            None => None,
        };
        let mut rules = settings
            .routes
            .iter()
            .enumerate()
            .map(|(index, s)| Rule::new(index, s))
            .collect::<Result<Vec<_>, _>>()?;
        // Stable: rules of equal specificity keep file order (they never overlap with
        // different outcomes, checked below).
        rules.sort_by_key(|rule| std::cmp::Reverse(rule.specificity()));
        for (i, a) in rules.iter().enumerate() {
            for b in &rules[i + 1..] {
                if a.specificity().cmp(&b.specificity()) != Ordering::Equal {
                    break;
                }
                if a.overlaps(b) && (a.action != b.action || a.resource != b.resource) {
                    let (first, second) = (a.index.min(b.index), a.index.max(b.index));
                    return Err(GatewayError::Conflict {
                        first,
                        second,
                        requests: a.describe(),
                    });
                }
            }
        }
        Ok(Routes {
            rules,
            unmatched,
            shared_secret,
        })
    }

    /// How many rules there are.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// True with no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// What a request no rule matches gets.
    pub fn unmatched(&self) -> Unmatched {
        self.unmatched
    }

    /// The secret a gateway must send in `X-Rolecall-Gateway-Secret`, when configured.
    pub fn shared_secret(&self) -> Option<&Secret> {
        self.shared_secret.as_ref()
    }

    /// The action and resource the most specific rule matching `method`, the original
    /// `uri` (origin or absolute form; its query is ignored) and `host` (port ignored) gives;
    /// `Ok(None)` when no rule matches (see [`Routes::unmatched`]). An error is a request
    /// that must be denied: its path is refused, or its rule cannot map it.
    pub fn resolve(
        &self,
        method: &str,
        uri: &str,
        host: Option<&str>,
    ) -> Result<Option<Target>, ResolveError> {
        let segments = normalize(uri)?;
        let host = host.map(|h| request_host(h).to_ascii_lowercase());
        for rule in &self.rules {
            let Some(captures) = rule.matches(method, host.as_deref(), &segments) else {
                continue;
            };
            let unmappable = |message| ResolveError::Unmappable {
                rule: rule.index,
                message,
            };
            let action = rule.render_action(&captures).map_err(unmappable)?;
            let resource = rule.render_resource(&captures).map_err(unmappable)?;
            let captures = rule
                .names
                .iter()
                .zip(&captures)
                .map(|(name, captured)| {
                    let value = match captured {
                        Captured::One(value) => (*value).to_owned(),
                        Captured::Rest(values) => values.join("/"),
                    };
                    (name.clone(), value)
                })
                .collect();
            return Ok(Some(Target {
                action,
                resource,
                rule: rule.index,
                captures,
            }));
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes(toml: &str) -> Result<Routes, GatewayError> {
        #[derive(serde::Deserialize)]
        struct File {
            gateway: GatewaySettings,
        }
        let file: File = toml::from_str(toml).expect("valid TOML");
        Routes::new(&file.gateway)
    }

    fn target(
        routes: &Routes,
        method: &str,
        uri: &str,
        host: Option<&str>,
    ) -> Option<(String, String)> {
        routes
            .resolve(method, uri, host)
            .expect("resolves")
            .map(|t| (t.action.as_str().to_owned(), t.resource.as_str().to_owned()))
    }

    const APPS: &str = r#"
[gateway]
unmatched = "deny"
[[gateway.routes]]
method = "GET"
path = "/api/apps/{appId}/credentials"
action = "contoso.apps/credentials/read"
resource = "/applications/{appId}"
host = "api.contoso.test"
[[gateway.routes]]
method = ["POST", "put"]
path = "/api/apps/{appId}/credentials"
action = "contoso.apps/credentials/update"
resource = "/applications/{appId}"
[[gateway.routes]]
method = "*"
path = "/api/apps/{appId}/{rest*}"
action = "contoso.apps/{appId}/any"
resource = "/applications/{appId}/{rest}"
[[gateway.routes]]
method = "GET"
path = "/api/apps/new/credentials"
action = "contoso.apps/new/read"
resource = "/"
"#;

    #[test]
    fn the_documented_shape_maps_a_request_to_an_action_and_a_resource() {
        let r = routes(APPS).unwrap();
        assert_eq!(r.len(), 4);
        assert_eq!(r.unmatched(), Unmatched::Deny);
        assert_eq!(
            target(
                &r,
                "GET",
                "/api/apps/A1/credentials?x=1",
                Some("API.contoso.test:443")
            ),
            Some((
                "contoso.apps/credentials/read".into(),
                "/applications/A1".into()
            ))
        );
        assert_eq!(
            target(&r, "put", "/api/apps/A1/credentials", None),
            Some((
                "contoso.apps/credentials/update".into(),
                "/applications/A1".into()
            ))
        );
        assert_eq!(target(&r, "GET", "/api/apps", None), None);
        assert_eq!(target(&r, "GET", "/other", None), None);
    }

    #[test]
    fn the_most_specific_rule_wins_whatever_the_file_order() {
        let r = routes(APPS).unwrap();
        // The literal `new` beats `{appId}`; a host rule beats no host; `{x}` beats `{x*}`.
        assert_eq!(
            target(
                &r,
                "GET",
                "/api/apps/new/credentials",
                Some("api.contoso.test")
            ),
            Some(("contoso.apps/new/read".into(), "/".into()))
        );
        assert_eq!(
            target(
                &r,
                "GET",
                "/api/apps/A1/credentials",
                Some("api.contoso.test")
            ),
            Some((
                "contoso.apps/credentials/read".into(),
                "/applications/A1".into()
            ))
        );
        // Another host: the host rule does not match, the `{rest*}` rule does.
        assert_eq!(
            target(&r, "GET", "/api/apps/A1/credentials", Some("other.test")),
            Some((
                "contoso.apps/A1/any".into(),
                "/applications/A1/credentials".into()
            ))
        );
        assert_eq!(
            target(&r, "DELETE", "/api/apps/A1/keys/k1", None),
            Some((
                "contoso.apps/A1/any".into(),
                "/applications/A1/keys/k1".into()
            ))
        );
        // `{rest*}` takes one segment at least.
        assert_eq!(target(&r, "DELETE", "/api/apps/A1", None), None);
    }

    #[test]
    fn a_traversal_is_decided_where_it_lands_and_ids_stay_one_segment() {
        let r = routes(APPS).unwrap();
        assert_eq!(
            target(&r, "POST", "/api/apps/A/../B/credentials", None),
            Some((
                "contoso.apps/credentials/update".into(),
                "/applications/B".into()
            ))
        );
        assert_eq!(
            target(&r, "POST", "/api/apps/beth@x%20y/credentials", None),
            Some((
                "contoso.apps/credentials/update".into(),
                "/applications/beth%40x%20y".into()
            ))
        );
        assert!(matches!(
            r.resolve("GET", "/api/apps/A%2F..%2FB/credentials", None),
            Err(ResolveError::Path(PathError::EncodedSlash))
        ));
        // A value that cannot be part of an action: denied, not guessed.
        assert!(matches!(
            r.resolve("GET", "/api/apps/a%20b/x", None),
            Err(ResolveError::Unmappable { rule: 2, .. })
        ));
    }

    #[test]
    fn rules_are_validated_at_start_naming_the_key() {
        let one = |fields: &str| {
            routes(&format!("[gateway]\n[[gateway.routes]]\n{fields}"))
                .unwrap_err()
                .to_string()
        };
        let base = "method = \"GET\"\naction = \"a.b/c\"\nresource = \"/r\"\n";
        for (fields, expected) in [
            ("path = \"api/x\"", "`path`: starts with `/`"),
            ("path = \"/a//b\"", "empty segment"),
            ("path = \"/a/{rest*}/b\"", "comes last"),
            ("path = \"/a/v{id}\"", "whole segment"),
            ("path = \"/a/{id}/{id}\"", "twice"),
            ("path = \"/a/{1d}\"", "not a placeholder"),
            ("path = \"/a/..\"", "`..`"),
            ("path = \"/a/.\"", "not a plain segment"),
        ] {
            let message = one(&format!("{base}{fields}"));
            assert!(message.contains("gateway.routes[0]"), "{message}");
            assert!(message.contains(expected), "{fields}: {message}");
        }
        for (fields, expected) in [
            (
                "method = \"GET\"\npath = \"/a/{id}\"\naction = \"a.b/{name}\"\nresource = \"/r\"",
                "`{name}`, which is not a placeholder",
            ),
            (
                "method = \"GET\"\npath = \"/a/{id}\"\naction = \"a.b/c\"\nresource = \"/r/{nope}\"",
                "`resource`",
            ),
            (
                "method = \"GET\"\npath = \"/a/{id}\"\naction = \"a b/c\"\nresource = \"/r\"",
                "does not make an action",
            ),
            (
                "method = \"GET\"\npath = \"/a/{id}\"\naction = \"a.b/c\"\nresource = \"r/{id}\"",
                "starts with `/`",
            ),
            (
                "method = \"GET\"\npath = \"/a/{id}\"\naction = \"a.b/c\"\nresource = \"/r//{id}\"",
                "does not make a resource path",
            ),
            (
                "method = \"GET\"\npath = \"/a/{p*}\"\naction = \"a.b/{p}\"\nresource = \"/r\"",
                "several segments",
            ),
            (
                "method = \"G T\"\npath = \"/a\"\naction = \"a.b/c\"\nresource = \"/r\"",
                "`method`",
            ),
            (
                "method = [\"*\", \"GET\"]\npath = \"/a\"\naction = \"a.b/c\"\nresource = \"/r\"",
                "stands alone",
            ),
            (
                "method = \"GET\"\npath = \"/a\"\naction = \"a.b/c\"\nresource = \"/r\"\nhost = \"a.test:80\"",
                "`host`",
            ),
        ] {
            let message = one(fields);
            assert!(message.contains(expected), "{fields}: {message}");
        }
        let bad = routes("[gateway]\nunmatched = \"maybe\"").unwrap_err();
        assert!(bad.to_string().contains("gateway.unmatched"), "{bad}");
        let short = routes("[gateway]\nshared_secret = \"short\"").unwrap_err();
        assert!(
            short.to_string().contains("gateway.shared_secret"),
            "{short}"
        );
    }

    #[test]
    fn two_rules_for_the_same_requests_with_different_outcomes_are_refused_naming_both() {
        let conflict = routes(
            r#"
[gateway]
[[gateway.routes]]
method = "GET"
path = "/x"
action = "a.b/c"
resource = "/r"
[[gateway.routes]]
method = ["GET", "POST"]
path = "/api/apps/{appId}"
action = "a.b/read"
resource = "/applications/{appId}"
[[gateway.routes]]
method = "GET"
path = "/api/apps/{id}"
action = "a.b/read"
resource = "/apps/{id}"
"#,
        )
        .unwrap_err();
        assert_eq!(
            conflict,
            GatewayError::Conflict {
                first: 1,
                second: 2,
                requests: "GET|POST /api/apps/{appId}".to_owned()
            }
        );
        assert!(conflict
            .to_string()
            .contains("`gateway.routes[1]` and `gateway.routes[2]`"));
        // The same outcome under other placeholder names, other methods, another host, or
        // a more specific method list: no conflict.
        routes(
            r#"
[gateway]
[[gateway.routes]]
method = "GET"
path = "/api/apps/{appId}"
action = "a.b/read"
resource = "/applications/{appId}"
[[gateway.routes]]
method = "GET"
path = "/api/apps/{id}"
action = "a.b/read"
resource = "/applications/{id}"
[[gateway.routes]]
method = "DELETE"
path = "/api/apps/{id}"
action = "a.b/delete"
resource = "/applications/{id}"
[[gateway.routes]]
method = "GET"
host = "other.test"
path = "/api/apps/{id}"
action = "a.b/other"
resource = "/applications/{id}"
[[gateway.routes]]
method = "*"
path = "/api/apps/{id}"
action = "a.b/any"
resource = "/applications/{id}"
"#,
        )
        .unwrap();
    }
}
