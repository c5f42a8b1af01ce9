//! A pickle machine that builds data only: Python's opcodes for protocols 0 to 5 over an object
//! arena, with globals restricted to the ones `globals.rs` accepts. Class instantiation from
//! protocol 0 (INST, OBJ), the extension registry and out-of-band buffers are not read.

use super::fault::{bad, Res};
use super::global_kinds::Global;
use super::globals;
use super::graph::{Arena, Id, Obj};
use std::collections::HashMap;

/// One unpickled object graph and its root.
pub(super) struct Pickle {
    /// The objects.
    pub arena: Arena,
    /// The object STOP returned.
    pub root: Id,
    /// The pickle's length in bytes, STOP included.
    pub len: usize,
}

/// Reads the pickle at the start of `data`, up to its STOP. Persistent ids become storages.
pub(super) fn unpickle(data: &[u8]) -> Res<Pickle> {
    let mut m = Machine {
        data,
        pos: 0,
        arena: Arena::default(),
        stack: Vec::new(),
        metastack: Vec::new(),
        memo: HashMap::new(),
    };
    let root = m.run()?;
    Ok(Pickle {
        arena: m.arena,
        root,
        len: m.pos,
    })
}

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    arena: Arena,
    /// The objects since the last MARK.
    stack: Vec<Id>,
    /// The stacks MARK put aside, as Python's unpickler keeps them.
    metastack: Vec<Vec<Id>>,
    memo: HashMap<u32, Id>,
}

