//! A Rust source file as the tokens that paths are made of: identifiers, `::` and single
//! punctuation characters, each with its line. Comments (doc comments included), string, byte
//! and char literals, numbers and lifetimes are dropped, so that text in them is never read as a
//! path; `$crate` (in macro bodies) reads as `crate`.

/// One token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tok {
    /// An identifier or keyword (raw identifiers without their `r#`).
    Ident(String),
    /// `::`.
    PathSep,
    /// Any other punctuation character.
    Punct(char),
}

/// A token and the 1-based line it starts on.
#[derive(Debug, Clone)]
pub struct Token {
    /// The token.
    pub tok: Tok,
    /// Its line.
    pub line: usize,
}

impl Token {
    /// The identifier, if this is one.
    pub fn ident(&self) -> Option<&str> {
        match &self.tok {
            Tok::Ident(s) => Some(s),
            _ => None,
        }
    }

    /// Whether this is the punctuation character `c`.
    pub fn is(&self, c: char) -> bool {
        self.tok == Tok::Punct(c)
    }
}

/// The characters of a source and a cursor over them, counting lines.
struct Cursor {
    chars: Vec<char>,
    at: usize,
    line: usize,
}

impl Cursor {
    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.at + ahead).copied()
    }

    /// Moves past `n` characters.
    fn bump(&mut self, n: usize) {
        for _ in 0..n {
            if self.peek(0) == Some('\n') {
                self.line += 1;
            }
            self.at += 1;
        }
    }

    /// Moves past characters while `f` holds; returns them.
    fn take_while(&mut self, f: impl Fn(char) -> bool) -> String {
        let mut s = String::new();
        while let Some(c) = self.peek(0).filter(|&c| f(c)) {
            s.push(c);
            self.bump(1);
        }
        s
    }

    /// Skips a `/* */` comment (nested ones included), the cursor on its `/`.
    fn skip_block_comment(&mut self) {
        let mut depth = 0;
        while let Some(c) = self.peek(0) {
            if c == '/' && self.peek(1) == Some('*') {
                depth += 1;
                self.bump(2);
            } else if c == '*' && self.peek(1) == Some('/') {
                depth -= 1;
                self.bump(2);
                if depth == 0 {
                    return;
                }
            } else {
                self.bump(1);
            }
        }
    }

    /// Skips a quoted literal whose opening `quote` is under the cursor, honouring `\` escapes.
    fn skip_quoted(&mut self, quote: char) {
        self.bump(1);
        while let Some(c) = self.peek(0) {
            self.bump(1);
            if c == '\\' {
                self.bump(1);
            } else if c == quote {
                return;
            }
        }
    }

    /// Skips a raw string's body: the cursor on its `#`s or opening `"`.
    fn skip_raw_string(&mut self) {
        let hashes = self.take_while(|c| c == '#').len();
        self.bump(1);
        while self.peek(0).is_some() {
            if self.peek(0) == Some('"') && (1..=hashes).all(|i| self.peek(i) == Some('#')) {
                self.bump(1 + hashes);
                return;
            }
            self.bump(1);
        }
    }

    /// Whether a raw string (after an `r`, `br` or `cr` prefix) starts at the cursor.
    fn at_raw_string(&self) -> bool {
        let hashes = (0..).take_while(|&i| self.peek(i) == Some('#')).count();
        self.peek(hashes) == Some('"')
    }
}

fn ident_start(c: char) -> bool {
    c == '_' || c.is_alphabetic()
}

fn ident_char(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// The path tokens of `src`.
pub fn tokens(src: &str) -> Vec<Token> {
    let mut cur = Cursor {
        chars: src.chars().collect(),
        at: 0,
        line: 1,
    };
    let mut out = Vec::new();
    while let Some(c) = cur.peek(0) {
        let line = cur.line;
        let mut push = |tok| out.push(Token { tok, line });
        match c {
            _ if c.is_whitespace() => cur.bump(1),
            '/' if cur.peek(1) == Some('/') => {
                cur.take_while(|c| c != '\n');
            }
            '/' if cur.peek(1) == Some('*') => cur.skip_block_comment(),
            '"' => cur.skip_quoted('"'),
            '\'' if cur.peek(1) == Some('\\') || cur.peek(2) == Some('\'') => cur.skip_quoted('\''),
            '\'' => {
                // A lifetime or a label.
                cur.bump(1);
                cur.take_while(ident_char);
            }
            ':' if cur.peek(1) == Some(':') => {
                cur.bump(2);
                push(Tok::PathSep);
            }
            '$' if cur.chars[cur.at + 1..].starts_with(&['c', 'r', 'a', 't', 'e'])
                && !cur.peek(6).is_some_and(ident_char) =>
            {
                cur.bump(6);
                push(Tok::Ident("crate".into()));
            }
            _ if c.is_ascii_digit() => {
                cur.take_while(ident_char);
            }
            _ if ident_start(c) => {
                let word = cur.take_while(ident_char);
                match (word.as_str(), cur.peek(0)) {
                    ("b" | "c", Some('"')) => cur.skip_quoted('"'),
                    ("b", Some('\'')) => cur.skip_quoted('\''),
                    ("r" | "br" | "cr", Some('"' | '#')) if cur.at_raw_string() => {
                        cur.skip_raw_string()
                    }
                    ("r", Some('#')) => {
                        cur.bump(1);
                        push(Tok::Ident(cur.take_while(ident_char)));
                    }
                    _ => push(Tok::Ident(word)),
                }
            }
            _ => {
                cur.bump(1);
                push(Tok::Punct(c));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idents(src: &str) -> Vec<String> {
        tokens(src)
            .into_iter()
            .filter_map(|t| t.ident().map(String::from))
            .collect()
    }

    /// Comments, literals and lifetimes hide what is in them; `$crate` and raw identifiers read
    /// as plain identifiers; lines are counted across all of them.
    #[test]
    fn drops_what_is_not_code() {
        let src = "/// crate::a\nuse x; // crate::b\n/* crate::c /* d */ e */ \"crate::f\\\"\" \
                   r#\"crate::g\"# 'h' '\\'' b'i' fn f<'j>() {} $crate::k r#type 1e3\nlast";
        assert_eq!(
            idents(src),
            ["use", "x", "fn", "f", "crate", "k", "type", "last"]
        );
        assert_eq!(tokens(src).last().unwrap().line, 4);
        assert!(tokens("a::b").iter().any(|t| t.tok == Tok::PathSep));
    }
}
