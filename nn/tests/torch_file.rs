//! Files `torch.save` wrote read back bitwise, and pickles that would run code refused by name
//! (fixtures from scripts/fixtures/make_pth_fixtures.py).
use kiln_nn::torch_file::{self, Value};
use kiln_nn::{load_safetensors, load_weights, read_checkpoint_file, CheckpointFile, Error};
use std::io::Write;
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/pth")
        .join(name)
}

/// The keys of the fixture state dict, in the order torch saved them.
const KEYS: [&str; 15] = [
    "f32",
    "f16",
    "bf16",
    "f64",
    "i64",
    "i32",
    "u8",
    "bool",
    "transposed",
    "strided",
    "shared_a",
    "shared_b",
    "expanded",
    "scalar",
    "empty",
];

fn bytes_of(t: &kiln_engine::Tensor) -> Vec<u8> {
    let t = t.contiguous().unwrap();
    let s = t.storage();
    let cpu = s.cpu("test").unwrap();
    let e = t.dtype().size_in_bytes();
    cpu.as_bytes()[t.layout().offset() * e..][..t.numel() * e].to_vec()
}

#[test]
fn every_dtype_and_view_reads_back_bitwise_in_each_format() {
    let expected = load_safetensors(&fixture("state_dict_expected.safetensors")).unwrap();
    for file in [
        "state_dict.pth",
        "state_dict_legacy.pth",
        "state_dict_proto4.pth",
    ] {
        let value = torch_file::load(&fixture(file)).unwrap();
        let Value::Dict(items) = &value else {
            panic!("{file}: a {}", value.kind())
        };
        let names: Vec<&str> = items.iter().map(|(k, _)| k.as_str().unwrap()).collect();
        assert_eq!(names, KEYS, "{file}: keys in the saved order");
        let sd = value.to_state_dict().unwrap();
        for key in KEYS {
            let (got, want) = (&sd[key], &expected[key]);
            assert_eq!(got.dtype(), want.dtype(), "{file} {key}");
            assert_eq!(got.shape(), want.shape(), "{file} {key}");
            assert_eq!(bytes_of(got), bytes_of(want), "{file} {key}");
        }
    }
}

#[test]
fn any_checkpoint_file_is_told_apart_by_content() {
    let dir = tempfile::tempdir().unwrap();
    // A torch file named .safetensors and a safetensors file named .pth still read.
    let torch_named_st = dir.path().join("weights.safetensors");
    std::fs::copy(fixture("state_dict.pth"), &torch_named_st).unwrap();
    assert!(matches!(
        read_checkpoint_file(&torch_named_st).unwrap(),
        CheckpointFile::Torch(_)
    ));
    let st_named_pth = dir.path().join("weights.pth");
    std::fs::copy(fixture("state_dict_expected.safetensors"), &st_named_pth).unwrap();
    assert!(matches!(
        read_checkpoint_file(&st_named_pth).unwrap(),
        CheckpointFile::Safetensors { .. }
    ));
    let junk = dir.path().join("junk.pth");
    std::fs::write(&junk, b"neither format at all").unwrap();
    let err = read_checkpoint_file(&junk).unwrap_err().to_string();
    assert!(
        err.starts_with(&junk.display().to_string()) && err.contains("not a checkpoint"),
        "{err}"
    );
}

#[test]
fn a_ddp_state_dict_loses_its_module_prefix() {
    let w = load_weights(&fixture("module_ddp.pth"), true).unwrap();
    assert_eq!(w.source, "");
    let keys: Vec<&str> = w.tensors.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "0.bias",
            "0.weight",
            "1.bias",
            "1.num_batches_tracked",
            "1.running_mean",
            "1.running_var",
            "1.weight"
        ]
    );
    let tracked = &w.tensors["1.num_batches_tracked"];
    assert_eq!(
        (tracked.dtype(), tracked.shape()),
        (kiln_engine::DType::I64, &[][..])
    );
}

fn assert_refused(path: &Path, global: &str) {
    let err = torch_file::load(path).unwrap_err();
    assert!(
        matches!(&err, Error::UnsafePickle { global: g, .. } if g == global),
        "{}: {err}",
        path.display()
    );
    assert_eq!(
        err.to_string(),
        format!(
            "refusing pickle global '{global}' in {}: only tensors and containers are read",
            path.display()
        )
    );
    // Every reader of checkpoints refuses it the same way.
    let err = load_weights(path, true).unwrap_err().to_string();
    assert!(
        err.contains(&format!("refusing pickle global '{global}'")),
        "{err}"
    );
}

#[test]
fn pickles_that_would_run_code_are_refused_by_name() {
    // torch.save of an object whose __reduce__ is os.system (posix.system on Linux), with GLOBAL
    // (protocol 2) and STACK_GLOBAL (protocol 4).
    assert_refused(&fixture("malicious_reduce.pth"), "posix.system");
    assert_refused(&fixture("malicious_proto4.pth"), "posix.system");

    let dir = tempfile::tempdir().unwrap();
    // Hand-made: a zip whose data.pkl calls os.system, builtins.eval through STACK_GLOBAL, a
    // pickled nn.Module, and a legacy file whose very first pickle is a call.
    let cases: [(&str, &[u8], &str); 4] = [
        (
            "os_system",
            b"\x80\x02cos\nsystem\nX\x04\x00\x00\x00echo\x85R.",
            "os.system",
        ),
        (
            "eval",
            b"\x80\x04\x8c\x08builtins\x8c\x04eval\x93\x8c\x011\x85R.",
            "builtins.eval",
        ),
        (
            "module",
            b"\x80\x02ctorch.nn.modules.linear\nLinear\n)\x81.",
            "torch.nn.modules.linear.Linear",
        ),
        (
            "getattr",
            b"\x80\x02c__builtin__\ngetattr\n.",
            "__builtin__.getattr",
        ),
    ];
    for (name, pickle, global) in cases {
        let path = dir.path().join(format!("{name}.pth"));
        std::fs::write(&path, zip_with_pickle(pickle)).unwrap();
        assert_refused(&path, global);
        let legacy = dir.path().join(format!("{name}_legacy.pth"));
        std::fs::write(&legacy, pickle).unwrap();
        assert_refused(&legacy, global);
    }
}

/// A torch-style zip archive (`archive/data.pkl`, stored) around `pickle`.
fn zip_with_pickle(pickle: &[u8]) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut out);
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file("archive/data.pkl", opts).unwrap();
    zip.write_all(pickle).unwrap();
    zip.start_file("archive/byteorder", opts).unwrap();
    zip.write_all(b"little").unwrap();
    zip.finish().unwrap();
    out.into_inner()
}
