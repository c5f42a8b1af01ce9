//! A bounds-checked reader of FlatBuffers tables, just what Arrow IPC metadata needs: scalars,
//! strings, sub-tables and vectors of tables or structs. Every offset is checked against the
//! buffer; a bad one is an `Err` with its byte position, never a panic.

/// A FlatBuffers table: its position in `buf` and its vtable's.
#[derive(Debug, Clone, Copy)]
pub(super) struct Table<'a> {
    buf: &'a [u8],
    pos: usize,
    vtable: usize,
    vtable_len: usize,
}

/// `N` bytes at `at`, or an error naming the position.
fn bytes<const N: usize>(buf: &[u8], at: usize) -> Result<[u8; N], String> {
    at.checked_add(N)
        .and_then(|end| buf.get(at..end))
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| format!("metadata offset {at} is past its {} bytes", buf.len()))
}

fn u16_at(buf: &[u8], at: usize) -> Result<u16, String> {
    bytes(buf, at).map(u16::from_le_bytes)
}

fn u32_at(buf: &[u8], at: usize) -> Result<usize, String> {
    bytes(buf, at).map(|b| u32::from_le_bytes(b) as usize)
}

/// The target of the unsigned offset stored at `at` (FlatBuffers offsets point forward).
fn follow(buf: &[u8], at: usize) -> Result<usize, String> {
    let off = u32_at(buf, at)?;
    at.checked_add(off)
        .filter(|&t| t < buf.len())
        .ok_or_else(|| format!("metadata offset at {at} points past the end"))
}

impl<'a> Table<'a> {
    /// The root table of a FlatBuffers buffer.
    pub(super) fn root(buf: &'a [u8]) -> Result<Self, String> {
        Table::at(buf, follow(buf, 0)?)
    }

    /// The table at `pos`.
    fn at(buf: &'a [u8], pos: usize) -> Result<Self, String> {
        let soff = i32::from_le_bytes(bytes(buf, pos)?) as i64;
        let vtable = usize::try_from(pos as i64 - soff)
            .map_err(|_| format!("table at {pos} has its vtable before the buffer"))?;
        let vtable_len = u16_at(buf, vtable)? as usize;
        if vtable_len < 4 || vtable.saturating_add(vtable_len) > buf.len() {
            return Err(format!("table at {pos} has a bad vtable at {vtable}"));
        }
        Ok(Table {
            buf,
            pos,
            vtable,
            vtable_len,
        })
    }

    /// The position of field `i`, `None` when absent (its default applies).
    fn field(&self, i: usize) -> Result<Option<usize>, String> {
        let slot = 4 + 2 * i;
        if slot + 2 > self.vtable_len {
            return Ok(None);
        }
        match u16_at(self.buf, self.vtable + slot)? as usize {
            0 => Ok(None),
            off => Ok(Some(self.pos + off)),
        }
    }

    /// Scalar field `i` of `N` bytes, `None` when absent.
    fn scalar<const N: usize>(&self, i: usize) -> Result<Option<[u8; N]>, String> {
        self.field(i)?.map(|p| bytes(self.buf, p)).transpose()
    }

    /// An unsigned byte field (a union's type tag, a bool), `default` when absent.
    pub(super) fn u8(&self, i: usize, default: u8) -> Result<u8, String> {
        Ok(self.scalar::<1>(i)?.map_or(default, |b| b[0]))
    }

    /// A 16-bit signed field, `default` when absent.
    pub(super) fn i16(&self, i: usize, default: i16) -> Result<i16, String> {
        Ok(self.scalar(i)?.map_or(default, i16::from_le_bytes))
    }

    /// A 32-bit signed field, `default` when absent.
    pub(super) fn i32(&self, i: usize, default: i32) -> Result<i32, String> {
        Ok(self.scalar(i)?.map_or(default, i32::from_le_bytes))
    }

    /// A 64-bit signed field, `default` when absent.
    pub(super) fn i64(&self, i: usize, default: i64) -> Result<i64, String> {
        Ok(self.scalar(i)?.map_or(default, i64::from_le_bytes))
    }

    /// A sub-table field (or a union's value), `None` when absent.
    pub(super) fn table(&self, i: usize) -> Result<Option<Table<'a>>, String> {
        match self.field(i)? {
            Some(p) => Table::at(self.buf, follow(self.buf, p)?).map(Some),
            None => Ok(None),
        }
    }

    /// A string field, `None` when absent (invalid UTF-8 is an error).
    pub(super) fn str(&self, i: usize) -> Result<Option<&'a str>, String> {
        let Some(p) = self.field(i)? else {
            return Ok(None);
        };
        let (start, len) = self.vector(p, 1)?;
        std::str::from_utf8(&self.buf[start..start + len])
            .map(Some)
            .map_err(|_| format!("string at {start} is not UTF-8"))
    }

    /// The (first byte, byte length) of the vector whose offset is at `p`, of `size`-byte items.
    fn vector(&self, p: usize, size: usize) -> Result<(usize, usize), String> {
        let at = follow(self.buf, p)?;
        let count = u32_at(self.buf, at)?;
        let start = at + 4;
        count
            .checked_mul(size)
            .filter(|&len| start.saturating_add(len) <= self.buf.len())
            .map(|len| (start, len))
            .ok_or_else(|| format!("vector at {at} of {count} items runs past the end"))
    }

    /// A vector of tables, empty when absent.
    pub(super) fn tables(&self, i: usize) -> Result<Vec<Table<'a>>, String> {
        let Some(p) = self.field(i)? else {
            return Ok(Vec::new());
        };
        let (start, len) = self.vector(p, 4)?;
        (start..start + len)
            .step_by(4)
            .map(|e| Table::at(self.buf, follow(self.buf, e)?))
            .collect()
    }

    /// The bytes of a vector of `size`-byte structs, empty when absent.
    pub(super) fn structs(&self, i: usize, size: usize) -> Result<&'a [u8], String> {
        let Some(p) = self.field(i)? else {
            return Ok(&[]);
        };
        let (start, len) = self.vector(p, size)?;
        Ok(&self.buf[start..start + len])
    }
}
