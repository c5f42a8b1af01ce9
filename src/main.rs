//! The `kiln` command line.

use std::process::ExitCode;

fn main() -> ExitCode {
    kiln_engine::cpu::heap::keep_freed_blocks();
    let argv: Vec<String> = std::env::args().collect();
    let cli = match kiln::cli::parse(&argv) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    match kiln::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            // A flag's value refused is a usage error, with argparse's (and clap's) status 2.
            match e {
                kiln_train::Error::Flag { .. } => ExitCode::from(2),
                _ => ExitCode::FAILURE,
            }
        }
    }
}
