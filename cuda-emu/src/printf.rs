//! Device-side `printf` (`vprintf(format, args)`): C format strings over the packed argument
//! buffer NVRTC builds (each argument aligned to its size; floats promoted to double).

/// Formats `fmt`; `next(size)` yields the next raw argument of `size` bytes, and `string(addr)`
/// reads a NUL-terminated device string for `%s`.
pub fn format(
    fmt: &[u8],
    next: &mut dyn FnMut(u32) -> u64,
    string: &dyn Fn(u64) -> String,
) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < fmt.len() {
        if fmt[i] != b'%' {
            out.push(fmt[i] as char);
            i += 1;
            continue;
        }
        let start = i;
        i += 1;
        let spec_end = fmt[i..]
            .iter()
            .position(|c| c.is_ascii_alphabetic() && !b"hljztL".contains(c) || *c == b'%');
        let Some(len) = spec_end else {
            out.push_str(&String::from_utf8_lossy(&fmt[start..]));
            break;
        };
        let spec = &fmt[i..i + len];
        let conv = fmt[i + len];
        i += len + 1;
        out.push_str(&conversion(spec, conv, next, string));
    }
    out
}

/// Flags, width and precision of one conversion.
struct Spec {
    left: bool,
    zero: bool,
    plus: bool,
    width: usize,
    precision: Option<usize>,
    long: bool,
}

fn parse_spec(spec: &[u8]) -> Spec {
    let text = String::from_utf8_lossy(spec);
    let flags: String = text.chars().take_while(|c| "-+ #0".contains(*c)).collect();
    let rest = &text[flags.len()..];
    let (width, rest) = rest.split_at(
        rest.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len()),
    );
    let precision = rest.strip_prefix('.').map(|p| {
        p.chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .unwrap_or(0)
    });
    Spec {
        left: flags.contains('-'),
        zero: flags.contains('0'),
        plus: flags.contains('+'),
        width: width.parse().unwrap_or(0),
        precision,
        long: rest.contains(['l', 'z', 'j', 't']),
    }
}

fn conversion(
    spec: &[u8],
    conv: u8,
    next: &mut dyn FnMut(u32) -> u64,
    string: &dyn Fn(u64) -> String,
) -> String {
    let s = parse_spec(spec);
    let int_size = if s.long { 8 } else { 4 };
    let body = match conv {
        b'%' => return "%".into(),
        b'd' | b'i' => {
            let v = next(int_size);
            let v = if s.long {
                v as i64
            } else {
                v as u32 as i32 as i64
            };
            if s.plus && v >= 0 {
                format!("+{v}")
            } else {
                v.to_string()
            }
        }
        b'u' => mask_int(next(int_size), s.long).to_string(),
        b'x' => format!("{:x}", mask_int(next(int_size), s.long)),
        b'X' => format!("{:X}", mask_int(next(int_size), s.long)),
        b'o' => format!("{:o}", mask_int(next(int_size), s.long)),
        b'c' => char::from(next(4) as u8).to_string(),
        b'p' => format!("{:#x}", next(8)),
        b's' => {
            let text = string(next(8));
            s.precision
                .map_or(text.clone(), |p| text.chars().take(p).collect())
        }
        b'f' | b'F' | b'e' | b'E' | b'g' | b'G' | b'a' | b'A' => {
            let v = f64::from_bits(next(8));
            let text = float(v, conv, s.precision.unwrap_or(6));
            if s.plus && v >= 0.0 {
                format!("+{text}")
            } else {
                text
            }
        }
        _ => return format!("%{}{}", String::from_utf8_lossy(spec), conv as char),
    };
    pad(body, &s, conv)
}

fn mask_int(v: u64, long: bool) -> u64 {
    if long {
        v
    } else {
        v & 0xffff_ffff
    }
}

fn pad(body: String, s: &Spec, conv: u8) -> String {
    let n = body.chars().count();
    if n >= s.width {
        return body;
    }
    let fill = s.width - n;
    if s.left {
        format!("{body}{}", " ".repeat(fill))
    } else if s.zero && conv != b's' && conv != b'c' {
        let (sign, digits) = body.split_at(usize::from(body.starts_with(['-', '+'])));
        format!("{sign}{}{digits}", "0".repeat(fill))
    } else {
        format!("{}{body}", " ".repeat(fill))
    }
}

/// C's `%f`, `%e` and `%g` (hex floats fall back to `%e`).
fn float(v: f64, conv: u8, prec: usize) -> String {
    if !v.is_finite() {
        let t = if v.is_nan() {
            "nan"
        } else if v > 0.0 {
            "inf"
        } else {
            "-inf"
        };
        return if conv.is_ascii_uppercase() {
            t.to_uppercase()
        } else {
            t.to_string()
        };
    }
    let text = match conv.to_ascii_lowercase() {
        b'f' => format!("{v:.prec$}"),
        b'g' => general(v, prec.max(1)),
        _ => exponent(v, prec),
    };
    if conv.is_ascii_uppercase() {
        text.to_uppercase()
    } else {
        text
    }
}

/// `%e`: one digit, `prec` decimals, and an exponent of at least two digits.
fn exponent(v: f64, prec: usize) -> String {
    let t = format!("{v:.prec$e}");
    let (mant, exp) = t.split_once('e').expect("Rust's {:e} has an exponent");
    let e: i32 = exp.parse().expect("an integer exponent");
    format!("{mant}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
}

/// `%g`: `%e` or `%f` by the exponent, trailing zeros removed.
fn general(v: f64, prec: usize) -> String {
    let e = if v == 0.0 {
        0
    } else {
        exponent(v, prec - 1)
            .rsplit_once('e')
            .map_or(0, |(_, x)| x.parse::<i32>().unwrap_or(0))
    };
    let trim = |t: String| {
        if t.contains('.') {
            t.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            t
        }
    };
    if e < -4 || e >= prec as i32 {
        let t = exponent(v, prec - 1);
        let (m, x) = t.split_once('e').expect("an exponent");
        format!("{}e{x}", trim(m.to_string()))
    } else {
        trim(format!("{v:.*}", (prec as i32 - 1 - e).max(0) as usize))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(fmt: &str, args: &[u64]) -> String {
        let mut it = args.iter();
        let mut next = |_size: u32| it.next().copied().unwrap_or(0);
        format(fmt.as_bytes(), &mut next, &|a| format!("<{a}>"))
    }

    #[test]
    fn formats_like_c() {
        let (int, float) = (|v: i64| v as u64, |f: f64| f.to_bits());
        assert_eq!(
            run("t=%d x=%.3f\n", &[int(-5), float(1.5)]),
            "t=-5 x=1.500\n"
        );
        assert_eq!(
            run("%5d|%-4x|%08.2f|%lld", &[42, 255, float(-3.25159), 1 << 40]),
            "   42|ff  |-0003.25|1099511627776"
        );
        assert_eq!(
            run(
                "%e %g %g %g",
                &[float(12345.678), float(0.0001), float(1e-5), float(100.0)]
            ),
            "1.234568e+04 0.0001 1e-05 100"
        );
        assert_eq!(
            run("%s %c %u %%", &[7, 113, u64::from(u32::MAX)]),
            "<7> q 4294967295 %"
        );
    }
}
