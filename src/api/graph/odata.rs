//! The OData query subset that scripts written against Microsoft Graph's role management
//! send: `$filter` with `eq` joined by `and` (string literals in single quotes with `''` for
//! a quote, booleans, `null` and bare guids), `$select`, `$top`, `$expand` and the
//! `$skiptoken` of an `@odata.nextLink`. Everything else is refused with Graph's
//! `Request_UnsupportedQuery` (a query Graph would understand but Rolecall does not serve) or
//! `BadRequest` (a query that does not parse), never silently ignored: a dropped filter
//! would widen a listing.
//!
//! A hand parser rather than a crate: the subset is a dozen lines of grammar, and the OData
//! crates on crates.io implement far more than is served here, so every construct they
//! accept would need refusing again.

use uuid::Uuid;

use super::GraphError;

/// The largest `$top`: Graph's page size limit for directory objects.
pub const MAX_TOP: u32 = 999;

/// The longest `$filter` accepted, in bytes.
const MAX_FILTER_LEN: usize = 2048;

/// The most comparisons one `$filter` may hold.
const MAX_COMPARISONS: usize = 16;

/// A literal on the right of `eq`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Literal {
    /// `'text'`, with `''` read as one `'`.
    Text(String),
    /// `true` or `false`.
    Bool(bool),
    /// A bare guid, as OData writes `Edm.Guid` values.
    Guid(Uuid),
    /// `null`.
    Null,
}

impl Literal {
    /// The literal as a guid: a bare guid, or text that is one (Graph's ids are strings).
    pub fn guid(&self, property: &str) -> Result<Uuid, GraphError> {
        match self {
            Literal::Guid(id) => Ok(*id),
            Literal::Text(text) => Uuid::parse_str(text).map_err(|_| {
                GraphError::bad_request(format!(
                    "Invalid filter clause: `{text}` is not a valid guid for property `{property}`"
                ))
            }),
            other => Err(type_mismatch(property, other, "a guid")),
        }
    }

    /// The literal as text.
    pub fn text(&self, property: &str) -> Result<String, GraphError> {
        match self {
            Literal::Text(text) => Ok(text.clone()),
            Literal::Guid(id) => Ok(id.to_string()),
            other => Err(type_mismatch(property, other, "a string")),
        }
    }

    /// The literal as a boolean.
    pub fn boolean(&self, property: &str) -> Result<bool, GraphError> {
        match self {
            Literal::Bool(b) => Ok(*b),
            other => Err(type_mismatch(property, other, "`true` or `false`")),
        }
    }
}

fn type_mismatch(property: &str, literal: &Literal, wanted: &str) -> GraphError {
    GraphError::bad_request(format!(
        "Invalid filter clause: property `{property}` is compared with {wanted}, not {}",
        match literal {
            Literal::Text(t) => format!("'{t}'"),
            Literal::Bool(b) => b.to_string(),
            Literal::Guid(g) => g.to_string(),
            Literal::Null => "null".to_owned(),
        }
    ))
}

/// One `property eq literal` of a `$filter`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comparison {
    /// The property as written.
    pub property: String,
    /// What it must equal.
    pub value: Literal,
}

/// The query options of one request, parsed but not yet checked against an entity.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// `$filter`: every comparison must hold (`and`).
    pub filter: Vec<Comparison>,
    /// `$filter` as sent, repeated in `@odata.nextLink`.
    pub raw_filter: Option<String>,
    /// `$select`: the properties to return; `None` for all.
    pub select: Option<Vec<String>>,
    /// `$top`: the page size.
    pub top: Option<u32>,
    /// `$expand`: the navigation properties to include.
    pub expand: Vec<String>,
    /// `$skiptoken`: where the previous page stopped.
    pub skip_token: Option<String>,
}

/// Query options Graph defines that these paths do not serve.
const UNSUPPORTED: [&str; 9] = [
    "$count",
    "$orderby",
    "$search",
    "$skip",
    "$format",
    "$apply",
    "$compute",
    "$levels",
    "$deltatoken",
];

