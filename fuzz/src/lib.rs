//! Bodies of kiln's fuzz targets. Each feeds outside bytes to one of kiln's readers the way a
//! user's file reaches it (through a scratch file where the reader takes a path) and goes on to
//! use what was read; a reader may refuse the bytes with an error, never panic, hang or abort.
pub mod checkpoint;
pub mod class_map;
pub mod decode;
pub mod hfds;
pub mod idx;
pub mod image_folder;
pub mod ptx;
pub mod scratch;
pub mod tar;
pub mod torch_file;
pub mod yaml_config;

/// Splits `data` in two at the offset its first two bytes give (big-endian, clamped), so one
/// input can carry two files.
pub fn split_two(data: &[u8]) -> (&[u8], &[u8]) {
    let Some((head, rest)) = data.split_first_chunk::<2>() else {
        return (data, &[]);
    };
    rest.split_at((u16::from_be_bytes(*head) as usize).min(rest.len()))
}

/// Lets panics raised inside third-party decoders (zune-jpeg, png) through to kiln, which
/// catches them and skips the file; any other panic still aborts, so the fuzzer reports it.
/// libfuzzer-sys's own hook aborts on every panic, caught or not.
pub fn tolerate_decoder_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let fuzzer_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let third_party = info
                .location()
                .is_some_and(|l| l.file().contains("/.cargo/registry/"));
            if !third_party {
                fuzzer_hook(info);
            }
        }));
    });
}
