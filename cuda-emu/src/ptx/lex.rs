//! Splits PTX text into tokens, each tagged with its line.

use crate::error::{EmuError, Result};

/// One PTX token.
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// Opcodes, directives, registers, labels and symbols (`ld.global.f32`, `%r1`, `$L__BB0_2`).
    Ident(String),
    /// Integer literal, already negated when written with a leading `-`.
    Int(i128),
    /// Float literal as f64 (decimal, `0f` and `0d` forms).
    Float(f64),
    /// `0fXXXXXXXX`: an f32 by its bits.
    F32Bits(u32),
    /// A quoted string (`.pragma "nounroll"`).
    Str(String),
    /// One punctuation character.
    Punct(char),
}

/// A token and the 1-based line it starts on.
#[derive(Debug, Clone)]
pub struct Token {
    /// The token.
    pub tok: Tok,
    /// Its line.
    pub line: u32,
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || matches!(c, b'_' | b'$' | b'%' | b'.')
}

fn is_ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'$' | b'.')
}

/// Tokenizes `src`, dropping `//` and `/* */` comments.
pub fn tokenize(src: &str) -> Result<Vec<Token>> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let (mut i, mut line) = (0usize, 1u32);
    while i < b.len() {
        let c = b[i];
        if c == b'\n' {
            line += 1;
            i += 1;
        } else if c.is_ascii_whitespace() {
            i += 1;
        } else if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            i += 2;
            while i < b.len() && !b[i..].starts_with(b"*/") {
                line += u32::from(b[i] == b'\n');
                i += 1;
            }
            i += 2;
        } else if c == b'"' {
            let start = i + 1;
            i = start;
            while i < b.len() && b[i] != b'"' {
                i += 1;
            }
            out.push(Token {
                tok: Tok::Str(src[start..i].to_string()),
                line,
            });
            i += 1;
        } else if is_ident_start(c) {
            let start = i;
            i += 1;
            while i < b.len() && is_ident_char(b[i]) {
                i += 1;
                // `::` joins the parts of a qualifier (`.shared::cta`, `.L2::128B`).
                if b[i..].starts_with(b"::") && b.get(i + 2).copied().is_some_and(is_ident_char) {
                    i += 2;
                }
            }
            out.push(Token {
                tok: Tok::Ident(src[start..i].to_string()),
                line,
            });
        } else if c.is_ascii_digit() {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.') {
                i += 1;
            }
            let tok = number(&src[start..i]).ok_or_else(|| EmuError::Parse {
                line,
                msg: format!("bad number `{}`", &src[start..i]),
            })?;
            out.push(Token { tok, line });
        } else {
            out.push(Token {
                tok: Tok::Punct(c as char),
                line,
            });
            i += 1;
        }
    }
    Ok(out)
}

/// Parses one numeric literal: decimal, `0x` hex, octal-free ints with an optional `U`, floats.
fn number(s: &str) -> Option<Tok> {
    let lower = s.to_ascii_lowercase();
    if let Some(h) = lower.strip_prefix("0f").filter(|h| h.len() == 8) {
        return u32::from_str_radix(h, 16).ok().map(Tok::F32Bits);
    }
    if let Some(h) = lower.strip_prefix("0d").filter(|h| h.len() == 16) {
        return u64::from_str_radix(h, 16)
            .ok()
            .map(|v| Tok::Float(f64::from_bits(v)));
    }
    let t = lower.trim_end_matches('u');
    if let Some(h) = t.strip_prefix("0x") {
        return u128::from_str_radix(h, 16)
            .ok()
            .map(|v| Tok::Int(v as i128));
    }
    if t.contains(['.', 'e']) {
        return t.parse::<f64>().ok().map(Tok::Float);
    }
    t.parse::<i128>().ok().map(Tok::Int)
}
