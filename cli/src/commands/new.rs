//! `plughost new`: scaffold a plugin crate and say what to do next.

use std::{path::PathBuf, process::ExitCode};

use crate::scaffold::{self, ApiSource};
use anyhow::{bail, Result};
use clap::{ArgGroup, Args};

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("api").args(["api_path", "api_version"])))]
pub struct NewArgs {
    /// The plugin's name: also its crate name, folder name and plugin name.
    name: String,
    /// The folder to create the crate in (it goes to DIR/<name>).
    #[arg(long, value_name = "DIR", default_value = ".")]
    path: PathBuf,
    /// Depend on the plughost checkout at CHECKOUT by path
    /// [default: the checkout DIR or the current folder is in, else the one this binary was built from].
    #[arg(long, value_name = "CHECKOUT")]
    api_path: Option<PathBuf>,
    /// Depend on published plughost crates of this version instead of a checkout.
    #[arg(long, value_name = "VERSION")]
    api_version: Option<String>,
}

pub fn run(args: NewArgs) -> Result<ExitCode> {
    let api = match (args.api_path, args.api_version) {
        (Some(dir), _) => {
            let dir = std::path::absolute(&dir)?;
            if !scaffold::is_checkout(&dir) {
                bail!(
                    "{} is not a plughost checkout (no plugin-api/ and tests/conformance/ crates)",
                    dir.display()
                );
            }
            ApiSource::Checkout(dir)
        }
        (None, Some(version)) => ApiSource::Version(version),
        (None, None) => scaffold::detect_api_source(&args.path),
    };
    let s = scaffold::create(&args.name, &args.path, api)?;
    let files: Vec<String> = s.files.iter().map(|f| f.display().to_string()).collect();
    crate::outln!(
        "created plugin crate `{}` in {}",
        args.name,
        s.root.display()
    );
    crate::outln!("  depends on: {}", s.api.describe());
    crate::outln!("  files: {}", files.join(", "));
    crate::outln!();
    crate::outln!("next:");
    crate::outln!("  cd {}", s.root.display());
    crate::outln!(
        "  cargo test                 # unit tests, then the conformance kit on the built library"
    );
    crate::outln!("  cargo build --release");
    crate::outln!("  plughost conformance {}", s.release_library.display());
    crate::outln!();
    crate::outln!("manifest snippet (also in {}):", scaffold::SNIPPET_FILE);
    crate::outln!();
    crate::out!("{}", s.snippet);
    Ok(ExitCode::SUCCESS)
}
