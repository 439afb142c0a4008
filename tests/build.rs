//! Builds the plugins the integration tests load, from source: the shipped examples in
//! `plugins/` and the fixtures in `tests/plugins/`, as wasm32-wasip2 components in a target
//! folder of their own under OUT_DIR. Each plugin is laid out as the host expects it
//! (`<name>/plugin.toml` next to its `.wasm`) under `$OUT_DIR/plugins`, whose path the tests
//! get as `CRM_USERS_TEST_PLUGINS`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf();
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let target = out.join("wasm-target");
    let laid_out = out.join("plugins");

    for dir in ["wit", "guest-api/src", "guest-api/Cargo.toml"] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    for workspace in ["plugins", "tests/plugins"] {
        let ws = root.join(workspace);
        println!("cargo:rerun-if-changed={}", ws.join("Cargo.toml").display());
        println!("cargo:rerun-if-changed={}", ws.join("Cargo.lock").display());
        for plugin in plugin_folders(&ws) {
            for part in ["src", "Cargo.toml", "plugin.toml"] {
                println!("cargo:rerun-if-changed={}", plugin.join(part).display());
            }
        }
        build(&ws, &target);
        for plugin in plugin_folders(&ws) {
            lay_out(&plugin, &target, &laid_out);
        }
    }
    println!("cargo:rustc-env=CRM_USERS_TEST_PLUGINS={}", laid_out.display());
}

fn plugin_folders(workspace: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(workspace)
        .expect("plugin workspace is readable")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("plugin.toml").is_file())
        .collect();
    found.sort();
    found
}

fn build(workspace: &Path, target: &Path) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "--locked", "--target", "wasm32-wasip2", "--manifest-path"])
        .arg(workspace.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", target)
        // The host build's flags are not meant for the wasm target.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building the plugins in {} failed", workspace.display());
}

/// Copy `plugin.toml` and the component it names into `<laid_out>/<folder name>/`.
fn lay_out(plugin: &Path, target: &Path, laid_out: &Path) {
    let manifest = std::fs::read_to_string(plugin.join("plugin.toml")).expect("plugin.toml is readable");
    let wasm = manifest
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("wasm")
                .map(|rest| rest.trim_start_matches([' ', '=']).trim().trim_matches('"').to_owned())
        })
        .expect("plugin.toml names its wasm");
    let name = plugin.file_name().expect("plugin folder has a name");
    let dest = laid_out.join(name);
    std::fs::create_dir_all(&dest).expect("can create the plugin folder");
    std::fs::copy(plugin.join("plugin.toml"), dest.join("plugin.toml")).expect("can copy plugin.toml");
    let built = target.join("wasm32-wasip2/release").join(&wasm);
    std::fs::copy(&built, dest.join(&wasm)).unwrap_or_else(|e| panic!("cannot copy {}: {e}", built.display()));
}
