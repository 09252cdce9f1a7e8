//! `crdgen [DIR]`: writes hush's CRDs into DIR (default `crds`). Used by `scripts/gen-crds.sh`.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let dir = std::env::args_os()
        .nth(1)
        .map_or_else(|| PathBuf::from("crds"), PathBuf::from);
    match hush_api::write_crds(&dir) {
        Ok(files) => {
            for f in files {
                println!("{}", dir.join(f).display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("crdgen: {e}");
            ExitCode::FAILURE
        }
    }
}
