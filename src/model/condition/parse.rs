//! Tokens to a tree, by recursive descent.
//!
//! ```text
//! or      := and (('OR' | '||') and)*
//! and     := unary (('AND' | '&&') unary)*
//! unary   := ('NOT' | '!') unary | '(' or ')' | primary
//! primary := '$SubjectIsOwner' | '$ResourceIsSelf' | 'ActionMatches' '{' string '}'
//!          | operand operator operand
//! operand := attribute | string | number | 'true' | 'false' | '{' literal (',' literal)* '}'
//! ```
//!
//! Every `NOT` and `(` counts one level of depth and is checked against [`MAX_DEPTH`]
//! before the parser recurses, so the stack is bounded whatever the input. Literal types
//! are checked against their operator here, so evaluation meets no ill-typed literal.

use chrono::{DateTime, Utc};

use super::ast::{Builtin, Compare, Family, Lit, Node, Op, Operand};
use super::lex::{lex, Kind, Token};
use super::{shorten, ConditionError, MAX_COMPARISONS, MAX_DEPTH, MAX_SET_ITEMS, MAX_TEXT_LEN};
use crate::engine::pattern::Matcher;
use crate::model::ActionPattern;

fn err(position: usize, message: impl Into<String>) -> ConditionError {
    ConditionError {
        position,
        message: message.into(),
    }
}

/// The limits a parse enforces: the module's constants, smaller or larger in tests.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    pub text_len: usize,
    pub depth: usize,
    pub comparisons: usize,
    pub set_items: usize,
}

impl Limits {
    pub const DEFAULT: Limits = Limits {
        text_len: MAX_TEXT_LEN,
        depth: MAX_DEPTH,
        comparisons: MAX_COMPARISONS,
        set_items: MAX_SET_ITEMS,
    };
}

/// Parses a whole condition.
pub(super) fn parse(src: &str) -> Result<Node, ConditionError> {
    parse_with(src, Limits::DEFAULT)
}

/// Parses a whole condition within `limits`.
pub(super) fn parse_with(src: &str, limits: Limits) -> Result<Node, ConditionError> {
    if src.len() > limits.text_len {
        // Counts at most `text_len` characters, however long the text.
        let position = src
            .char_indices()
            .take_while(|(b, _)| *b < limits.text_len)
            .count()
            + 1;
        return Err(err(
            position,
            format!("a condition is at most {} bytes", limits.text_len),
        ));
    }
    if src.trim().is_empty() {
        return Err(err(
            1,
            "empty condition: expected a comparison such as `@Resource[name] StringEquals 'value'`",
        ));
    }
    let tokens = lex(src)?;
    let end = tokens.last().cloned().unwrap_or(Token {
        kind: Kind::End,
        pos: 1,
        span: 0..0,
    });
    let mut parser = Parser {
        src,
        tokens,
        next: 0,
        end,
        limits,
        comparisons: 0,
    };
    let node = parser.or(0)?;
    let tok = parser.peek();
    match tok.kind {
        Kind::End => Ok(node),
        Kind::RParen => Err(err(tok.pos, "unmatched `)`")),
        _ => Err(err(
            tok.pos,
            format!(
                "expected `AND`, `OR` or the end of the condition; found {}",
                parser.describe(tok)
            ),
        )),
    }
}

/// A literal before its operator is known.
enum RawLit {
    Str(String),
    Num(f64),
    Bool(bool),
}

/// An operand before its operator is known, with the positions its errors need.
enum Raw {
    Ready(Operand),
    Lit(RawLit, usize),
    Set(Vec<(RawLit, usize)>, usize),
}

struct Parser<'s> {
    src: &'s str,
    tokens: Vec<Token>,
    next: usize,
    /// Returned by `peek` past the end (the token list always ends with one anyway).
    end: Token,
    limits: Limits,
    /// Leaves seen so far, against `limits.comparisons`.
    comparisons: usize,
}

