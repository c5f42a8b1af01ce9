//! Parses PTX tokens into a [`Module`].

use super::ast::{Function, Instruction, Module, Operand, Space, Stmt, VarDecl};
use super::lex::{tokenize, Tok, Token};
use crate::error::{EmuError, Result};

/// Parses a PTX module; errors name the line.
pub fn parse(src: &str) -> Result<Module> {
    let toks = tokenize(src)?;
    let mut p = Parser {
        toks,
        pos: 0,
        depth: 0,
    };
    p.module()
}

struct Parser {
    toks: Vec<Token>,
    pos: usize,
    /// How many operand lists (`{...}`, `(...)`) enclose the current operand.
    depth: usize,
}

/// PTX never nests operand lists this deep; a deeper input would recurse without bound.
const MAX_LIST_DEPTH: usize = 4;

fn space_of(s: &str) -> Option<Space> {
    Some(match s {
        ".global" => Space::Global,
        ".shared" => Space::Shared,
        ".local" => Space::Local,
        ".param" => Space::Param,
        ".const" => Space::Const,
        _ => return None,
    })
}

/// Size in bytes of a PTX scalar type name without the dot (`f32` -> 4).
pub fn type_size(ty: &str) -> Option<u32> {
    let bits: u32 = ty.get(1..)?.trim_end_matches("x2").parse().ok()?;
    let lanes = if ty.ends_with("x2") { 2 } else { 1 };
    matches!(ty.as_bytes()[0], b'b' | b'u' | b's' | b'f').then_some(bits / 8 * lanes)
}

impl Parser {
    fn line(&self) -> u32 {
        self.toks
            .get(self.pos)
            .or(self.toks.last())
            .map_or(0, |t| t.line)
    }