/// Parses a request's query string. Option names are matched ignoring case and surrounding
/// spaces (Graph's own documentation writes `$filter = principalId eq '…'`); each may appear
/// once.
pub fn parse(query: Option<&str>) -> Result<Options, GraphError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or(""))
        .map_err(|e| GraphError::bad_request(format!("the query string does not parse: {e}")))?;
    let mut options = Options::default();
    let mut seen: Vec<String> = Vec::new();
    for (name, value) in pairs {
        let name = name.trim().to_ascii_lowercase();
        let value = value.trim().to_owned();
        if seen.contains(&name) {
            return Err(GraphError::bad_request(format!(
                "Query option `{name}` is specified more than once"
            )));
        }
        seen.push(name.clone());
        match name.as_str() {
            "$filter" => {
                options.filter = parse_filter(&value)?;
                options.raw_filter = Some(value);
            }
            "$select" => options.select = Some(list(&name, &value)?),
            "$expand" => options.expand = list(&name, &value)?,
            "$top" => options.top = Some(top(&value)?),
            "$skiptoken" => options.skip_token = Some(value),
            other if UNSUPPORTED.contains(&other) => {
                return Err(GraphError::unsupported(format!(
                    "Query option `{other}` is not supported on this resource"
                )))
            }
            other => {
                return Err(GraphError::unsupported(format!(
                    "Query option `{other}` is not supported: this resource takes $filter, \
                     $select, $top, $expand and $skiptoken"
                )))
            }
        }
    }
    Ok(options)
}

fn top(raw: &str) -> Result<u32, GraphError> {
    match raw.parse::<u32>() {
        Ok(n) if (1..=MAX_TOP).contains(&n) => Ok(n),
        _ => Err(GraphError::bad_request(format!(
            "Invalid page size specified: `$top` is an integer from 1 to {MAX_TOP}; got `{raw}`"
        ))),
    }
}

/// A comma-separated list of plain names (`$select`, `$expand`); nested options such as
/// `principal($select=id)` are refused.
fn list(option: &str, raw: &str) -> Result<Vec<String>, GraphError> {
    let mut names = Vec::new();
    for name in raw.split(',').map(str::trim) {
        if name.is_empty() {
            return Err(GraphError::bad_request(format!(
                "`{option}` holds an empty name"
            )));
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '@' || c == '.')
        {
            return Err(GraphError::unsupported(format!(
                "`{option}={raw}`: only plain property names are supported, not `{name}`"
            )));
        }
        names.push(name.to_owned());
    }
    Ok(names)
}

/// One token of a `$filter`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// A name, keyword, `true`/`false`/`null`, number or bare guid.
    Word(String),
    /// A quoted string, unescaped.
    Text(String),
    Open,
    Close,
    Comma,
}

fn tokens(raw: &str) -> Result<Vec<Token>, GraphError> {
    let mut out = Vec::new();
    let mut chars = raw.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            ' ' | '\t' => {
                chars.next();
            }
            '(' => {
                chars.next();
                out.push(Token::Open);
            }
            ')' => {
                chars.next();
                out.push(Token::Close);
            }
            ',' => {
                chars.next();
                out.push(Token::Comma);
            }
            '\'' => {
                chars.next();
                let mut text = String::new();
                loop {
                    match chars.next() {
                        Some('\'') if chars.peek() == Some(&'\'') => {
                            chars.next();
                            text.push('\'');
                        }
                        Some('\'') => break,
                        Some(c) => text.push(c),
                        None => {
                            return Err(GraphError::bad_request(
                                "Invalid filter clause: a string literal is not closed with `'`",
                            ))
                        }
                    }
                }
                out.push(Token::Text(text));
            }
            c if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '/' | '$' | '@') => {
                let mut word = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '/' | '$' | '@') {
                        word.push(c);
                        chars.next();
                    } else {
                        break;
                    }
                }
                out.push(Token::Word(word));
            }
            other => {
                return Err(GraphError::bad_request(format!(
                    "Invalid filter clause: unexpected character `{other}`"
                )))
            }
        }
    }
    Ok(out)
}

