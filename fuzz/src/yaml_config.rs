//! YAML configs: `kiln train --config FILE` parsed as the command line parses it (the file's
//! keys become flags under the command line's).
/// Reads `data` as the config of a `kiln train` command line.
pub fn run(data: &[u8]) {
    let path = crate::scratch::write("fuzz-config.yaml", data);
    let argv: Vec<String> = ["kiln", "train", "--config", &path.to_string_lossy()]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let _ = kiln::cli::parse(&argv);
}