    fn err<T>(&self, msg: impl Into<String>) -> Result<T> {
        Err(EmuError::Parse {
            line: self.line(),
            msg: msg.into(),
        })
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.tok)
    }

    fn next(&mut self) -> Result<Tok> {
        match self.toks.get(self.pos) {
            Some(t) => {
                self.pos += 1;
                Ok(t.tok.clone())
            }
            None => self.err("unexpected end of input"),
        }
    }

    fn is_punct(&self, c: char) -> bool {
        self.peek() == Some(&Tok::Punct(c))
    }

    fn eat(&mut self, c: char) -> bool {
        let hit = self.is_punct(c);
        self.pos += usize::from(hit);
        hit
    }

    fn expect(&mut self, c: char) -> Result<()> {
        if self.eat(c) {
            Ok(())
        } else {
            self.err(format!("expected `{c}`, found {:?}", self.peek()))
        }
    }

    fn ident(&mut self) -> Result<String> {
        match self.next()? {
            Tok::Ident(s) => Ok(s),
            t => {
                self.pos -= 1;
                self.err(format!("expected a name, found {t:?}"))
            }
        }
    }

    fn int(&mut self) -> Result<i128> {
        let neg = self.eat('-');
        match self.next()? {
            Tok::Int(v) => Ok(if neg { -v } else { v }),
            t => {
                self.pos -= 1;
                self.err(format!("expected an integer, found {t:?}"))
            }
        }
    }

    fn peek_ident(&self) -> Option<&str> {
        match self.peek() {
            Some(Tok::Ident(s)) => Some(s),
            _ => None,
        }
    }

    fn skip_past(&mut self, c: char) -> Result<()> {
        while !self.eat(c) {
            self.next()?;
        }
        Ok(())
    }

    /// Skips the current token and the rest of its line (`.file`, `.loc` have no `;`).
    fn skip_line(&mut self) {
        let line = self.line();
        while self.toks.get(self.pos).is_some_and(|t| t.line == line) {
            self.pos += 1;
        }
    }

    /// Skips `.section name { ... }` (debug information).
    fn skip_section(&mut self) -> Result<()> {
        self.pos += 2;
        if self.eat('{') {
            let mut depth = 1;
            while depth > 0 {
                match self.next()? {
                    Tok::Punct('{') => depth += 1,
                    Tok::Punct('}') => depth -= 1,
                    _ => {}
                }
            }
        }
        Ok(())
    }

    fn module(&mut self) -> Result<Module> {
        let mut m = Module::default();
        while let Some(tok) = self.peek().cloned() {
            let Tok::Ident(word) = tok else {
                return self.err(format!("unexpected {tok:?} at module scope"));
            };
            match word.as_str() {
                ".version" | ".address_size" => self.pos += 2,
                ".target" => {
                    self.pos += 2;
                    while self.eat(',') {
                        self.pos += 1;
                    }
                }
                ".visible" | ".weak" | ".extern" | ".common" => self.pos += 1,
                ".entry" | ".func" => {
                    if let Some(f) = self.function()? {
                        m.funcs.push(f);
                    }
                }
                ".file" => self.skip_line(),
                ".section" => self.skip_section()?,
                ".pragma" => self.skip_past(';')?,
                _ if space_of(&word).is_some() => {
                    m.vars.push(self.var_decl()?);
                    self.expect(';')?;
                }
                _ => return self.err(format!("unexpected `{word}` at module scope")),
            }
        }
        Ok(m)
    }

    /// Parses `.global .align 4 .b8 name[16] = {..}` up to (not including) `;`, `,` or `)`.
    fn var_decl(&mut self) -> Result<VarDecl> {
        let line = self.line();
        let word = self.ident()?;
        let Some(space) = space_of(&word) else {
            return self.err(format!("expected a state space, found `{word}`"));
        };
        let (mut align, mut vec, mut ty) = (0, 1, String::new());
        loop {
            let word = self.ident()?;
            match word.as_str() {
                ".align" => align = self.alignment()?,
                ".v2" => vec = 2,
                ".v4" => vec = 4,
                ".ptr" | ".global" | ".shared" | ".local" | ".const" => {}
                w if w.starts_with('.') => ty = w[1..].to_string(),
                _ => {
                    self.pos -= 1;
                    break;
                }
            }
        }
        let name = self.ident()?;
        let mut count = 1u64;
        while self.eat('[') {
            let dim = if self.is_punct(']') { 0 } else { self.int()? };
            count = u64::try_from(dim)
                .ok()
                .and_then(|d| count.checked_mul(d))
                .map_or_else(
                    || self.err(format!("`{name}`: array size {dim} out of range")),
                    Ok,
                )?;
            self.expect(']')?;
        }
        let elem = type_size(&ty).unwrap_or(1) * vec;
        let mut init = Vec::new();
        if self.eat('=') {
            if self.eat('{') {
                while !self.eat('}') {
                    init.push(self.operand()?);
                    self.eat(',');
                }
            } else {
                init.push(self.operand()?);
            }
        }
        let align = if align == 0 { elem } else { align };
        Ok(VarDecl {
            space,
            align,
            ty,
            vec,
            name,
            count,
            init,
            line,
        })
    }

    /// An `.align` value: a power of two that fits in 32 bits.
    fn alignment(&mut self) -> Result<u32> {
        let a = self.int()?;
        match u32::try_from(a) {
            Ok(a) if a.is_power_of_two() => Ok(a),
            _ => self.err(format!("alignment {a} is not a power of two")),
        }
    }

    fn param_list(&mut self) -> Result<Vec<VarDecl>> {
        let mut out = Vec::new();
        self.expect('(')?;
        while !self.eat(')') {
            out.push(self.var_decl()?);
            self.eat(',');
        }
        Ok(out)
    }

    /// Parses `.entry`/`.func`; returns `None` for a prototype without a body.
    fn function(&mut self) -> Result<Option<Function>> {
        let is_entry = self.ident()? == ".entry";
        while matches!(self.peek_ident(), Some(".attribute")) {
            self.pos += 1;
            self.skip_past(')')?;
        }
        let rets = if self.is_punct('(') {
            self.param_list()?
        } else {
            Vec::new()
        };
        let line = self.line();
        let name = self.ident()?;
        let params = if self.is_punct('(') {
            self.param_list()?
        } else {
            Vec::new()
        };
        while !self.is_punct('{') {
            if self.eat(';') {
                return Ok(None);
            }
            self.next()?;
        }
        self.pos += 1;
        let body = self.body()?;
        Ok(Some(Function {
            name,
            is_entry,
            rets,
            params,
            body,
            line,
        }))
    }

    fn body(&mut self) -> Result<Vec<Stmt>> {
        let mut out = Vec::new();
        let mut depth = 0usize;
        loop {
            if self.eat('{') {
                depth += 1;
                out.push(Stmt::Open);
                continue;
            }
            if self.eat('}') {
                if depth == 0 {
                    return Ok(out);
                }
                depth -= 1;
                out.push(Stmt::Close);
                continue;
            }
            out.extend(self.statement()?);
        }
    }

    fn statement(&mut self) -> Result<Option<Stmt>> {
        let line = self.line();
        if self.eat('@') {
            let neg = self.eat('!');
            let pred = self.ident()?;
            return self.instruction(Some((pred, neg)), line).map(Some);
        }
        let word = self.ident()?;
        if self.eat(':') {
            return Ok(Some(Stmt::Label(word, line)));
        }
        match word.as_str() {
            ".reg" => self.reg_decl(line).map(Some),
            ".pragma" => self.skip_past(';').map(|_| None),
            ".loc" => {
                self.pos -= 1;
                self.skip_line();
                Ok(None)
            }
            w if space_of(w).is_some() => {
                self.pos -= 1;
                let v = self.var_decl()?;
                self.expect(';')?;
                Ok(Some(Stmt::Var(v)))
            }
            _ => {
                self.pos -= 1;
                self.instruction(None, line).map(Some)
            }
        }
    }

    fn reg_decl(&mut self, line: u32) -> Result<Stmt> {
        let mut ty = self.ident()?;
        if ty == ".v2" || ty == ".v4" {
            ty = self.ident()?;
        }
        let mut names = Vec::new();
        loop {
            let name = self.ident()?;
            let count = if self.eat('<') {
                let n = self.int()?;
                let Ok(n) = u32::try_from(n) else {
                    return self.err(format!("register count {n} out of range"));
                };
                self.expect('>')?;
                Some(n)
            } else {
                None
            };
            names.push((name, count));
            if !self.eat(',') {
                break;
            }
        }
        self.expect(';')?;
        Ok(Stmt::Reg(
            ty.trim_start_matches('.').to_string(),
            names,
            line,
        ))
    }

    fn instruction(&mut self, guard: Option<(String, bool)>, line: u32) -> Result<Stmt> {
        let opcode = self.ident()?;
        let mut operands = Vec::new();
        while !self.eat(';') {
            operands.push(self.operand()?);
            if !self.is_punct(';') {
                self.expect(',')?;
            }
        }
        Ok(Stmt::Inst(Instruction {
            guard,
            opcode,
            operands,
            line,
        }))
    }

    fn operand(&mut self) -> Result<Operand> {
        match self.next()? {
            Tok::Punct('[') => self.address(),
            Tok::Punct('{') => Ok(Operand::Vec(self.list('}')?)),
            Tok::Punct('(') => Ok(Operand::List(self.list(')')?)),
            Tok::Punct('!') => Ok(Operand::Not(self.ident()?)),
            Tok::Punct('-') => match self.next()? {
                Tok::Int(v) => Ok(Operand::Int(-v)),
                Tok::Float(v) => Ok(Operand::Float(-v)),
                Tok::F32Bits(v) => Ok(Operand::F32(v ^ 0x8000_0000)),
                t => self.err(format!("cannot negate {t:?}")),
            },
            Tok::Ident(name) => {
                if self.eat('|') {
                    return Ok(Operand::Pair(name, self.ident()?));
                }
                Ok(Operand::Name(name))
            }
            Tok::Int(v) => Ok(Operand::Int(v)),
            Tok::Float(v) => Ok(Operand::Float(v)),
            Tok::F32Bits(v) => Ok(Operand::F32(v)),
            t => {
                self.pos -= 1;
                self.err(format!("unexpected {t:?} in operand"))
            }
        }
    }

    fn list(&mut self, close: char) -> Result<Vec<Operand>> {
        if self.depth == MAX_LIST_DEPTH {
            return self.err(format!(
                "operand lists nested more than {MAX_LIST_DEPTH} deep"
            ));
        }
        self.depth += 1;
        let items = self.list_items(close);
        self.depth -= 1;
        items
    }

    fn list_items(&mut self, close: char) -> Result<Vec<Operand>> {
        let mut out = Vec::new();
        while !self.eat(close) {
            out.push(self.operand()?);
            self.eat(',');
        }
        Ok(out)
    }

    fn address(&mut self) -> Result<Operand> {
        let base = match self.peek() {
            Some(Tok::Ident(_)) => Some(self.ident()?),
            _ => None,
        };
        let mut offset = 0i64;
        if base.is_none() {
            offset = self.int()? as i64;
        }
        while !self.eat(']') {
            let neg = if self.eat('+') {
                false
            } else if self.eat('-') {
                true
            } else {
                return self.err("expected `+`, `-` or `]` in an address");
            };
            let v = self.int()? as i64;
            offset += if neg { -v } else { v };
        }
        Ok(Operand::Addr(base, offset))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PTX: &str = r#"
.version 9.0
.target sm_90
.address_size 64
.global .align 4 .b8 table[8] = {1, 2, 3, 4, 5, 6, 7, 8};
.visible .entry k(
	.param .u64 k_param_0,
	.param .align 8 .b8 k_param_1[16]
)
.maxntid 256, 1, 1
{
	.reg .pred 	%p<2>;
	.reg .f32 	%f<4>;
	.reg .b32 	%r<3>;
	.shared .align 4 .b8 sm[1024];
	ld.param.u64 	%rd1, [k_param_0+8];
	@!%p1 bra 	$L__BB0_2;
	mov.f32 	%f1, 0f3F800000;
	// begin inline asm
	{.reg .f16 low,high;
  mov.b32 {low,high},%r1;}
	st.global.v2.f32 	[%rd1+-4], {%f1, %f2};
	shfl.sync.down.b32 	%r2|%p1, %r1, 1, 31, -1;
$L__BB0_2:
	ret;
}
"#;

    #[test]
    fn parses_what_nvrtc_emits() {
        let m = parse(PTX).unwrap();
        assert_eq!(m.vars[0].name, "table");
        assert_eq!(m.vars[0].init.len(), 8);
        let f = &m.funcs[0];
        assert!(f.is_entry);
        assert_eq!(f.params.len(), 2);
        assert_eq!((f.params[1].align, f.params[1].count), (8, 16));
        let insts: Vec<&Instruction> = f
            .body
            .iter()
            .filter_map(|s| if let Stmt::Inst(i) = s { Some(i) } else { None })
            .collect();
        assert_eq!(
            insts[0].operands[1],
            Operand::Addr(Some("k_param_0".into()), 8)
        );
        assert_eq!(insts[1].guard, Some(("%p1".into(), true)));
        assert_eq!(insts[2].operands[1], Operand::F32(0x3F80_0000));
        assert!(matches!(&insts[3].operands[0], Operand::Vec(v) if v.len() == 2));
        assert_eq!(insts[4].operands[0], Operand::Addr(Some("%rd1".into()), -4));
        assert_eq!(
            insts[5].operands[0],
            Operand::Pair("%r2".into(), "%p1".into())
        );
        assert!(f.body.iter().any(|s| matches!(s, Stmt::Open)));
        assert!(f
            .body
            .iter()
            .any(|s| matches!(s, Stmt::Label(l, _) if l == "$L__BB0_2")));
    }

    #[test]
    fn errors_name_the_line() {
        let bad =
            ".version 9.0\n.target sm_90\n.visible .entry k()\n{\n\tld.global.f32 %f1, [%rd1;\n}\n";
        let err = parse(bad).unwrap_err().to_string();
        assert!(err.contains("line 5"), "{err}");
    }

    #[test]
    fn hex_and_decimal_literals() {
        let toks = tokenize("0d3FF0000000000000 0x10 -3 1.5 0f40490FDB").unwrap();
        let t: Vec<Tok> = toks.into_iter().map(|t| t.tok).collect();
        assert_eq!(t[0], Tok::Float(1.0));
        assert_eq!(t[1], Tok::Int(16));
        assert_eq!(t[2], Tok::Punct('-'));
        assert_eq!(t[4], Tok::Float(1.5));
        assert_eq!(t[5], Tok::F32Bits(0x4049_0FDB));
    }
}