impl<'s> Parser<'s> {
    fn peek(&self) -> Token {
        self.tokens
            .get(self.next)
            .cloned()
            .unwrap_or_else(|| self.end.clone())
    }

    fn bump(&mut self) {
        if self.next < self.tokens.len() {
            self.next += 1;
        }
    }

    fn text(&self, tok: &Token) -> &'s str {
        self.src.get(tok.span.clone()).unwrap_or("")
    }

    fn is_word(&self, tok: &Token, word: &str) -> bool {
        tok.kind == Kind::Word && self.text(tok).eq_ignore_ascii_case(word)
    }

    /// A token for a message: `text` in backticks, shortened, or "the end of the condition".
    fn describe(&self, tok: Token) -> String {
        if tok.kind == Kind::End {
            return "the end of the condition".to_owned();
        }
        format!("`{}`", shorten(self.text(&tok)))
    }

    fn deeper(&self, depth: usize, tok: &Token) -> Result<usize, ConditionError> {
        if depth >= self.limits.depth {
            return Err(err(
                tok.pos,
                format!(
                    "a condition nests at most {} parentheses and `NOT`s deep",
                    self.limits.depth
                ),
            ));
        }
        Ok(depth + 1)
    }

    fn count_comparison(&mut self, pos: usize) -> Result<(), ConditionError> {
        self.comparisons += 1;
        if self.comparisons > self.limits.comparisons {
            return Err(err(
                pos,
                format!(
                    "a condition holds at most {} comparisons",
                    self.limits.comparisons
                ),
            ));
        }
        Ok(())
    }

    fn or(&mut self, depth: usize) -> Result<Node, ConditionError> {
        let mut items = vec![self.and(depth)?];
        loop {
            let tok = self.peek();
            if tok.kind == Kind::OrOr || self.is_word(&tok, "or") {
                self.bump();
                items.push(self.and(depth)?);
            } else {
                break;
            }
        }
        Ok(match items.len() {
            1 => items.swap_remove(0),
            _ => Node::Or(items),
        })
    }

    fn and(&mut self, depth: usize) -> Result<Node, ConditionError> {
        let mut items = vec![self.unary(depth)?];
        loop {
            let tok = self.peek();
            if tok.kind == Kind::AndAnd || self.is_word(&tok, "and") {
                self.bump();
                items.push(self.unary(depth)?);
            } else {
                break;
            }
        }
        Ok(match items.len() {
            1 => items.swap_remove(0),
            _ => Node::And(items),
        })
    }

    fn unary(&mut self, depth: usize) -> Result<Node, ConditionError> {
        // INVARIANT: every recursion back into `unary` (directly or through `or`) passes
        // `deeper`, so the stack holds at most `limits.depth` levels of three frames.
        let tok = self.peek();
        if tok.kind == Kind::Bang || self.is_word(&tok, "not") {
            let depth = self.deeper(depth, &tok)?;
            self.bump();
            return Ok(Node::Not(Box::new(self.unary(depth)?)));
        }
        if tok.kind == Kind::LParen {
            let depth = self.deeper(depth, &tok)?;
            self.bump();
            let inner = self.or(depth)?;
            let close = self.peek();
            if close.kind != Kind::RParen {
                return Err(err(
                    close.pos,
                    format!(
                        "expected `)` to close the `(` at position {}; found {}",
                        tok.pos,
                        self.describe(close.clone())
                    ),
                ));
            }
            self.bump();
            return Ok(inner);
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Node, ConditionError> {
        let tok = self.peek();
        if tok.kind == Kind::Atom {
            self.count_comparison(tok.pos)?;
            self.bump();
            let name = self.text(&tok).get(1..).unwrap_or("");
            return if name.eq_ignore_ascii_case("SubjectIsOwner") {
                Ok(Node::SubjectIsOwner)
            } else if name.eq_ignore_ascii_case("ResourceIsSelf") {
                Ok(Node::ResourceIsSelf)
            } else {
                Err(err(
                    tok.pos,
                    format!(
                        "unknown atom `${}`; expected `$SubjectIsOwner` or `$ResourceIsSelf`",
                        shorten(name)
                    ),
                ))
            };
        }
        if self.is_word(&tok, "ActionMatches") {
            self.count_comparison(tok.pos)?;
            self.bump();
            return self.action_matches();
        }
        if self.is_word(&tok, "SubOperationMatches") {
            return Err(err(
                tok.pos,
                "`SubOperationMatches` is not supported: Rolecall actions have no sub-operations",
            ));
        }
        self.comparison()
    }

    fn action_matches(&mut self) -> Result<Node, ConditionError> {
        let open = self.peek();
        if open.kind != Kind::LBrace {
            return Err(err(
                open.pos,
                format!(
                    "expected `{{` after `ActionMatches`; found {}",
                    self.describe(open.clone())
                ),
            ));
        }
        self.bump();
        let tok = self.peek();
        let Kind::Str(pattern) = &tok.kind else {
            return Err(err(
                tok.pos,
                format!(
                    "expected an action pattern in quotes, such as `'contoso.todo/items/read'`; found {}",
                    self.describe(tok.clone())
                ),
            ));
        };
        if let Err(e) = ActionPattern::parse(pattern) {
            return Err(err(
                tok.pos,
                format!(
                    "bad action pattern `{}` in `ActionMatches`: {e}",
                    shorten(pattern)
                ),
            ));
        }
        self.bump();
        let close = self.peek();
        if close.kind != Kind::RBrace {
            return Err(err(
                close.pos,
                format!(
                    "expected `}}` to close the `{{` at position {}; found {}",
                    open.pos,
                    self.describe(close.clone())
                ),
            ));
        }
        self.bump();
        Ok(Node::ActionMatches {
            pattern: pattern.as_str().into(),
            matcher: Matcher::compile(pattern),
        })
    }

    fn comparison(&mut self) -> Result<Node, ConditionError> {
        let first = self.peek();
        let left = self.operand(None)?;
        self.count_comparison(first.pos)?;
        let tok = self.peek();
        let op = match tok.kind {
            Kind::Word => {
                let name = self.text(&tok);
                Op::lookup(name)
                    .ok_or_else(|| err(tok.pos, format!("unknown operator `{}`", shorten(name))))?
            }
            _ => {
                return Err(err(
                    tok.pos,
                    format!(
                        "expected an operator such as `StringEquals`; found {}",
                        self.describe(tok.clone())
                    ),
                ))
            }
        };
        self.bump();
        let right = self.operand(Some(op))?;
        Ok(Node::Compare(Box::new(Compare {
            left: finish(left, op, false)?,
            op,
            right: finish(right, op, true)?,
        })))
    }

    fn literal(&mut self, tok: &Token) -> Option<RawLit> {
        let lit = match &tok.kind {
            Kind::Str(s) => RawLit::Str(s.clone()),
            Kind::Num(n) => RawLit::Num(*n),
            Kind::Word if self.is_word(tok, "true") => RawLit::Bool(true),
            Kind::Word if self.is_word(tok, "false") => RawLit::Bool(false),
            _ => return None,
        };
        self.bump();
        Some(lit)
    }

    /// One operand; `after` is the operator before it (`None` for the left operand).
    fn operand(&mut self, after: Option<Op>) -> Result<Raw, ConditionError> {
        let tok = self.peek();
        if let Kind::Attr(source, name) = &tok.kind {
            self.bump();
            return Ok(Raw::Ready(match Builtin::lookup(*source, name) {
                Some(builtin) => Operand::Builtin(builtin),
                None => Operand::Attr(*source, name.as_str().into()),
            }));
        }
        if let Some(lit) = self.literal(&tok) {
            return Ok(Raw::Lit(lit, tok.pos));
        }
        if tok.kind == Kind::LBrace {
            self.bump();
            return self.set(tok.pos).map(|items| Raw::Set(items, tok.pos));
        }
        let expected = match after {
            None => "expected a comparison, `$SubjectIsOwner`, `$ResourceIsSelf`, \
                     `ActionMatches`, `NOT` or `(`"
                .to_owned(),
            Some(op) => format!("expected a value after `{op}`"),
        };
        Err(err(
            tok.pos,
            format!("{expected}; found {}", self.describe(tok.clone())),
        ))
    }

    /// The items of a set whose `{` (at `open`) was just read.
    fn set(&mut self, open: usize) -> Result<Vec<(RawLit, usize)>, ConditionError> {
        let mut items = Vec::new();
        if self.peek().kind == Kind::RBrace {
            self.bump();
            return Ok(items);
        }
        loop {
            let tok = self.peek();
            let Some(lit) = self.literal(&tok) else {
                return Err(err(
                    tok.pos,
                    format!(
                        "expected a string, a number or a boolean in the set; found {}",
                        self.describe(tok.clone())
                    ),
                ));
            };
            if items.len() >= self.limits.set_items {
                return Err(err(
                    tok.pos,
                    format!("a set holds at most {} items", self.limits.set_items),
                ));
            }
            items.push((lit, tok.pos));
            let next = self.peek();
            match next.kind {
                Kind::Comma => self.bump(),
                Kind::RBrace => {
                    self.bump();
                    return Ok(items);
                }
                _ => {
                    return Err(err(
                        next.pos,
                        format!(
                            "expected `,` or `}}` to close the `{{` at position {open}; found {}",
                            self.describe(next.clone())
                        ),
                    ))
                }
            }
        }
    }
}

/// Checks a raw operand against its operator and types its literals.
fn finish(raw: Raw, op: Op, right: bool) -> Result<Operand, ConditionError> {
    match raw {
        Raw::Ready(operand) => Ok(operand),
        Raw::Lit(lit, pos) => Ok(Operand::Lit(typed(lit, pos, op)?)),
        Raw::Set(items, pos) => {
            if op.quant.is_none() {
                if !right {
                    return Err(err(pos, format!("a set goes on the right of `{op}`")));
                }
                if op.base.ordered() {
                    return Err(err(
                        pos,
                        format!("`{op}` compares with one value, not a set"),
                    ));
                }
            }
            let items = items
                .into_iter()
                .map(|(lit, pos)| typed(lit, pos, op))
                .collect::<Result<_, _>>()?;
            Ok(Operand::Set(items))
        }
    }
}

fn typed(lit: RawLit, pos: usize, op: Op) -> Result<Lit, ConditionError> {
    let family = op.base.family();
    match (family, lit) {
        (Family::String, RawLit::Str(s)) => Ok(Lit::Str(s.into())),
        (Family::Numeric, RawLit::Num(n)) => Ok(Lit::Num(n)),
        (Family::Bool, RawLit::Bool(b)) => Ok(Lit::Bool(b)),
        (Family::Bool, RawLit::Str(s)) if s.eq_ignore_ascii_case("true") => Ok(Lit::Bool(true)),
        (Family::Bool, RawLit::Str(s)) if s.eq_ignore_ascii_case("false") => Ok(Lit::Bool(false)),
        (Family::DateTime, RawLit::Str(s)) => match DateTime::parse_from_rfc3339(&s) {
            Ok(t) => Ok(Lit::Time(s.into(), t.with_timezone(&Utc))),
            Err(_) => Err(err(
                pos,
                format!(
                    "`{}` is not an RFC 3339 date-time such as `2025-01-31T09:00:00Z`",
                    shorten(&s)
                ),
            )),
        },
        (_, lit) => {
            let found = match lit {
                RawLit::Str(s) => format!("the string `{}`", shorten(&s)),
                RawLit::Num(n) => format!("the number `{n}`"),
                RawLit::Bool(b) => format!("`{b}`"),
            };
            Err(err(
                pos,
                format!("`{op}` compares {}; found {found}", family.what()),
            ))
        }
    }
}
