//! What one source file says about other modules: its inline modules (`mod tests { ... }`), the
//! leaves of its `use` trees, the other paths of two or more segments it names (`crate::a::b`,
//! `super::x`, `alias::f`), and the macros it exports at the crate root (`#[macro_export]`).
//! Each is recorded in the (inline) module it appears in, as a module path from the crate root.

use crate::lex::{Tok, Token};

/// A module path from the crate root (`[]` is the crate, `["cpu", "conv"]` is `crate::cpu::conv`).
pub type ModPath = Vec<String>;

/// One leaf of a `use` tree.
#[derive(Debug, Clone)]
pub struct UseLeaf {
    /// The module whose scope the `use` is in.
    pub scope: ModPath,
    /// The full path as written (`["super", "conv", "ConvShape"]`).
    pub path: Vec<String>,
    /// The name it binds (None for globs and `as _`).
    pub name: Option<String>,
    /// Whether it is a glob (`path::*`).
    pub glob: bool,
    /// Its line.
    pub line: usize,
}

/// A path of two or more segments outside `use` trees (`crate::x::f`, `cpu::conv::Shape`).
#[derive(Debug, Clone)]
pub struct PathRef {
    /// The module whose scope it appears in.
    pub scope: ModPath,
    /// Its segments.
    pub path: Vec<String>,
    /// Its line.
    pub line: usize,
}

/// Everything a file says about other modules.
#[derive(Debug, Default)]
pub struct FileItems {
    /// Inline modules, as full module paths.
    pub inline_mods: Vec<ModPath>,
    /// `use` leaves.
    pub uses: Vec<UseLeaf>,
    /// Other paths.
    pub paths: Vec<PathRef>,
    /// Names of `#[macro_export]` macros (they live at the crate root).
    pub exported_macros: Vec<String>,
}

/// The parser's position in a file's tokens and the inline modules open around it.
struct Parser<'a> {
    toks: &'a [Token],
    at: usize,
    /// The file's module.
    base: ModPath,
    /// Inline modules open at the cursor: their names and the brace depth inside each.
    open: Vec<(String, usize)>,
    depth: usize,
    items: FileItems,
}

impl Parser<'_> {
    fn tok(&self, ahead: usize) -> Option<&Token> {
        self.toks.get(self.at + ahead)
    }

    fn ident(&self, ahead: usize) -> Option<&str> {
        self.tok(ahead).and_then(Token::ident)
    }

    fn is(&self, ahead: usize, c: char) -> bool {
        self.tok(ahead).is_some_and(|t| t.is(c))
    }

    fn is_sep(&self, ahead: usize) -> bool {
        self.tok(ahead).is_some_and(|t| t.tok == Tok::PathSep)
    }

    /// The module the cursor is in.
    fn scope(&self) -> ModPath {
        let mut p = self.base.clone();
        p.extend(self.open.iter().map(|(name, _)| name.clone()));
        p
    }

    fn line(&self) -> usize {
        self.tok(0).map_or(0, |t| t.line)
    }

    /// Parses the use tree at the cursor under `prefix`, up to (not past) its end.
    fn use_tree(&mut self, mut prefix: Vec<String>) {
        if self.is_sep(0) {
            // `use ::name` names an external crate.
            self.at += 1;
        }
        loop {
            if self.is(0, '{') {
                self.at += 1;
                while !self.is(0, '}') && self.tok(0).is_some() {
                    self.use_tree(prefix.clone());
                    if self.is(0, ',') {
                        self.at += 1;
                    }
                }
                self.at += 1;
                return;
            }
            if self.is(0, '*') {
                self.at += 1;
                self.leaf(prefix, None, true);
                return;
            }
            let Some(seg) = self.ident(0).map(String::from) else {
                return;
            };
            self.at += 1;
            if self.is_sep(0) {
                self.at += 1;
                prefix.push(seg);
                continue;
            }
            let alias = if self.ident(0) == Some("as") {
                let alias = self.ident(1).unwrap_or("_").to_string();
                self.at += 2;
                Some(alias)
            } else {
                None
            };
            if seg == "self" {
                let name = alias.or_else(|| prefix.last().cloned());
                self.leaf(prefix, name, false);
            } else {
                let name = alias.unwrap_or_else(|| seg.clone());
                prefix.push(seg);
                self.leaf(prefix, Some(name), false);
            }
            return;
        }
    }

    fn leaf(&mut self, path: Vec<String>, name: Option<String>, glob: bool) {
        let name = name.filter(|n| n != "_");
        let (scope, line) = (self.scope(), self.line());
        self.items.uses.push(UseLeaf {
            scope,
            path,
            name,
            glob,
            line,
        });
    }

    /// Reads the path starting at the cursor (an identifier followed by `::`).
    fn path(&mut self) {
        let line = self.line();
        let mut path = vec![self.ident(0).unwrap_or_default().to_string()];
        self.at += 1;
        while self.is_sep(0) {
            let Some(seg) = self.ident(1) else { break };
            path.push(seg.to_string());
            self.at += 2;
        }
        let scope = self.scope();
        self.items.paths.push(PathRef { scope, path, line });
    }

    fn run(mut self) -> FileItems {
        let mut exporting = false;
        while let Some(t) = self.tok(0) {
            let after_sep = self.at > 0 && self.toks[self.at - 1].tok == Tok::PathSep;
            match &t.tok {
                Tok::Ident(w) if w == "use" => {
                    self.at += 1;
                    self.use_tree(Vec::new());
                }
                Tok::Ident(w) if w == "mod" && self.ident(1).is_some() && self.is(2, '{') => {
                    let name = self.ident(1).unwrap_or_default().to_string();
                    self.depth += 1;
                    self.open.push((name, self.depth));
                    self.items.inline_mods.push(self.scope());
                    self.at += 3;
                }
                Tok::Ident(w) if w == "macro_export" => {
                    exporting = true;
                    self.at += 1;
                }
                Tok::Ident(w) if w == "macro_rules" && self.is(1, '!') => {
                    if exporting {
                        let name = self.ident(2).unwrap_or_default().to_string();
                        self.items.exported_macros.push(name);
                    }
                    exporting = false;
                    self.at += 3;
                }
                Tok::Ident(_) if !after_sep && self.is_sep(1) && self.ident(2).is_some() => {
                    self.path()
                }
                Tok::Punct('{') => {
                    self.depth += 1;
                    self.at += 1;
                }
                Tok::Punct('}') => {
                    if self.open.last().is_some_and(|&(_, d)| d == self.depth) {
                        self.open.pop();
                    }
                    self.depth = self.depth.saturating_sub(1);
                    self.at += 1;
                }
                _ => self.at += 1,
            }
        }
        self.items
    }
}

