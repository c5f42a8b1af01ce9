//! Arrow IPC streams (the `.arrow` files the `datasets` library writes): the schema, then record
//! batches read in place from the mapped file. Integer, binary and string columns, inside
//! structs or not, can be read; other columns are walked past. Compressed bodies, big-endian
//! data, unions and view types are refused.
use super::flatbuf::Table;

/// Message header types (Arrow's `MessageHeader` union).
const SCHEMA: u8 = 1;
const DICTIONARY_BATCH: u8 = 2;
const RECORD_BATCH: u8 = 3;
/// The deepest nesting of fields read; deeper schemas are refused.
const MAX_DEPTH: usize = 32;

/// What kind of values a column holds, as far as the reader cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// Integers of `bits` bits.
    Int {
        /// Bit width: 8, 16, 32 or 64.
        bits: u32,
        /// Whether signed.
        signed: bool,
    },
    /// Variable-length bytes (`binary`, `large_binary`, `utf8`, `large_utf8`).
    Bytes {
        /// 64-bit offsets (`large_` types).
        large: bool,
        /// UTF-8 text rather than raw bytes.
        text: bool,
    },
    /// A struct of child columns.
    Struct,
    /// Any other type: its Arrow name, not read.
    Other(&'static str),
}

/// One field of the schema, flattened in pre-order (the order of a batch's nodes).
#[derive(Debug, Clone)]
pub struct Field {
    /// Dotted path from the top-level column (`image.bytes`).
    pub path: String,
    /// The values' kind.
    pub kind: Kind,
    /// Index of the field's first buffer in a batch.
    buffer: usize,
    /// Index of the struct field holding this one, if any.
    parent: Option<usize>,
}

/// A stream's schema: its fields in pre-order and the number of buffers a batch carries.
#[derive(Debug, Clone)]
pub struct Schema {
    /// The flattened fields.
    pub fields: Vec<Field>,
    buffers: usize,
}

impl Schema {
    /// The index of the field at `path` (`image` or `image.bytes`).
    pub fn find(&self, path: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.path == path)
    }

    /// The top-level column names.
    pub fn columns(&self) -> Vec<&str> {
        let top = self.fields.iter().filter(|f| f.parent.is_none());
        top.map(|f| f.path.as_str()).collect()
    }
}

/// One message: its header table and body, with the byte offset it starts at.
struct Message<'a> {
    kind: u8,
    header: Table<'a>,
    body: &'a [u8],
    body_at: usize,
    at: usize,
}

/// A record batch of the stream: row count, nodes and buffers, checked against the schema.
#[derive(Debug)]
pub struct Batch<'a> {
    /// Rows in the batch.
    pub rows: usize,
    /// The batch's first byte in the file (for messages).
    pub at: usize,
    body: &'a [u8],
    body_at: usize,
    /// (length, null count) per field.
    nodes: Vec<(usize, usize)>,
    /// (offset, length) in the body per buffer.
    buffers: Vec<(usize, usize)>,
}

/// Reads an Arrow IPC stream from bytes: [`Stream::open`] reads the schema, then
/// [`Stream::next_batch`] each record batch in order.
#[derive(Debug)]
pub struct Stream<'a> {
    buf: &'a [u8],
    pos: usize,
    /// The stream's schema.
    pub schema: Schema,
}

impl<'a> Stream<'a> {
    /// Reads the schema message at the start of `buf`.
    pub fn open(buf: &'a [u8]) -> Result<Self, String> {
        let mut pos = 0;
        let msg = next_message(buf, &mut pos)?.ok_or("empty stream: no schema message")?;
        if msg.kind != SCHEMA {
            return Err(format!(
                "the first message is of type {}, not a schema",
                msg.kind
            ));
        }
        let schema = read_schema(&msg.header)?;
        Ok(Stream { buf, pos, schema })
    }