impl<'a> Machine<'a> {
    fn run(&mut self) -> Res<Id> {
        loop {
            let at = self.pos;
            let op = self.byte()?;
            match op {
                b'.' => return self.pop(), // STOP
                0x80 => {
                    // PROTO
                    let p = self.byte()?;
                    if p > 5 {
                        return Err(bad(format!("pickle protocol {p} (kiln reads 0 to 5)")));
                    }
                }
                0x95 => {
                    self.take(8)?; // FRAME: a length hint
                }
                b'(' => self.metastack.push(std::mem::take(&mut self.stack)), // MARK
                b'0' => {
                    // POP
                    if self.stack.pop().is_none() {
                        self.pop_mark()?;
                    }
                }
                b'1' => {
                    self.pop_mark()?; // POP_MARK
                }
                b'2' => {
                    // DUP
                    let top = *self
                        .stack
                        .last()
                        .ok_or_else(|| bad("DUP on an empty stack"))?;
                    self.stack.push(top);
                }
                b'N' => self.new_obj(Obj::None),
                0x88 => self.new_obj(Obj::Bool(true)),
                0x89 => self.new_obj(Obj::Bool(false)),
                b'J' => {
                    let v = i32::from_le_bytes(self.array()?);
                    self.new_obj(Obj::Int(v.into()))
                }
                b'K' => {
                    let v = self.byte()?;
                    self.new_obj(Obj::Int(v.into()))
                }
                b'M' => {
                    let v = u16::from_le_bytes(self.array()?);
                    self.new_obj(Obj::Int(v.into()))
                }
                0x8a => {
                    let n = self.byte()? as usize;
                    let bytes = self.take(n)?;
                    self.new_obj(long(bytes))
                }
                0x8b => {
                    let n = self.len32()?;
                    let bytes = self.take(n)?;
                    self.new_obj(long(bytes))
                }
                b'I' => {
                    let line = self.line()?;
                    let obj = match line {
                        "00" => Obj::Bool(false),
                        "01" => Obj::Bool(true),
                        _ => Obj::Int(parse(line, "INT")?),
                    };
                    self.new_obj(obj)
                }
                b'L' => {
                    let line = self.line()?;
                    let v = parse(line.strip_suffix('L').unwrap_or(line), "LONG")?;
                    self.new_obj(Obj::Int(v))
                }
                b'F' => {
                    let line = self.line()?;
                    self.new_obj(Obj::Float(parse(line, "FLOAT")?))
                }
                b'G' => {
                    let v = f64::from_be_bytes(self.array()?);
                    self.new_obj(Obj::Float(v))
                }
                b'X' => {
                    let n = self.len32()?;
                    self.string(n)?
                }
                0x8c => {
                    let n = self.byte()? as usize;
                    self.string(n)?
                }
                0x8d => {
                    let n = self.len64()?;
                    self.string(n)?
                }
                b'T' | b'U' => {
                    // BINSTRING, SHORT_BINSTRING: Python 2 str, read as latin1.
                    let n = if op == b'T' {
                        self.len32()?
                    } else {
                        self.byte()? as usize
                    };
                    let s = self.take(n)?.iter().map(|&b| char::from(b)).collect();
                    self.new_obj(Obj::Str(s))
                }
                b'B' | b'C' | 0x8e | 0x96 => {
                    // BINBYTES, SHORT_BINBYTES, BINBYTES8, BYTEARRAY8
                    let n = match op {
                        b'B' => self.len32()?,
                        b'C' => self.byte()? as usize,
                        _ => self.len64()?,
                    };
                    let b = self.take(n)?.to_vec();
                    self.new_obj(Obj::Bytes(b))
                }
                b')' => self.new_obj(Obj::Tuple(Vec::new())),
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    if self.stack.len() < n {
                        return Err(bad(format!("TUPLE{n} on a stack of {}", self.stack.len())));
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    self.new_obj(Obj::Tuple(items))
                }
                b't' => {
                    let items = self.pop_mark()?;
                    self.new_obj(Obj::Tuple(items))
                }
                b']' => self.new_obj(Obj::List(Vec::new())),
                b'l' => {
                    let items = self.pop_mark()?;
                    self.new_obj(Obj::List(items))
                }
                b'}' => self.new_obj(Obj::Dict(Vec::new())),
                b'd' => {
                    let items = self.pop_mark()?;
                    let pairs = pairs(items)?;
                    self.new_obj(Obj::Dict(pairs))
                }
                0x8f => self.new_obj(Obj::Set(Vec::new())),
                0x91 => {
                    let items = self.pop_mark()?;
                    self.new_obj(Obj::Set(items))
                }
                b'a' => {
                    let item = self.pop()?;
                    self.extend(vec![item])?
                }
                b'e' | 0x90 => {
                    let items = self.pop_mark()?;
                    self.extend(items)?
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    self.set_items(vec![(k, v)])?
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    self.set_items(pairs(items)?)?
                }
                b'p' => {
                    let line = self.line()?;
                    let i = parse(line, "PUT")?;
                    self.put(i)?
                }
                b'q' => {
                    let i = self.byte()?.into();
                    self.put(i)?
                }
                b'r' => {
                    let i = u32::from_le_bytes(self.array()?);
                    self.put(i)?
                }
                0x94 => {
                    let i = u32::try_from(self.memo.len()).map_err(|_| bad("memo overflow"))?;
                    self.put(i)?
                }
                b'g' => {
                    let line = self.line()?;
                    let i = parse(line, "GET")?;
                    self.get(i)?
                }
                b'h' => {
                    let i = self.byte()?.into();
                    self.get(i)?
                }
                b'j' => {
                    let i = u32::from_le_bytes(self.array()?);
                    self.get(i)?
                }
                b'c' => {
                    let module = self.line()?.to_string();
                    let name = self.line()?.to_string();
                    self.global(&module, &name)?
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let name = self.arena.str(name, "STACK_GLOBAL's name")?.to_string();
                    let module = self.arena.str(module, "STACK_GLOBAL's module")?.to_string();
                    self.global(&module, &name)?
                }
                b'R' => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let Obj::Global(g) = *self.arena.get(callable) else {
                        return Err(bad(format!(
                            "REDUCE calls a {}",
                            self.arena.get(callable).kind()
                        )));
                    };
                    let obj = globals::call(g, args, &self.arena)?;
                    self.new_obj(obj)
                }
                0x81 | 0x92 => {
                    // NEWOBJ, NEWOBJ_EX: cls.__new__(cls, *args[, **kwargs])
                    if op == 0x92 {
                        self.pop()?;
                    }
                    self.pop()?;
                    let cls = self.pop()?;
                    let Obj::Global(g) = *self.arena.get(cls) else {
                        return Err(bad(format!("NEWOBJ of a {}", self.arena.get(cls).kind())));
                    };
                    let obj = globals::instantiate(g)?;
                    self.new_obj(obj)
                }
                b'b' => {
                    let state = self.pop()?;
                    let target = *self
                        .stack
                        .last()
                        .ok_or_else(|| bad("BUILD on an empty stack"))?;
                    match self.arena.get_mut(target) {
                        Obj::Object { attrs, .. } => *attrs = Some(state),
                        // An OrderedDict's instance attributes (a state dict's `_metadata`) and a
                        // tensor's Python attributes are not data kiln reads.
                        Obj::Dict(_) | Obj::Tensor(_) => {}
                        other => return Err(bad(format!("BUILD on a {}", other.kind()))),
                    }
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let storage = globals::storage_ref(pid, &self.arena)?;
                    self.new_obj(Obj::Storage(storage))
                }
                _ => {
                    return Err(bad(format!(
                        "unsupported pickle opcode 0x{op:02x} at byte {at}"
                    )))
                }
            }
        }
    }

    fn byte(&mut self) -> Res<u8> {
        Ok(self.take(1)?[0])
    }

    fn take(&mut self, n: usize) -> Res<&'a [u8]> {
        let data: &'a [u8] = self.data;
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= data.len())
            .ok_or_else(|| {
                bad(format!(
                    "the pickle ends inside an opcode at byte {}",
                    self.pos
                ))
            })?;
        let s = &data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Res<[u8; N]> {
        Ok(self.take(N)?.try_into().expect("take returns N bytes"))
    }

    fn len32(&mut self) -> Res<usize> {
        Ok(u32::from_le_bytes(self.array()?) as usize)
    }

    fn len64(&mut self) -> Res<usize> {
        let n = u64::from_le_bytes(self.array()?);
        usize::try_from(n).map_err(|_| bad(format!("a length of {n} bytes")))
    }

    /// A protocol-0 argument: the bytes up to the next newline, as UTF-8.
    fn line(&mut self) -> Res<&'a str> {
        let data: &'a [u8] = self.data;
        let rest = &data[self.pos..];
        let n = rest.iter().position(|&b| b == b'\n').ok_or_else(|| {
            bad(format!(
                "the pickle ends inside a line at byte {}",
                self.pos
            ))
        })?;
        self.pos += n + 1;
        std::str::from_utf8(&rest[..n]).map_err(|_| bad("a line of the pickle is not UTF-8"))
    }

    fn string(&mut self, n: usize) -> Res<()> {
        let s = std::str::from_utf8(self.take(n)?)
            .map_err(|_| bad("a str of the pickle is not UTF-8"))?
            .to_string();
        self.new_obj(Obj::Str(s));
        Ok(())
    }

    fn new_obj(&mut self, obj: Obj) {
        let id = self.arena.push(obj);
        self.stack.push(id);
    }

    fn pop(&mut self) -> Res<Id> {
        self.stack
            .pop()
            .ok_or_else(|| bad("an opcode pops an empty stack"))
    }

    /// The objects since the last MARK; the stack before it comes back.
    fn pop_mark(&mut self) -> Res<Vec<Id>> {
        let outer = self
            .metastack
            .pop()
            .ok_or_else(|| bad("an opcode needs a MARK the pickle did not set"))?;
        Ok(std::mem::replace(&mut self.stack, outer))
    }

    fn put(&mut self, i: u32) -> Res<()> {
        let top = *self
            .stack
            .last()
            .ok_or_else(|| bad("PUT on an empty stack"))?;
        self.memo.insert(i, top);
        Ok(())
    }

    fn get(&mut self, i: u32) -> Res<()> {
        let id = *self
            .memo
            .get(&i)
            .ok_or_else(|| bad(format!("GET of memo entry {i}, which was never PUT")))?;
        self.stack.push(id);
        Ok(())
    }

    fn global(&mut self, module: &str, name: &str) -> Res<()> {
        let g: Global =
            globals::lookup(module, name).ok_or_else(|| globals::refuse(module, name))?;
        self.new_obj(Obj::Global(g));
        Ok(())
    }

    /// APPEND(S) / ADDITEMS onto the list or set on top of the stack.
    fn extend(&mut self, items: Vec<Id>) -> Res<()> {
        let target = *self
            .stack
            .last()
            .ok_or_else(|| bad("APPEND on an empty stack"))?;
        match self.arena.get_mut(target) {
            Obj::List(v) | Obj::Set(v) => v.extend(items),
            other => return Err(bad(format!("APPEND to a {}", other.kind()))),
        }
        Ok(())
    }

    /// SETITEM(S) into the dict on top of the stack.
    fn set_items(&mut self, pairs: Vec<(Id, Id)>) -> Res<()> {
        let target = *self
            .stack
            .last()
            .ok_or_else(|| bad("SETITEM on an empty stack"))?;
        match self.arena.get_mut(target) {
            Obj::Dict(d) => d.extend(pairs),
            other => return Err(bad(format!("SETITEM on a {}", other.kind()))),
        }
        Ok(())
    }
}

