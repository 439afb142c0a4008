//! Builds the plugins the integration tests load, from source: the shipped examples in
//! `plugins/` and the fixtures in `tests/plugins/`, as wasm32-wasip2 components in a target
//! folder of their own (`<target dir>/plugin-target`). Each plugin is laid out as the host expects it
//! (`<name>/plugin.toml` next to its `.wasm`) under `$OUT_DIR/plugins`, whose path the tests
//! get as `CRM_USERS_TEST_PLUGINS`.
//!
//! The Python and JavaScript plugins (`plugins-py/`, `plugins-js/`, `tests/plugins-py/`,
//! `tests/plugins-js/`) are built with pinned tools installed once under
//! `<target dir>/plugin-tools`: componentize-py from PyPI in a venv, jco with its QuickJS
//! backend from npm at the versions of `plugins-js/typo-domain-email/package-lock.json`. Cargo
//! reruns this script only when a plugin's source changes, so a test run builds them at most
//! once.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf();
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    // OUT_DIR is <target>/<profile>/build/<crate>-<hash>/out. The plugins' own target folder
    // is beside it, shared by every run of this script (clippy's, the test build's), so a
    // second run finds them built.
    let shared = out.ancestors().nth(4).unwrap_or(&out).to_path_buf();
    let target = shared.join("plugin-target");
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
            if let Some(wat) = wat_source(&plugin) {
                println!("cargo:rerun-if-changed={}", wat.display());
            }
        }
        build(&ws, &target);
        for plugin in plugin_folders(&ws) {
            lay_out(&plugin, &target, &laid_out);
        }
    }
    other_languages(&root, &shared, &laid_out);
    println!("cargo:rustc-env=CRM_USERS_TEST_PLUGINS={}", laid_out.display());
}

/// The componentize-py release the Python plugins are built with.
const COMPONENTIZE_PY: &str = "0.25.0";
/// Python plugins: folder, world, module holding the exports.
const PYTHON_PLUGINS: [(&str, &str, &str); 2] =
    [("plugins-py/eu-postal-address", "address-type", "app"), ("tests/plugins-py/py-raises", "email-validator", "app")];
/// JavaScript plugins: folder, world, source file.
const JS_PLUGINS: [(&str, &str, &str); 2] = [
    ("plugins-js/typo-domain-email", "email-validator", "validator.js"),
    ("tests/plugins-js/js-call-counter", "email-validator", "validator.js"),
];
/// The npm project whose lockfile pins jco for every JavaScript plugin here.
const JS_TOOLS_PROJECT: &str = "plugins-js/typo-domain-email";

fn other_languages(root: &Path, shared: &Path, laid_out: &Path) {
    let tools = shared.join("plugin-tools");
    let wit = root.join("wit/v0.1");
    let py = componentize_py(&tools);
    for (folder, world, module) in PYTHON_PLUGINS {
        let src = root.join(folder);
        rerun_for(&src, &["plugin.toml", &format!("{module}.py")]);
        let dest = laid_out.join(src.file_name().expect("plugin folder has a name"));
        let wasm = dest.join(wasm_name(&src));
        std::fs::create_dir_all(&dest).expect("can create the plugin folder");
        let status = Command::new(&py)
            // No __pycache__ in the source tree.
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .args(["-d"])
            .arg(&wit)
            .args(["-w", world, "componentize", module, "-p"])
            .arg(&src)
            .arg("-o")
            .arg(&wasm)
            .status()
            .expect("componentize-py runs");
        assert!(status.success(), "componentize-py failed for {folder}");
        std::fs::copy(src.join("plugin.toml"), dest.join("plugin.toml")).expect("can copy plugin.toml");
    }
    let jco = jco(&tools, &root.join(JS_TOOLS_PROJECT));
    for (folder, world, source) in JS_PLUGINS {
        let src = root.join(folder);
        rerun_for(&src, &["plugin.toml", source]);
        let dest = laid_out.join(src.file_name().expect("plugin folder has a name"));
        let wasm = dest.join(wasm_name(&src));
        std::fs::create_dir_all(&dest).expect("can create the plugin folder");
        let status = Command::new(&jco)
            .current_dir(&src)
            .args(["componentize", source, "--wit"])
            .arg(&wit)
            // Without the sync option QuickJS components use component-model async, which the host
            // does not enable.
            .args(["--world-name", world, "--backend", "quickjs", "--backend-qjs-disable-async", "--out"])
            .arg(&wasm)
            .status()
            .expect("jco runs");
        assert!(status.success(), "jco componentize failed for {folder}");
        std::fs::copy(src.join("plugin.toml"), dest.join("plugin.toml")).expect("can copy plugin.toml");
    }
}

