//! A crate's module tree (one module per file, plus inline modules inside files) and its
//! file-level import graph: an edge A → B says that file A names an item defined in file B.
//!
//! Each `use` leaf and each path of two or more segments is resolved the way rustc would:
//! `crate::`, `super::` and `self::` from the module it appears in, a first segment that is a
//! child module or a name a `use` bound in that module (`cpu::conv::f` after `use crate::cpu`),
//! then segment by segment through child modules and through `use` bindings (re-exports are
//! followed to the file that defines the item: `crate::Storage` is `storage.rs`, not `lib.rs`).
//! A segment that is neither a child module nor a binding is an item of the module reached, so
//! the edge goes to that module's file (a last segment that is both, like `cuda::device` for the
//! module and the function it re-exports, is taken as the item). A path ending at a module (`use crate::cuda;`) names
//! no item and gives no edge; a glob gives an edge to the file of the module it empties.
//! Paths into other crates (`std::`, `kiln_kernels::`), method calls and `impl` blocks are not
//! imports and give none.

use crate::lex::tokens;
use crate::parse::{file_items, FileItems, ModPath};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// One module: the file it is in, its child modules and the names its `use`s bind.
#[derive(Debug, Default)]
struct Module {
    file: usize,
    children: BTreeSet<String>,
    /// name → (the module the `use` is in, the path as written).
    bindings: BTreeMap<String, (ModPath, Vec<String>)>,
}

/// What a path resolves to.
#[derive(Debug, Clone, PartialEq)]
enum Target {
    /// A module of the crate.
    Module(ModPath),
    /// An item defined in this file.
    File(usize),
    /// Something outside the crate, or a name that is not a path into it.
    Outside,
}

/// One import: file `from` names, at `line`, `path`, an item defined in file `to`.
#[derive(Debug, Clone)]
pub struct Edge {
    /// The importing file's index.
    pub from: usize,
    /// The defining file's index.
    pub to: usize,
    /// The line in `from`.
    pub line: usize,
    /// The path as written.
    pub path: String,
}

/// A crate's files and module tree.
pub struct Crate {
    /// Source files relative to the crate's `src/` (`cpu/conv.rs`), sorted.
    pub files: Vec<String>,
    items: Vec<FileItems>,
    modules: BTreeMap<ModPath, Module>,
    /// `#[macro_export]` macros (named as `crate::name`) → the file defining them.
    macros: BTreeMap<String, usize>,
}

/// The module a file under `src/` holds: `lib.rs` the crate, `a/mod.rs` and `a.rs` the module
/// `a`, `a/b.rs` the module `a::b`.
fn module_of(rel: &str) -> ModPath {
    let mut parts: Vec<String> = rel.split('/').map(String::from).collect();
    let last = parts.pop().unwrap_or_default();
    let stem = last.trim_end_matches(".rs");
    if !(parts.is_empty() && stem == "lib" || stem == "mod") {
        parts.push(stem.to_string());
    }
    parts
}

/// Every `.rs` file under `dir`, relative to `root`.
fn rust_files(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(root, &path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path.strip_prefix(root).unwrap().to_string_lossy();
            let src = std::fs::read_to_string(&path).unwrap();
            out.push((rel.replace('\\', "/"), src));
        }
    }
}

impl Crate {
    /// The crate whose `src/` folder is `src`.
    pub fn load(src: &Path) -> Crate {
        let mut files = Vec::new();
        rust_files(src, src, &mut files);
        Crate::from_sources(files)
    }

    /// The crate made of these (path under `src/`, source) files.
    pub fn from_sources(mut sources: Vec<(String, String)>) -> Crate {
        sources.sort();
        let mut modules: BTreeMap<ModPath, Module> = BTreeMap::new();
        let mut items = Vec::new();
        let mut macros = BTreeMap::new();
        for (file, (rel, src)) in sources.iter().enumerate() {
            let base = module_of(rel);
            let found = file_items(&tokens(src), base.clone());
            for m in std::iter::once(&base).chain(&found.inline_mods) {
                modules.entry(m.clone()).or_default().file = file;
            }
            for name in &found.exported_macros {
                macros.insert(name.clone(), file);
            }
            items.push(found);
        }
        let paths: Vec<ModPath> = modules.keys().cloned().collect();
        for path in paths.iter().filter(|p| !p.is_empty()) {
            let (name, parent) = path.split_last().unwrap();
            modules
                .entry(parent.to_vec())
                .or_default()
                .children
                .insert(name.clone());
        }
        for found in &items {
            for u in &found.uses {
                if let (Some(name), Some(m)) = (&u.name, modules.get_mut(&u.scope)) {
                    m.bindings
                        .entry(name.clone())
                        .or_insert_with(|| (u.scope.clone(), u.path.clone()));
                }
            }
        }
        Crate {
            files: sources.into_iter().map(|(rel, _)| rel).collect(),
            items,
            modules,
            macros,
        }
    }

    /// The index of the file `rel` (under `src/`).
    pub fn file(&self, rel: &str) -> usize {
        self.files
            .iter()
            .position(|f| f == rel)
            .unwrap_or_else(|| panic!("no file {rel}"))
    }

