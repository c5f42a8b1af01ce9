//! Malformed torch files, fed to the reader as the `torch_file` fuzz target in fuzz/ feeds it:
//! each must come back as an error naming the file (or, where the input is still valid, as data),
//! never as a panic, an abort, a hang or an allocation the file does not justify. The crash inputs
//! under fuzz/regressions/torch_file/ are replayed; the cases built here were found by reading
//! the reader.
use kiln_nn::torch_file::{read_bytes, Value};
use kiln_nn::Error;
use std::path::Path;

const NAME: &str = "bad.pth";

fn fixture(name: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/pth")
        .join(name);
    std::fs::read(p).unwrap()
}

/// Reads `bytes`; an error must name the file.
fn read(bytes: &[u8]) -> Result<Value, String> {
    read_bytes(bytes, Path::new(NAME)).map_err(|e| {
        let msg = e.to_string();
        assert!(msg.contains(NAME), "{msg}");
        msg
    })
}

fn error_of(bytes: &[u8]) -> String {
    read(bytes).expect_err("a malformed file reads")
}

#[test]
fn every_truncation_is_an_error() {
    for file in [
        "state_dict.pth",
        "state_dict_legacy.pth",
        "state_dict_proto4.pth",
    ] {
        let bytes = fixture(file);
        for n in 0..bytes.len() {
            // A legacy file may end after its last storage's bytes, which is then too short.
            assert!(read(&bytes[..n]).is_err(), "{file} cut at {n} reads");
        }
        assert!(read(&bytes).is_ok());
    }
}

#[test]
fn every_byte_changed_reads_or_is_an_error() {
    for file in ["state_dict.pth", "state_dict_legacy.pth", "module_ddp.pth"] {
        let bytes = fixture(file);
        for i in 0..bytes.len() {
            for v in [0x00, 0xff, bytes[i] ^ 0x01] {
                let mut b = bytes.clone();
                b[i] = v;
                let _ = read(&b);
            }
        }
    }
}

#[test]
fn crash_inputs_are_errors() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions/torch_file");
    for entry in std::fs::read_dir(dir).into_iter().flatten() {
        let _ = read(&std::fs::read(entry.unwrap().path()).unwrap());
    }
}

// A legacy torch file built by hand: five pickles, then the storages.

fn s(text: &str) -> Vec<u8> {
    let mut out = vec![b'X'];
    out.extend((text.len() as u32).to_le_bytes());
    out.extend(text.as_bytes());
    out
}

fn int(v: i32) -> Vec<u8> {
    let mut out = vec![b'J'];
    out.extend(v.to_le_bytes());
    out
}

fn tuple(items: &[Vec<u8>]) -> Vec<u8> {
    let mut out = vec![b'('];
    items.iter().for_each(|i| out.extend(i));
    out.push(b't');
    out
}

/// `_rebuild_tensor_v2(storage '0' of `numel` floats, offset, size, stride, False, None)`.
fn tensor(numel: i32, offset: i32, size: &[i32], stride: &[i32]) -> Vec<u8> {
    let mut out = b"ctorch._utils\n_rebuild_tensor_v2\n".to_vec();
    let pid = tuple(&[
        s("storage"),
        b"ctorch\nFloatStorage\n".to_vec(),
        s("0"),
        s("cpu"),
        int(numel),
        b"N".to_vec(),
    ]);
    let mut storage = pid;
    storage.push(b'Q');
    let dims = |d: &[i32]| tuple(&d.iter().map(|&v| int(v)).collect::<Vec<_>>());
    out.extend(tuple(&[
        storage,
        int(offset),
        dims(size),
        dims(stride),
        b"\x89".to_vec(),
        b"N".to_vec(),
    ]));
    out.push(b'R');
    out
}

/// A legacy file whose object is `object` (pickle opcodes, no PROTO or STOP) and whose storage
/// '0', if any, has `numel` f32 elements.
fn legacy(object: &[u8], numel: Option<u64>) -> Vec<u8> {
    let mut out = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.".to_vec();
    out.extend(b"\x80\x02M\xe9\x03.");
    out.extend(b"\x80\x02}(");
    out.extend(s("little_endian"));
    out.extend(b"\x88u.");
    out.extend(b"\x80\x02");
    out.extend(object);
    out.push(b'.');
    out.extend(b"\x80\x02](");
    if numel.is_some() {
        out.extend(s("0"));
    }
    out.extend(b"e.");
    if let Some(numel) = numel {
        out.extend(numel.to_le_bytes());
        out.extend((0..numel).flat_map(|i| (i as f32).to_le_bytes()));
    }
    out
}