/// Operators and functions of OData that Graph knows and these paths do not serve.
const OTHER_OPERATORS: [&str; 9] = ["ne", "gt", "ge", "lt", "le", "in", "has", "or", "not"];

/// `comparison ('and' comparison)*`, where a comparison may sit in parentheses.
fn parse_filter(raw: &str) -> Result<Vec<Comparison>, GraphError> {
    if raw.is_empty() {
        return Err(GraphError::bad_request(
            "Invalid filter clause: `$filter` is empty",
        ));
    }
    if raw.len() > MAX_FILTER_LEN {
        return Err(GraphError::bad_request(format!(
            "Invalid filter clause: `$filter` is longer than {MAX_FILTER_LEN} bytes"
        )));
    }
    let tokens = tokens(raw)?;
    let mut parser = Parser {
        tokens: &tokens,
        at: 0,
        out: Vec::new(),
    };
    parser.conjunction()?;
    if let Some(token) = parser.peek() {
        return Err(parser.unexpected(token));
    }
    if parser.out.len() > MAX_COMPARISONS {
        return Err(GraphError::unsupported(format!(
            "a `$filter` holds at most {MAX_COMPARISONS} comparisons"
        )));
    }
    Ok(parser.out)
}

struct Parser<'a> {
    tokens: &'a [Token],
    at: usize,
    out: Vec<Comparison>,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.at).cloned();
        self.at += 1;
        token
    }

    fn is_word(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(word))
    }

    fn unexpected(&self, token: &Token) -> GraphError {
        if let Token::Word(word) = token {
            let lower = word.to_ascii_lowercase();
            if OTHER_OPERATORS.contains(&lower.as_str()) {
                return GraphError::unsupported(format!(
                    "Unsupported query: the `{lower}` operator is not supported; `$filter` takes \
                     `eq` comparisons joined by `and`"
                ));
            }
        }
        GraphError::bad_request(format!(
            "Invalid filter clause: unexpected {}",
            describe(Some(token))
        ))
    }

    fn conjunction(&mut self) -> Result<(), GraphError> {
        self.term()?;
        while self.is_word("and") {
            self.next();
            self.term()?;
        }
        Ok(())
    }

    fn term(&mut self) -> Result<(), GraphError> {
        match self.next() {
            Some(Token::Open) => {
                self.conjunction()?;
                match self.next() {
                    Some(Token::Close) => Ok(()),
                    other => Err(GraphError::bad_request(format!(
                        "Invalid filter clause: expected `)`, found {}",
                        describe(other.as_ref())
                    ))),
                }
            }
            Some(Token::Word(word)) => {
                let lower = word.to_ascii_lowercase();
                if lower == "not" {
                    return Err(self.unexpected(&Token::Word(word)));
                }
                if self.peek() == Some(&Token::Open) {
                    return Err(GraphError::unsupported(format!(
                        "Unsupported query: the function `{word}` is not supported; `$filter` \
                         takes `eq` comparisons joined by `and`"
                    )));
                }
                if word.contains('/') {
                    return Err(GraphError::unsupported(format!(
                        "Unsupported query: `{word}` is a navigation path; filter on the \
                         entity's own properties"
                    )));
                }
                match self.next() {
                    Some(Token::Word(op)) if op.eq_ignore_ascii_case("eq") => {}
                    Some(token) => return Err(self.unexpected(&token)),
                    None => {
                        return Err(GraphError::bad_request(format!(
                            "Invalid filter clause: `{word}` is not followed by an operator"
                        )))
                    }
                }
                let value = self.literal()?;
                self.out.push(Comparison {
                    property: word,
                    value,
                });
                Ok(())
            }
            other => Err(GraphError::bad_request(format!(
                "Invalid filter clause: expected a property, found {}",
                describe(other.as_ref())
            ))),
        }
    }

    fn literal(&mut self) -> Result<Literal, GraphError> {
        match self.next() {
            Some(Token::Text(text)) => Ok(Literal::Text(text)),
            Some(Token::Word(word)) => match word.to_ascii_lowercase().as_str() {
                "true" => Ok(Literal::Bool(true)),
                "false" => Ok(Literal::Bool(false)),
                "null" => Ok(Literal::Null),
                _ => match Uuid::parse_str(&word) {
                    Ok(id) if word.len() == 36 => Ok(Literal::Guid(id)),
                    _ => Err(GraphError::bad_request(format!(
                        "Invalid filter clause: `{word}` is not a literal; quote strings as \
                         'text'"
                    ))),
                },
            },
            other => Err(GraphError::bad_request(format!(
                "Invalid filter clause: expected a literal, found {}",
                describe(other.as_ref())
            ))),
        }
    }
}