/// What the file with tokens `toks`, the module `base`, says about other modules.
pub fn file_items(toks: &[Token], base: ModPath) -> FileItems {
    Parser {
        toks,
        at: 0,
        base,
        open: Vec::new(),
        depth: 0,
        items: FileItems::default(),
    }
    .run()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lex::tokens;

    fn strs(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    /// Nested use trees give one leaf each, `self` binding the module, `as` the alias; inline
    /// modules scope what is inside them; other paths are read whole, turbofish aside.
    #[test]
    fn reads_uses_paths_and_scopes() {
        let src = "use crate::cuda::{self, x::{Y as Z, *}};\n\
                   fn f() { a::b::<u8>::c(); }\n\
                   #[cfg(test)] mod tests { use super::*; fn g() { crate::q::r(); } }\n\
                   #[macro_export] macro_rules! m { () => { $crate::e::E } }";
        let items = file_items(&tokens(src), strs(&["cpu"]));
        let leaves: Vec<_> = items
            .uses
            .iter()
            .map(|u| {
                (
                    u.scope.join("::"),
                    u.path.join("::"),
                    u.name.clone(),
                    u.glob,
                )
            })
            .collect();
        assert_eq!(
            leaves,
            [
                (
                    "cpu".into(),
                    "crate::cuda".into(),
                    Some("cuda".into()),
                    false
                ),
                (
                    "cpu".into(),
                    "crate::cuda::x::Y".into(),
                    Some("Z".into()),
                    false
                ),
                ("cpu".into(), "crate::cuda::x".into(), None, true),
                ("cpu::tests".into(), "super".into(), None, true),
            ]
        );
        let paths: Vec<_> = items
            .paths
            .iter()
            .map(|p| (p.scope.join("::"), p.path.join("::"), p.line))
            .collect();
        assert_eq!(
            paths,
            [
                ("cpu".into(), "a::b".into(), 2),
                ("cpu::tests".into(), "crate::q::r".into(), 3),
                ("cpu".into(), "crate::e::E".into(), 4),
            ]
        );
        assert_eq!(items.inline_mods, [strs(&["cpu", "tests"])]);
        assert_eq!(items.exported_macros, ["m"]);
    }
}