fn rerun_for(folder: &Path, files: &[&str]) {
    for file in files {
        println!("cargo:rerun-if-changed={}", folder.join(file).display());
    }
}

/// componentize-py in a venv of its own, installed from PyPI when missing.
fn componentize_py(tools: &Path) -> PathBuf {
    let venv = tools.join(format!("componentize-py-{COMPONENTIZE_PY}"));
    let exe = venv.join("bin/componentize-py");
    if exe.is_file() {
        return exe;
    }
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let made = Command::new(&python).args(["-m", "venv"]).arg(&venv).status();
    assert!(
        matches!(made, Ok(s) if s.success()),
        "building the Python plugins needs {python} with venv (set PYTHON to another interpreter)"
    );
    let installed = Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .arg(format!("componentize-py=={COMPONENTIZE_PY}"))
        .status()
        .expect("pip runs");
    assert!(installed.success(), "pip could not install componentize-py=={COMPONENTIZE_PY}");
    exe
}

/// jco from the pinned npm project, installed into the tools folder when missing or when the
/// lockfile changed.
fn jco(tools: &Path, project: &Path) -> PathBuf {
    let dir = tools.join("jco");
    let exe = dir.join("node_modules/.bin/jco");
    let lock = std::fs::read(project.join("package-lock.json")).expect("the JavaScript tools' lockfile is readable");
    println!("cargo:rerun-if-changed={}", project.join("package-lock.json").display());
    if exe.is_file() && std::fs::read(dir.join("package-lock.json")).ok().as_ref() == Some(&lock) {
        return exe;
    }
    std::fs::create_dir_all(&dir).expect("can create the tools folder");
    std::fs::copy(project.join("package.json"), dir.join("package.json")).expect("can copy package.json");
    std::fs::write(dir.join("package-lock.json"), &lock).expect("can write package-lock.json");
    // `npm install` over a committed lockfile installs its exact versions; `npm ci` refuses a
    // lockfile that lists only this platform's optional binaries, as npm 11 writes them.
    let installed =
        Command::new("npm").current_dir(&dir).args(["install", "--no-audit", "--no-fund", "--no-save"]).status();
    assert!(
        matches!(installed, Ok(s) if s.success()),
        "building the JavaScript plugins needs node and npm (npm install of {} failed)",
        dir.display()
    );
    std::fs::write(dir.join("package-lock.json"), &lock).expect("can write package-lock.json");
    exe
}

/// The component file a plugin folder's manifest names.
fn wasm_name(plugin: &Path) -> String {
    let manifest = std::fs::read_to_string(plugin.join("plugin.toml")).expect("plugin.toml is readable");
    manifest
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("wasm")
                .map(|rest| rest.trim_start_matches([' ', '=']).trim().trim_matches('"').to_owned())
        })
        .expect("plugin.toml names its wasm")
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
        // The host build's flags are not meant for the wasm target; nor is clippy's wrapper,
        // which would also make a clippy run and a test run build the plugins twice.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building the plugins in {} failed", workspace.display());
}

/// The WAT source of a plugin written as component text (`<stem>.wat` next to a manifest naming
/// `<stem>.wasm`), for fixtures no Rust guest can express, such as `table.grow` bombs.
fn wat_source(plugin: &Path) -> Option<PathBuf> {
    let wasm = wasm_name(plugin);
    let wat = plugin.join(wasm.strip_suffix(".wasm")?).with_extension("wat");
    wat.is_file().then_some(wat)
}

/// Copy `plugin.toml` and the component it names into `<laid_out>/<folder name>/`; a WAT
/// fixture's component is assembled from its text instead.
fn lay_out(plugin: &Path, target: &Path, laid_out: &Path) {
    let wasm = wasm_name(plugin);
    let name = plugin.file_name().expect("plugin folder has a name");
    let dest = laid_out.join(name);
    std::fs::create_dir_all(&dest).expect("can create the plugin folder");
    std::fs::copy(plugin.join("plugin.toml"), dest.join("plugin.toml")).expect("can copy plugin.toml");
    if let Some(wat) = wat_source(plugin) {
        let bytes = wat::parse_file(&wat).unwrap_or_else(|e| panic!("{} is not valid WAT: {e}", wat.display()));
        std::fs::write(dest.join(&wasm), bytes).expect("can write the assembled component");
        return;
    }
    let built = target.join("wasm32-wasip2/release").join(&wasm);
    std::fs::copy(&built, dest.join(&wasm)).unwrap_or_else(|e| panic!("cannot copy {}: {e}", built.display()));
}
