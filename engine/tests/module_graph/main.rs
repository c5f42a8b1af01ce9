//! The engine's modules, and nn's and train's, import one another without circles.
//!
//! The graph has one node per file under `engine/src/` and an edge A → B where file A names an
//! item defined in file B: through a `use` leaf or any path of two or more segments
//! (`crate::a::b`, `super::x`, a module alias's `cpu::conv::f`), following re-exports to the
//! file that defines the item (see [`modules`] for the exact rules). Two rules are checked:
//! - no import circle: once the imports listed in [`ALLOWED`] (each with its reason) are set
//!   aside, the graph has no strongly connected component of more than one file; and every
//!   listed import exists and closes a circle of the whole graph, so that the list shrinks with
//!   the circles;
//! - the backend boundary is a one-way dispatch: `backend.rs` (and its `backend/` entries) calls
//!   into `cpu/` and `cuda/`, and no file under them names anything of the boundary or of the op
//!   layer `ops/` above it.
//!
//! nn's and train's modules are checked by the same rules, with nothing allowed: no circle, and no
//! upward import (a file naming an item defined in the `mod.rs` or `lib.rs` of a module that
//! contains it).
//!
//! A failure prints each circle with the imports inside it (file:line and the path).

mod lex;
mod modules;
mod parse;
mod scc;

use modules::{Crate, Edge};
use std::path::Path;

/// Imports that close a circle and may: (importing file, imported file, why).
const ALLOWED: [(&str, &str, &str); 5] = [
    (
        "tensor.rs",
        "autograd/tape.rs",
        "a Tensor carries the autograd Node that recorded it, and a Node holds its input Tensors \
         and a backward over Tensors: one recursive pair of types, split over two files",
    ),
    (
        "cuda/device.rs",
        "cuda/cublas.rs",
        "the device context owns its cuBLAS handle (Blas), opened on first use, which runs on \
         that device",
    ),
    (
        "cuda/device.rs",
        "cuda/cudnn.rs",
        "the device context owns its cuDNN handle and plan caches (Dnn), opened on first use, \
         which run on that device",
    ),
    (
        "cuda/device.rs",
        "cuda/upload.rs",
        "the device context owns its pinned upload staging (Staging), which copies to that device",
    ),
    (
        "cuda/device.rs",
        "cuda/storage.rs",
        "the device context hands its launchers scratch memory as CudaStorage from its own \
         allocator, and a CudaStorage keeps its device alive",
    ),
];

/// Whether `e` is one of the [`ALLOWED`] imports.
fn allowed(c: &Crate, e: &Edge) -> bool {
    ALLOWED
        .iter()
        .any(|&(from, to, _)| c.files[e.from] == from && c.files[e.to] == to)
}

fn engine() -> Crate {
    Crate::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"))
}

/// The sources of the workspace crate in folder `name` (`nn`, `train`).
fn sibling(name: &str) -> Crate {
    Crate::load(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(name)
            .join("src"),
    )
}

/// The imports of `c` that point up: from a file to the `mod.rs` (or `lib.rs`) of a module that
/// contains it, which a module's index must not define anything its own files need.
fn upward_imports(c: &Crate) -> Vec<String> {
    let up = |from: &str, to: &str| match to.strip_suffix("mod.rs") {
        _ if to == "lib.rs" => from != "lib.rs",
        Some(dir) => from != to && from.starts_with(dir),
        None => false,
    };
    c.edges()
        .iter()
        .filter(|e| up(&c.files[e.from], &c.files[e.to]))
        .map(|e| {
            format!(
                "{}:{} -> {} ({})",
                c.files[e.from], e.line, c.files[e.to], e.path
            )
        })
        .collect()
}

/// `krate` has no import circle and no upward import.
fn assert_layered(krate: &str) {
    let c = sibling(krate);
    let found = circles(&c, &c.edges());
    assert!(
        found.is_empty(),
        "{} import circle(s) in {krate}/src:\n{}",
        found.len(),
        found.join("\n")
    );
    let up = upward_imports(&c);
    assert!(
        up.is_empty(),
        "{} upward import(s) in {krate}/src (a file naming an item its module's index defines):\n{}",
        up.len(),
        up.join("\n")
    );
}