fn describe(token: Option<&Token>) -> String {
    match token {
        None => "the end of the filter".to_owned(),
        Some(Token::Word(w)) => format!("`{w}`"),
        Some(Token::Text(t)) => format!("'{t}'"),
        Some(Token::Open) => "`(`".to_owned(),
        Some(Token::Close) => "`)`".to_owned(),
        Some(Token::Comma) => "`,`".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(raw: &str) -> Result<Vec<Comparison>, GraphError> {
        parse_filter(raw)
    }

    #[test]
    fn eq_comparisons_joined_by_and_parse_with_every_literal_kind() {
        let parsed = filter(
            "principalId eq 'f8ca5a85-489a-49a0-b555-0a6d81e56f0d' and (isBuiltIn eq false) \
             and roleDefinitionId eq 62e90394-69f5-4237-9190-012177145e10 and displayName eq 'O''Brien'",
        )
        .unwrap();
        let values: Vec<&Literal> = parsed.iter().map(|c| &c.value).collect();
        assert_eq!(
            values,
            [
                &Literal::Text("f8ca5a85-489a-49a0-b555-0a6d81e56f0d".to_owned()),
                &Literal::Bool(false),
                &Literal::Guid(Uuid::parse_str("62e90394-69f5-4237-9190-012177145e10").unwrap()),
                &Literal::Text("O'Brien".to_owned()),
            ]
        );
    }

    #[test]
    fn other_operators_and_functions_are_unsupported_not_malformed() {
        for raw in [
            "displayName ne 'x'",
            "displayName eq 'x' or displayName eq 'y'",
            "startswith(displayName,'x')",
            "not (isBuiltIn eq true)",
            "principal/id eq 'x'",
            "principalId in ('a','b')",
        ] {
            let error = filter(raw).unwrap_err();
            assert_eq!(error.code, "Request_UnsupportedQuery", "{raw}: {error:?}");
        }
    }

    #[test]
    fn broken_filters_are_bad_requests() {
        for raw in [
            "",
            "displayName eq 'open",
            "displayName eq",
            "eq 'x'",
            "(displayName eq 'x'",
            "displayName eq 'x' and",
            "displayName eq bare",
            "displayName eq 'x' ; drop",
        ] {
            let error = filter(raw).unwrap_err();
            assert_eq!(error.code, "BadRequest", "{raw}: {error:?}");
        }
    }

    #[test]
    fn option_names_are_read_loosely_and_unknown_options_refused() {
        let options = parse(Some("%24filter%20=%20principalId%20eq%20'a'&$TOP=5")).unwrap();
        assert_eq!(options.filter.len(), 1);
        assert_eq!(options.top, Some(5));
        assert_eq!(
            parse(Some("$orderby=displayName")).unwrap_err().code,
            "Request_UnsupportedQuery"
        );
        assert_eq!(
            parse(Some("limit=5")).unwrap_err().code,
            "Request_UnsupportedQuery"
        );
        assert_eq!(parse(Some("$top=0")).unwrap_err().code, "BadRequest");
        assert_eq!(parse(Some("$top=1&$top=2")).unwrap_err().code, "BadRequest");
    }
}
