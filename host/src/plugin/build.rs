//! `weir plugin build DIR`: turns a plugin's source directory into a component.
//! (Interim version by the lead: Rust crates via the Debian route; the full version with the
//! rustup route and Python plugins replaces it.)

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

/// Wraps a core module carrying wit-bindgen's component-type section into a component; input
/// that already is a component is returned unchanged.
pub fn componentize(wasm: &[u8]) -> anyhow::Result<Vec<u8>> {
    if wasm.len() >= 8 && wasm[0..4] == *b"\0asm" && wasm[4..8] != [1, 0, 0, 0] {
        return Ok(wasm.to_vec());
    }
    wit_component::ComponentEncoder::default()
        .module(wasm)
        .context("reading the core module's component-type section (was it built with wit-bindgen?)")?
        .validate(true)
        .encode()
        .context("encoding the component")
}

/// The repository root: the nearest ancestor holding wit/weir.wit.
fn repo_root(start: &Path) -> Option<PathBuf> {
    let start = start.canonicalize().ok()?;
    start.ancestors().find(|d| d.join("wit/weir.wit").exists()).map(Path::to_path_buf)
}

/// Builds the Rust plugin crate in `dir` into a component at `out`.
pub fn build_plugin(dir: &Path, out: &Path) -> anyhow::Result<()> {
    let manifest = dir.join("Cargo.toml");
    if !manifest.exists() {
        bail!("{} has no Cargo.toml: a plugin directory is a Rust crate (crate-type cdylib)", dir.display());
    }
    let root = repo_root(dir).unwrap_or_else(|| dir.to_path_buf());
    let target_dir = root.join("target/wasm-guest");
    if !Path::new("/usr/bin/rustc").exists() {
        bail!("no Wasm toolchain: run scripts/wasm-toolchain.sh");
    }
    let status = Command::new("/usr/bin/cargo")
        .args(["build", "--release", "-Zbuild-std=std,panic_abort", "--target", "wasm32-unknown-unknown", "--manifest-path"])
        .arg(&manifest)
        .env("RUSTC", "/usr/bin/rustc")
        .env("RUSTC_BOOTSTRAP", "1")
        .env("CARGO_TARGET_DIR", &target_dir)
        .status()
        .with_context(|| format!("running /usr/bin/cargo for {}", dir.display()))?;
    if !status.success() {
        bail!("building {} failed ({status}); see cargo's output above", dir.display());
    }
    let name = cargo_package_name(&manifest)?.replace('-', "_");
    let core = target_dir.join("wasm32-unknown-unknown/release").join(format!("{name}.wasm"));
    let bytes = std::fs::read(&core).with_context(|| format!("reading {}", core.display()))?;
    let component = componentize(&bytes).with_context(|| format!("turning {} into a component", core.display()))?;
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    crate::atomic_file::write_atomic(out, &component).with_context(|| format!("writing {}", out.display()))?;
    Ok(())
}

fn cargo_package_name(manifest: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(manifest)?;
    let value: toml::Value = toml::from_str(&text).with_context(|| format!("parsing {}", manifest.display()))?;
    value
        .get("package")
        .and_then(|p| p.get("name"))
        .and_then(|n| n.as_str())
        .map(str::to_string)
        .with_context(|| format!("{} has no [package] name", manifest.display()))
}
