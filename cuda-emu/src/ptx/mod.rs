//! PTX text: tokens, syntax tree and parser.

pub mod ast;
pub mod lex;
pub mod parse;