/// Alternating keys and values as pairs.
fn pairs(items: Vec<Id>) -> Res<Vec<(Id, Id)>> {
    if !items.len().is_multiple_of(2) {
        return Err(bad("a dict of an odd number of items"));
    }
    Ok(items.chunks(2).map(|kv| (kv[0], kv[1])).collect())
}

/// LONG1/LONG4's little-endian two's complement: an `Int` where it fits 64 bits.
fn long(bytes: &[u8]) -> Obj {
    let negative = bytes.last().is_some_and(|&b| b & 0x80 != 0);
    let fill = if negative { 0xff } else { 0 };
    if bytes.len() > 8 && bytes[8..].iter().any(|&b| b != fill) {
        return Obj::BigInt(bytes.to_vec());
    }
    let mut le = [fill; 8];
    let n = bytes.len().min(8);
    le[..n].copy_from_slice(&bytes[..n]);
    let v = i64::from_le_bytes(le);
    // Past 8 bytes, the sign must agree with what the first 8 encode.
    if bytes.len() > 8 && (v < 0) != negative {
        return Obj::BigInt(bytes.to_vec());
    }
    Obj::Int(v)
}

fn parse<T: std::str::FromStr>(line: &str, op: &str) -> Res<T> {
    line.trim()
        .parse()
        .map_err(|_| bad(format!("{op} argument '{line}' is not a number")))
}
