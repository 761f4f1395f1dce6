//! Finding the `broker` and `tributary` binaries that the tests run.
//!
//! Cargo builds an integration test into `target/<profile>/deps/`, and the workspace's binaries
//! into `target/<profile>/`, so the binaries are found next to the test's own directory. `cargo
//! test` does not build binaries of other packages, hence the `cargo build --bins` hint (and
//! `deploy/test.sh`, which builds them first).

use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};

/// Overrides the path of the `broker` binary.
pub const BROKER_BIN_ENV: &str = "TRIBUTARY_BROKER_BIN";
/// Overrides the path of the `tributary` CLI binary.
pub const CLI_BIN_ENV: &str = "TRIBUTARY_CLI_BIN";

/// The `broker` binary: `$TRIBUTARY_BROKER_BIN`, else `target/<profile>/broker`.
pub fn broker_binary() -> Result<PathBuf> {
    find_binary("broker", BROKER_BIN_ENV)
}

/// The `tributary` CLI binary: `$TRIBUTARY_CLI_BIN`, else `target/<profile>/tributary`.
pub fn cli_binary() -> Result<PathBuf> {
    find_binary("tributary", CLI_BIN_ENV)
}

/// `target/<profile>/`, derived from the running test executable.
pub fn profile_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find the test executable's path")?;
    let mut dir = exe
        .parent()
        .context("test executable has no parent dir")?
        .to_owned();
    // Test executables live in target/<profile>/deps/; examples in target/<profile>/examples/.
    if dir
        .file_name()
        .is_some_and(|name| name == "deps" || name == "examples")
    {
        dir.pop();
    }
    Ok(dir)
}

fn find_binary(name: &str, env: &str) -> Result<PathBuf> {
    if let Some(path) = std::env::var_os(env) {
        let path = PathBuf::from(path);
        if !path.is_file() {
            bail!("{env}={} does not name a file", path.display());
        }
        return Ok(path);
    }
    let path = profile_dir()?.join(name);
    if !path.is_file() {
        bail!(
            "the `{name}` binary is missing at {}: run `cargo build --workspace --bins` (with \
             --release if the tests run in release), or `./deploy/test.sh`, or set {env}",
            path.display()
        );
    }
    Ok(path)
}