    /// The next record batch, `None` at the end of the stream. Dictionary batches are skipped.
    pub fn next_batch(&mut self) -> Result<Option<Batch<'a>>, String> {
        loop {
            let Some(msg) = next_message(self.buf, &mut self.pos)? else {
                return Ok(None);
            };
            match msg.kind {
                RECORD_BATCH => return read_batch(&msg, &self.schema).map(Some),
                DICTIONARY_BATCH => continue,
                k => {
                    return Err(format!(
                        "message at byte {} has unexpected type {k}",
                        msg.at
                    ))
                }
            }
        }
    }
}

/// The message at `*pos` (advancing past it), `None` at the end-of-stream marker or the end.
fn next_message<'a>(buf: &'a [u8], pos: &mut usize) -> Result<Option<Message<'a>>, String> {
    let at = *pos;
    let word = |p: usize| -> Result<u32, String> {
        p.checked_add(4)
            .and_then(|e| buf.get(p..e))
            .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
            .ok_or_else(|| format!("message at byte {p} cut short (truncated file)"))
    };
    if at == buf.len() {
        return Ok(None);
    }
    let mut p = at;
    let mut len = word(p)?;
    p += 4;
    if len == 0xFFFF_FFFF {
        len = word(p)?; // continuation marker, then the metadata length
        p += 4;
    }
    if len == 0 {
        return Ok(None);
    }
    let meta_end = p
        .checked_add(len as usize)
        .filter(|&e| e <= buf.len())
        .ok_or_else(|| format!("message at byte {at} cut short (truncated file)"))?;
    let header =
        Table::root(&buf[p..meta_end]).map_err(|e| format!("message at byte {at}: {e}"))?;
    let bad = |e: String| format!("message at byte {at}: {e}");
    let kind = header.u8(1, 0).map_err(bad)?;
    let body_len = header.i64(3, 0).map_err(bad)?;
    let body_end = usize::try_from(body_len)
        .ok()
        .and_then(|l| meta_end.checked_add(l))
        .filter(|&e| e <= buf.len())
        .ok_or_else(|| {
            format!(
                "message at byte {at} has a body of {body_len} bytes past the file's end (truncated file)"
            )
        })?;
    let inner = header
        .table(2)
        .map_err(bad)?
        .ok_or_else(|| bad("no header".into()))?;
    *pos = body_end;
    Ok(Some(Message {
        kind,
        header: inner,
        body: &buf[meta_end..body_end],
        body_at: meta_end,
        at,
    }))
}

/// The schema's fields flattened in pre-order.
fn read_schema(schema: &Table) -> Result<Schema, String> {
    if schema.i16(0, 0)? != 0 {
        return Err("big-endian data is not supported".into());
    }
    let mut out = Schema {
        fields: Vec::new(),
        buffers: 0,
    };
    for f in schema.tables(1)? {
        add_field(&mut out, &f, None, 0)?;
    }
    Ok(out)
}

