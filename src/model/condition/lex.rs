//! Text to tokens, each with its 1-based character position.
//!
//! The whole text (at most [`MAX_TEXT_LEN`](super::MAX_TEXT_LEN) bytes, checked before) is
//! tokenized up front in one pass. Attributes (`@Source[name]`) and strings are single
//! tokens, so the parser never sees their insides.

use std::ops::Range;

use super::ast::Source;
use super::{shorten, ConditionError, MAX_NAME_LEN};

/// What a token is.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Kind {
    LParen,
    RParen,
    LBrace,
    RBrace,
    Comma,
    /// `!`
    Bang,
    /// `&&`
    AndAnd,
    /// `||`
    OrOr,
    /// A keyword or operator name: letters, digits, `_` and `:`, starting with a letter or `_`.
    Word,
    /// `$name`.
    Atom,
    /// A string literal, unescaped.
    Str(String),
    /// A number literal (finite).
    Num(f64),
    /// `@Source[name]`, the name trimmed.
    Attr(Source, String),
    /// After the last token.
    End,
}

/// A token and where it stands.
#[derive(Debug, Clone)]
pub(super) struct Token {
    pub kind: Kind,
    /// 1-based character position of its first character.
    pub pos: usize,
    /// Its bytes in the text.
    pub span: Range<usize>,
}

fn err(position: usize, message: impl Into<String>) -> ConditionError {
    ConditionError {
        position,
        message: message.into(),
    }
}

fn is_word_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// Splits `src` into tokens, ending with one [`Kind::End`].
pub(super) fn lex(src: &str) -> Result<Vec<Token>, ConditionError> {
    let chars: Vec<(usize, char)> = src.char_indices().collect();
    // Byte offset of the character at index `i` (the text's length past the end).
    let at = |i: usize| chars.get(i).map_or(src.len(), |(b, _)| *b);
    let ch = |i: usize| chars.get(i).map(|(_, c)| *c);
    let mut tokens = Vec::new();
    let mut i = 0;
    while let Some(c) = ch(i) {
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        let pos = i + 1;
        let kind = match c {
            '(' => {
                i += 1;
                Kind::LParen
            }
            ')' => {
                i += 1;
                Kind::RParen
            }
            '{' => {
                i += 1;
                Kind::LBrace
            }
            '}' => {
                i += 1;
                Kind::RBrace
            }
            ',' => {
                i += 1;
                Kind::Comma
            }
            '!' => {
                i += 1;
                Kind::Bang
            }
            '&' | '|' => {
                if ch(i + 1) != Some(c) {
                    return Err(err(pos, format!("unexpected `{c}`; expected `{c}{c}`")));
                }
                i += 2;
                if c == '&' {
                    Kind::AndAnd
                } else {
                    Kind::OrOr
                }
            }
            '\'' => {
                let mut text = String::new();
                i += 1;
                loop {
                    match ch(i) {
                        None => {
                            return Err(err(pos, "unterminated string: expected a closing `'`"))
                        }
                        Some('\'') if ch(i + 1) == Some('\'') => {
                            text.push('\'');
                            i += 2;
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(other) => {
                            text.push(other);
                            i += 1;
                        }
                    }
                }
                Kind::Str(text)
            }
            '-' | '0'..='9' => {
                if c == '-' && !ch(i + 1).is_some_and(|d| d.is_ascii_digit()) {
                    return Err(err(pos, "expected a digit after `-`"));
                }
                i += 1;
                while ch(i).is_some_and(|d| d.is_ascii_digit()) {
                    i += 1;
                }
                if ch(i) == Some('.') {
                    if !ch(i + 1).is_some_and(|d| d.is_ascii_digit()) {
                        return Err(err(i + 1, "expected a digit after `.` in a number"));
                    }
                    i += 1;
                    while ch(i).is_some_and(|d| d.is_ascii_digit()) {
                        i += 1;
                    }
                }
                let text = &src[at(start)..at(i)];
                match text.parse::<f64>() {
                    Ok(n) if n.is_finite() => Kind::Num(n),
                    _ => return Err(err(pos, format!("number `{text}` is out of range"))),
                }
            }
            '$' => {
                i += 1;
                while ch(i).is_some_and(is_word) {
                    i += 1;
                }
                if i == start + 1 {
                    return Err(err(
                        pos,
                        "expected a name after `$`, such as `$SubjectIsOwner`",
                    ));
                }
                Kind::Atom
            }
            '@' => {
                i += 1;
                while ch(i).is_some_and(|d| d.is_ascii_alphabetic()) {
                    i += 1;
                }
                let name = &src[at(start + 1)..at(i)];
                if name.is_empty() {
                    return Err(err(
                        pos,
                        "expected an attribute source after `@`, such as `@Resource[name]`",
                    ));
                }
                let Some(source) = Source::lookup(name) else {
                    return Err(err(
                        pos,
                        format!(
                            "unknown attribute source `@{}`; expected `@Subject`, \
                             `@Principal`, `@Resource`, `@Action` or `@Environment`",
                            shorten(name)
                        ),
                    ));
                };
                if ch(i) != Some('[') {
                    return Err(err(
                        i + 1,
                        format!("expected `[` after `@{}`", shorten(name)),
                    ));
                }
                let open = i;
                i += 1;
                while ch(i).is_some_and(|d| d != ']') {
                    i += 1;
                }
                if ch(i).is_none() {
                    return Err(err(
                        open + 1,
                        "missing `]`: the attribute name is never closed",
                    ));
                }
                let attr = src[at(open + 1)..at(i)].trim();
                i += 1;
                if attr.is_empty() {
                    return Err(err(open + 1, "an attribute name is not empty"));
                }
                if attr.chars().count() > MAX_NAME_LEN {
                    return Err(err(
                        open + 2,
                        format!("an attribute name is at most {MAX_NAME_LEN} characters"),
                    ));
                }
                Kind::Attr(source, attr.to_owned())
            }
            c if is_word_start(c) => {
                while ch(i).is_some_and(is_word) {
                    i += 1;
                }
                Kind::Word
            }
            c => return Err(err(pos, format!("unexpected character `{c}`"))),
        };
        tokens.push(Token {
            kind,
            pos,
            span: at(start)..at(i),
        });
    }
    tokens.push(Token {
        kind: Kind::End,
        pos: chars.len() + 1,
        span: src.len()..src.len(),
    });
    Ok(tokens)
}