#[test]
fn a_hand_made_legacy_file_reads() {
    let v = read(&legacy(&tensor(6, 1, &[2, 2], &[1, 2]), Some(6))).unwrap();
    let t = v.as_tensor().unwrap();
    assert_eq!(t.shape(), &[2, 2]);
    assert_eq!(t.to_vec_f32().unwrap(), [1.0, 3.0, 2.0, 4.0]);
}

#[test]
fn views_past_their_storage_are_errors() {
    for (what, object, numel) in [
        ("offset past the end", tensor(6, 6, &[1], &[1]), 6),
        ("stride past the end", tensor(6, 0, &[2, 2], &[5, 1]), 6),
        ("size past the end", tensor(6, 0, &[7], &[1]), 6),
        ("storage longer than stored", tensor(60, 0, &[60], &[1]), 6),
        ("negative size", tensor(6, 0, &[-1], &[1]), 6),
        ("negative stride", tensor(6, 0, &[2], &[-1]), 6),
        (
            "overflowing shape",
            tensor(6, 0, &[1 << 30, 1 << 30, 1 << 30], &[0, 0, 0]),
            6,
        ),
        ("huge repeat", tensor(6, 0, &[1 << 30, 1 << 30], &[0, 0]), 6),
        ("mismatched ranks", tensor(6, 0, &[2, 2], &[1]), 6),
    ] {
        let err = error_of(&legacy(&object, Some(numel)));
        assert!(
            err.contains("tensor") || err.contains("storage"),
            "{what}: {err}"
        );
    }
    // The storage's count runs past the file.
    let mut bytes = legacy(&tensor(6, 0, &[6], &[1]), Some(6));
    bytes.truncate(bytes.len() - 1);
    assert!(error_of(&bytes).contains("past the end"));
}

#[test]
fn malformed_pickles_are_errors() {
    let mut nested = vec![];
    for _ in 0..100_000 {
        nested.extend(b"](");
    }
    for _ in 0..100_000 {
        nested.extend(b"e");
    }
    // A list appended to itself, and 64 levels of a list holding the previous one twice.
    let cycle = b"]q\x00h\x00a".to_vec();
    let mut doubling = b"]".to_vec();
    for _ in 0..64 {
        doubling.extend(b"q\x00h\x00h\x00\x86");
    }
    for (what, object, expect) in [
        (
            "unknown opcode",
            vec![0xff],
            "unsupported pickle opcode 0xff",
        ),
        ("empty stack", b"a".to_vec(), "empty stack"),
        ("no mark", b"t".to_vec(), "MARK"),
        ("unset memo", b"h\x07".to_vec(), "never PUT"),
        (
            "string past the end",
            b"X\xff\xff\xff\x7f".to_vec(),
            "ends inside",
        ),
        ("deep nesting", nested, "deeper than"),
        ("cycle", cycle, "deeper than"),
        ("exponential sharing", doubling, "shared so often"),
        (
            "bare global",
            b"ccollections\nOrderedDict\n".to_vec(),
            "not data",
        ),
        ("call of data", b"K\x01)R".to_vec(), "REDUCE calls a int"),
    ] {
        let err = error_of(&legacy(&object, None));
        assert!(err.contains(expect), "{what}: {err}");
    }
    // A storage class kiln does not read.
    let mut short = tensor(6, 0, &[6], &[1]);
    let at = short.windows(5).position(|w| w == b"Float").unwrap();
    short.splice(at..at + 5, *b"Short");
    let err = error_of(&legacy(&short, Some(3)));
    assert!(err.contains("torch.ShortStorage"), "{err}");
    // A big-endian file.
    let mut big = legacy(&tensor(6, 0, &[6], &[1]), Some(6));
    let at = big.windows(1).position(|w| w == b"\x88").unwrap();
    big[at] = 0x89;
    assert!(error_of(&big).contains("big-endian"));
}

#[test]
fn refusals_are_their_own_error() {
    let err = read_bytes(&legacy(b"cos\nsystem\n", None), Path::new(NAME)).unwrap_err();
    assert!(matches!(err, Error::UnsafePickle { ref global, .. } if global == "os.system"));
}