/// Adds `f` and its children to `out`.
fn add_field(
    out: &mut Schema,
    f: &Table,
    parent: Option<usize>,
    depth: usize,
) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!("fields nested deeper than {MAX_DEPTH}"));
    }
    let name = f.str(0)?.unwrap_or("");
    let path = match parent {
        Some(p) => format!("{}.{name}", out.fields[p].path),
        None => name.to_string(),
    };
    let dictionary = f.table(4)?.is_some();
    let type_tag = f.u8(2, 0)?;
    let (kind, buffers, walk_children) = if dictionary {
        (Kind::Other("dictionary"), 2, false)
    } else {
        let ty = f.table(3)?;
        match type_tag {
            1 => (Kind::Other("null"), 0, false),
            2 => {
                let ty =
                    ty.ok_or_else(|| format!("column {path}: integer type without its table"))?;
                let bits = ty.i32(0, 0)?;
                if ![8, 16, 32, 64].contains(&bits) {
                    return Err(format!("column {path}: integers of {bits} bits"));
                }
                let signed = ty.u8(1, 0)? != 0;
                (
                    Kind::Int {
                        bits: bits as u32,
                        signed,
                    },
                    2,
                    false,
                )
            }
            3 => (Kind::Other("float"), 2, false),
            4 | 5 | 19 | 20 => {
                let large = type_tag >= 19;
                let text = type_tag == 5 || type_tag == 20;
                (Kind::Bytes { large, text }, 3, false)
            }
            6 => (Kind::Other("bool"), 2, false),
            7 => (Kind::Other("decimal"), 2, false),
            8 => (Kind::Other("date"), 2, false),
            9 => (Kind::Other("time"), 2, false),
            10 => (Kind::Other("timestamp"), 2, false),
            11 => (Kind::Other("interval"), 2, false),
            12 => (Kind::Other("list"), 2, true),
            13 => (Kind::Struct, 1, true),
            15 => (Kind::Other("fixed_size_binary"), 2, false),
            16 => (Kind::Other("fixed_size_list"), 1, true),
            17 => (Kind::Other("map"), 2, true),
            18 => (Kind::Other("duration"), 2, false),
            21 => (Kind::Other("large_list"), 2, true),
            22 => (Kind::Other("run_end_encoded"), 0, true),
            t => return Err(format!("column {path}: Arrow type {t} is not supported")),
        }
    };
    let index = out.fields.len();
    out.fields.push(Field {
        path,
        kind,
        buffer: out.buffers,
        parent,
    });
    out.buffers += buffers;
    if walk_children {
        for child in f.tables(5)? {
            add_field(out, &child, Some(index), depth + 1)?;
        }
    }
    Ok(())
}

/// A record batch's nodes and buffers, checked to fit the schema and the body.
fn read_batch<'a>(msg: &Message<'a>, schema: &Schema) -> Result<Batch<'a>, String> {
    let at = msg.at;
    let bad = |e: String| format!("record batch at byte {at}: {e}");
    let h = &msg.header;
    if h.table(3).map_err(bad)?.is_some() {
        return Err(bad("compressed bodies are not supported".into()));
    }
    let rows =
        usize::try_from(h.i64(0, 0).map_err(bad)?).map_err(|_| bad("negative length".into()))?;
    let pairs = |raw: &[u8]| -> Result<Vec<(usize, usize)>, String> {
        raw.chunks_exact(16)
            .map(|c| {
                let a = i64::from_le_bytes(c[..8].try_into().expect("8 bytes"));
                let b = i64::from_le_bytes(c[8..].try_into().expect("8 bytes"));
                match (usize::try_from(a), usize::try_from(b)) {
                    (Ok(a), Ok(b)) => Ok((a, b)),
                    _ => Err(bad(format!("negative length or offset ({a}, {b})"))),
                }
            })
            .collect()
    };
    let nodes = pairs(h.structs(1, 16).map_err(bad)?)?;
    let buffers = pairs(h.structs(2, 16).map_err(bad)?)?;
    if nodes.len() != schema.fields.len() || buffers.len() != schema.buffers {
        return Err(bad(format!(
            "{} nodes and {} buffers, but the schema has {} fields and {} buffers",
            nodes.len(),
            buffers.len(),
            schema.fields.len(),
            schema.buffers
        )));
    }
    for &(off, len) in &buffers {
        if off.checked_add(len).is_none_or(|e| e > msg.body.len()) {
            return Err(bad(format!(
                "buffer at {off} of {len} bytes is past the body"
            )));
        }
    }
    Ok(Batch {
        rows,
        at,
        body: msg.body,
        body_at: msg.body_at,
        nodes,
        buffers,
    })
}

