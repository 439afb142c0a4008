//! Debian packages the tests and benchmarks start servers from, installed with `apt-get` when
//! missing (as root, the way CI runs; the package lists are refreshed once if the first try
//! fails).

use std::process::{Command, Stdio};

/// `apt-get install` `package` without recommends; the error says what to do without root.
pub fn apt_install(package: &str, instead: &str) -> Result<(), String> {
    let apt = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run apt-get: {e}"))
    };
    let install = ["install", "-y", "--no-install-recommends", package];
    let mut out = apt(&install)?;
    if !out.status.success() {
        apt(&["update"])?;
        out = apt(&install)?;
    }
    if !out.status.success() {
        return Err(format!(
            "{package} is not installed and `apt-get install {package}` failed (run it as root{instead}):\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}