/// The import circles of `c` over `edges` (components of more than one file), each listed with
/// the edges inside it, one `from:line -> to (path)` a line.
fn circles(c: &Crate, edges: &[Edge]) -> Vec<String> {
    let pairs = edges.iter().map(|e| (e.from, e.to));
    scc::components(c.files.len(), pairs)
        .into_iter()
        .filter(|comp| comp.len() > 1)
        .map(|comp| {
            let names: Vec<&str> = comp.iter().map(|&f| c.files[f].as_str()).collect();
            let mut text = format!("{} files: {}", comp.len(), names.join(", "));
            let mut seen = std::collections::BTreeSet::new();
            for e in edges {
                if comp.contains(&e.from) && comp.contains(&e.to) && seen.insert((e.from, e.to)) {
                    let (a, b) = (&c.files[e.from], &c.files[e.to]);
                    text += &format!("\n    {a}:{} -> {b} ({})", e.line, e.path);
                }
            }
            text
        })
        .collect()
}

/// No file of the engine is on an import circle but through the [`ALLOWED`] imports.
#[test]
fn no_import_circles() {
    let c = engine();
    let kept: Vec<Edge> = c.edges().into_iter().filter(|e| !allowed(&c, e)).collect();
    let found = circles(&c, &kept);
    assert!(
        found.is_empty(),
        "{} import circle(s) in engine/src:\n{}",
        found.len(),
        found.join("\n")
    );
}

/// Every [`ALLOWED`] import exists and closes a circle of the whole graph (its two files share a
/// strongly connected component): one that no longer does must leave the list.
#[test]
fn allowed_imports_still_close_circles() {
    let c = engine();
    let edges = c.edges();
    let components = scc::components(c.files.len(), edges.iter().map(|e| (e.from, e.to)));
    for (from, to, why) in ALLOWED {
        let (a, b) = (c.file(from), c.file(to));
        assert!(
            edges.iter().any(|e| (e.from, e.to) == (a, b)),
            "{from} no longer imports {to}: drop it from ALLOWED ({why})"
        );
        assert!(
            components.iter().any(|k| k.contains(&a) && k.contains(&b)),
            "{from} -> {to} closes no circle any more: drop it from ALLOWED ({why})"
        );
    }
}

/// Nothing under `cpu/` or `cuda/` names an item of `backend.rs`, `backend/` or `ops/`.
#[test]
fn backends_do_not_import_the_boundary() {
    let c = engine();
    let below = |f: &str| f.starts_with("cpu/") || f.starts_with("cuda/");
    let above = |f: &str| f == "backend.rs" || f.starts_with("backend/") || f.starts_with("ops/");
    let back: Vec<String> = c
        .edges()
        .iter()
        .filter(|e| below(&c.files[e.from]) && above(&c.files[e.to]))
        .map(|e| {
            let (a, b) = (&c.files[e.from], &c.files[e.to]);
            format!("{a}:{} -> {b} ({})", e.line, e.path)
        })
        .collect();
    assert!(
        back.is_empty(),
        "backends importing the boundary or the op layer:\n{}",
        back.join("\n")
    );
}

/// A crate whose boundary.rs dispatches to cpu/norm.rs through a module alias, both naming
/// `Saved`, which module `home` (`boundary` or `saved`) defines and the others import.
fn dispatch_crate(home: &str) -> Crate {
    let saved = |module: &str| match module == home {
        true => "pub struct Saved;".to_string(),
        false => format!("use crate::{home}::Saved;"),
    };
    Crate::from_sources(vec![
        ("lib.rs".into(), "mod boundary; mod cpu; mod saved;".into()),
        ("saved.rs".into(), saved("saved")),
        (
            "boundary.rs".into(),
            saved("boundary") + " use crate::cpu; fn f() { cpu::norm::run(); }",
        ),
        ("cpu/mod.rs".into(), "pub mod norm;".into()),
        ("cpu/norm.rs".into(), saved("norm") + " pub fn run() {}"),
    ])
}

/// The checker finds the circle a backend closes by importing the boundary's type, and none
/// once the type lives in a module of its own.
#[test]
fn checker_finds_a_planted_circle() {
    let planted = dispatch_crate("boundary");
    assert_eq!(
        circles(&planted, &planted.edges()),
        ["2 files: boundary.rs, cpu/norm.rs\n    \
          boundary.rs:1 -> cpu/norm.rs (cpu::norm::run)\n    \
          cpu/norm.rs:1 -> boundary.rs (crate::boundary::Saved)"]
    );
    let fixed = dispatch_crate("saved");
    assert!(circles(&fixed, &fixed.edges()).is_empty());
}

/// nn's files import one another without circles, and none from its module's index.
#[test]
fn nn_is_layered() {
    assert_layered("nn");
}

/// train's files import one another without circles, and none from its module's index.
#[test]
fn train_is_layered() {
    assert_layered("train");
}