impl<'a> Batch<'a> {
    /// Buffer `k` of field `f`.
    fn buffer(&self, schema: &Schema, f: usize, k: usize) -> &'a [u8] {
        let (off, len) = self.buffers[schema.fields[f].buffer + k];
        &self.body[off..off + len]
    }

    /// Whether row `row` of field `f` (and of every struct holding it) is non-null.
    fn valid(&self, schema: &Schema, f: usize, row: usize) -> Result<bool, String> {
        let mut at = Some(f);
        while let Some(i) = at {
            let (_, nulls) = self.nodes[i];
            let bits = self.buffer(schema, i, 0);
            if nulls > 0 && !bits.is_empty() {
                let byte = bits.get(row / 8).ok_or_else(|| {
                    let p = &schema.fields[i].path;
                    format!(
                        "record batch at byte {}: column {p}'s validity bitmap is short",
                        self.at
                    )
                })?;
                if byte >> (row % 8) & 1 == 0 {
                    return Ok(false);
                }
            }
            at = schema.fields[i].parent;
        }
        Ok(true)
    }

    /// Checks that field `f` has a value per row.
    fn check_len(&self, schema: &Schema, f: usize) -> Result<(), String> {
        let (len, _) = self.nodes[f];
        if len < self.rows {
            let p = &schema.fields[f].path;
            return Err(format!(
                "record batch at byte {}: column {p} has {len} values for {} rows",
                self.at, self.rows
            ));
        }
        Ok(())
    }

    /// The integer column `f`'s values (`None` for nulls). `f` must be of [`Kind::Int`].
    pub fn ints(&self, schema: &Schema, f: usize) -> Result<Vec<Option<i64>>, String> {
        let Kind::Int { bits, signed } = schema.fields[f].kind else {
            return Err(format!(
                "column {} is not of integers",
                schema.fields[f].path
            ));
        };
        self.check_len(schema, f)?;
        let width = bits as usize / 8;
        let data = self.buffer(schema, f, 1);
        if self.rows.checked_mul(width).is_none_or(|n| data.len() < n) {
            let p = &schema.fields[f].path;
            return Err(format!(
                "record batch at byte {}: column {p}'s data is short",
                self.at
            ));
        }
        (0..self.rows)
            .map(|r| {
                if !self.valid(schema, f, r)? {
                    return Ok(None);
                }
                let b = &data[r * width..(r + 1) * width];
                let mut le = [0u8; 8];
                le[..width].copy_from_slice(b);
                if signed && b[width - 1] & 0x80 != 0 {
                    le[width..].fill(0xFF);
                }
                let v = i64::from_le_bytes(le);
                match (signed, bits) {
                    (false, 64) if v < 0 => Err(format!("row {r}: value {} past i64", v as u64)),
                    _ => Ok(Some(v)),
                }
            })
            .collect()
    }

    /// The byte ranges (in the file) of the binary or string column `f`'s values, `None` for
    /// nulls. `f` must be of [`Kind::Bytes`].
    pub fn bytes(&self, schema: &Schema, f: usize) -> Result<Vec<Option<(usize, usize)>>, String> {
        let Kind::Bytes { large, .. } = schema.fields[f].kind else {
            return Err(format!("column {} is not of bytes", schema.fields[f].path));
        };
        self.check_len(schema, f)?;
        let p = &schema.fields[f].path;
        let short = || {
            format!(
                "record batch at byte {}: column {p}'s offsets are short",
                self.at
            )
        };
        let (offsets, data) = (self.buffer(schema, f, 1), self.buffer(schema, f, 2));
        let data_at = self.body_at + self.buffers[schema.fields[f].buffer + 2].0;
        let width = if large { 8 } else { 4 };
        let offset = |r: usize| -> Result<usize, String> {
            let b = offsets.get(r * width..(r + 1) * width).ok_or_else(short)?;
            let v = match large {
                true => i64::from_le_bytes(b.try_into().expect("8 bytes")),
                false => i32::from_le_bytes(b.try_into().expect("4 bytes")) as i64,
            };
            usize::try_from(v).map_err(|_| format!("column {p}: negative offset {v} at row {r}"))
        };
        (0..self.rows)
            .map(|r| {
                if !self.valid(schema, f, r)? {
                    return Ok(None);
                }
                let (start, end) = (offset(r)?, offset(r + 1)?);
                if start > end || end > data.len() {
                    return Err(format!(
                        "record batch at byte {}: column {p}'s value at row {r} ({start}..{end}) is outside its {} bytes",
                        self.at,
                        data.len()
                    ));
                }
                Ok(Some((data_at + start, data_at + end)))
            })
            .collect()
    }
}