    /// Resolves `path` as written in the module `scope`.
    fn resolve(&self, scope: &[String], path: &[String], depth: usize) -> Target {
        let Some((first, rest)) = path.split_first() else {
            return Target::Module(scope.to_vec());
        };
        if depth > 64 {
            return Target::Outside;
        }
        match first.as_str() {
            "crate" => self.walk(Vec::new(), rest, depth),
            "self" => self.walk(scope.to_vec(), rest, depth),
            "super" => {
                let parent = &scope[..scope.len().saturating_sub(1)];
                match rest.first().map(String::as_str) {
                    Some("super") => self.resolve(parent, rest, depth + 1),
                    _ => self.walk(parent.to_vec(), rest, depth),
                }
            }
            name => {
                let Some(m) = self.modules.get(scope) else {
                    return Target::Outside;
                };
                if m.children.contains(name) {
                    let mut child = scope.to_vec();
                    child.push(name.to_string());
                    self.walk(child, rest, depth)
                } else if let Some((at, bound)) = m.bindings.get(name) {
                    if at == scope && bound == &[name] {
                        // `pub(crate) use name;` after `macro_rules! name`: the macro is here.
                        return Target::File(m.file);
                    }
                    match self.resolve(at, bound, depth + 1) {
                        Target::Module(x) => self.walk(x, rest, depth + 1),
                        t => t,
                    }
                } else {
                    Target::Outside
                }
            }
        }
    }

    /// Resolves the segments `rest` from inside module `m`.
    fn walk(&self, m: ModPath, rest: &[String], depth: usize) -> Target {
        let Some((name, rest)) = rest.split_first() else {
            return Target::Module(m);
        };
        let Some(module) = self.modules.get(&m) else {
            return Target::Outside;
        };
        // A last segment that names both a child module and an imported item (`cuda::device`,
        // the module and the function it re-exports) is taken as the item.
        let item = rest.is_empty() && module.bindings.contains_key(name);
        if module.children.contains(name) && !item {
            let mut child = m;
            child.push(name.clone());
            return self.walk(child, rest, depth);
        }
        if let Some((at, bound)) = module.bindings.get(name) {
            return match self.resolve(at, bound, depth + 1) {
                Target::Module(x) => self.walk(x, rest, depth + 1),
                t => t,
            };
        }
        match self.macros.get(name) {
            Some(&file) if m.is_empty() => Target::File(file),
            _ => Target::File(module.file),
        }
    }

    /// Every import between two different files, in file and line order.
    pub fn edges(&self) -> Vec<Edge> {
        let mut out = Vec::new();
        for (from, found) in self.items.iter().enumerate() {
            let uses = found
                .uses
                .iter()
                .map(|u| (&u.scope, &u.path, u.line, u.glob));
            let paths = found
                .paths
                .iter()
                .map(|p| (&p.scope, &p.path, p.line, false));
            for (scope, path, line, glob) in uses.chain(paths) {
                let to = match self.resolve(scope, path, 0) {
                    Target::File(f) => f,
                    Target::Module(m) if glob => self.modules[&m].file,
                    _ => continue,
                };
                if to != from {
                    let path = path.join("::") + if glob { "::*" } else { "" };
                    out.push(Edge {
                        from,
                        to,
                        line,
                        path,
                    });
                }
            }
        }
        out.sort_by_key(|e| (e.from, e.line, e.to));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn krate(files: &[(&str, &str)]) -> Crate {
        Crate::from_sources(
            files
                .iter()
                .map(|(p, s)| (p.to_string(), s.to_string()))
                .collect(),
        )
    }

    fn edge_list(c: &Crate) -> Vec<String> {
        c.edges()
            .iter()
            .map(|e| format!("{} -> {}", c.files[e.from], c.files[e.to]))
            .collect()
    }

    /// Re-exports are followed to the defining file, module aliases and child modules resolve
    /// their paths, a function re-exported under its module's name is the function, `super`
    /// inside an inline module stays in the file, macros live where `macro_rules!` defines them
    /// (exported or re-exported with `use`), and naming a module alone is no edge.
    #[test]
    fn resolves_like_rustc() {
        let c = krate(&[
            (
                "lib.rs",
                "mod a; mod b; mod c; pub use b::S; pub use a::inner::T;",
            ),
            (
                "c/mod.rs",
                "mod g; pub use g::g; fn f() { crate::c::g(); } \
                 macro_rules! h { () => {} } pub(crate) use h;",
            ),
            ("c/g.rs", "pub fn g() { super::h!(); }"),
            (
                "a/mod.rs",
                "pub mod inner; use crate::b; fn f() { b::g(); }",
            ),
            (
                "a/inner.rs",
                "use crate::S; pub struct T; mod tests { use super::*; }",
            ),
            (
                "b.rs",
                "use crate::a; pub struct S; pub fn g() { crate::m!(); } \
                 #[macro_export] macro_rules! m { () => {} }",
            ),
        ]);
        assert_eq!(
            edge_list(&c),
            [
                "a/inner.rs -> b.rs",
                "a/mod.rs -> b.rs",
                "c/g.rs -> c/mod.rs",
                "c/mod.rs -> c/g.rs",
                "c/mod.rs -> c/g.rs",
                "lib.rs -> a/inner.rs",
                "lib.rs -> b.rs"
            ]
        );
    }
}
