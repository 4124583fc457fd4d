//! `weir plugin build DIR`: turns a plugin's source directory into a component.
//!
//! - A Rust crate (DIR has `Cargo.toml`, crate-type `cdylib`, usually on `weir-guest`):
//!   * with rustup's `wasm32-wasip2` target installed, `cargo build --target wasm32-wasip2`,
//!     which links a component directly;
//!   * otherwise Debian's toolchain (`/usr/bin/cargo`, `/usr/bin/rustc` with the std sources):
//!     a core module for `wasm32-unknown-unknown` with std built from source, then wrapped into a
//!     component by [`componentize`] from the component-type section wit-bindgen left in it.
//!
//!   Guest builds use their own target dir, `<repo>/target/wasm-guest`, so they never wait on or
//!   invalidate the host's build.
//! - A Python plugin (DIR has `app.py`): `componentize-py` from `<repo>/.venv-plugins`, with
//!   `<repo>/guest-sdk/python` (the `weir_guest` helper) on the module path. The WIT world comes
//!   from app.py: a top-level `WORLD = "stateful"` (any world of the contract) names it; without
//!   one, an app.py that calls `export_stateful(` is built as `stateful`, one that calls
//!   `export_batch_sink(` as `batch-sink`, anything else as `mapper`.
//! - A JavaScript plugin (DIR has `app.js`, an ES module exporting a world's functions, usually
//!   through the SDK in `<repo>/guest-sdk/js`): `<repo>/tools/js/build.mjs` bundles it (rolldown)
//!   and runs `componentize-js` from `<repo>/tools/js` (`scripts/js-toolchain.sh` installs both),
//!   without AOT and without `wasi:http`. The world: a top-level `export const WORLD = "stateful";`
//!   names it; without one, an app.js calling `exportStateful(` is `stateful`, one calling
//!   `exportBatchSink(` is `batch-sink`, anything else `mapper` (docs/plugins-js.md).
//!
//! - A C plugin (DIR has `plugin.c`, or a Makefile with a `weir-wasm` target): `wit-bindgen c`,
//!   clang for wasm32-wasip1 with wasi-libc and the SDK in `<repo>/guest-sdk/c`, then
//!   wit-component with the WASI preview 1 adapter ([`c`], docs/plugins-c.md;
//!   `scripts/c-toolchain.sh` installs the tools).
//!
//! `<repo>` is the nearest ancestor of DIR holding `wit/weir.wit` (or the parent of
//! `$WEIR_WIT_DIR`). `scripts/wasm-toolchain.sh` installs whichever toolchain is missing.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

mod c;

/// The message for a machine with no route to Wasm.
const INSTALL_HINT: &str = "run scripts/wasm-toolchain.sh to install one";

/// Builds the plugin in `dir` (a Cargo crate, or a Python plugin dir containing app.py) into a
/// component at `out`.
pub fn build_plugin(dir: &Path, out: &Path) -> anyhow::Result<()> {
    if !dir.is_dir() {
        bail!("plugin directory {} does not exist", dir.display());
    }
    let component = if dir.join("Cargo.toml").is_file() {
        build_rust(dir).with_context(|| format!("building the Rust plugin in {}", dir.display()))?
    } else if dir.join("app.py").is_file() {
        build_python(dir).with_context(|| format!("building the Python plugin in {}", dir.display()))?
    } else if dir.join("app.js").is_file() {
        build_js(dir).with_context(|| format!("building the JavaScript plugin in {}", dir.display()))?
    } else if c::is_c_plugin(dir) {
        c::build_c(dir).with_context(|| format!("building the C plugin in {}", dir.display()))?
    } else {
        bail!(
            "{} is not a plugin directory: it needs a Cargo.toml (a Rust crate of crate-type cdylib), \
             an app.py (a Python plugin), an app.js (a JavaScript plugin) or a plugin.c (a C plugin)",
            dir.display()
        );
    };
    crate::atomic_file::write_atomic(out, &component).with_context(|| format!("writing {}", out.display()))?;
    Ok(())
}

/// Wraps a core module carrying wit-bindgen's component-type section into a component (a no-op
/// for input that already is a component).
pub fn componentize(wasm: &[u8]) -> anyhow::Result<Vec<u8>> {
    if wasm.len() < 8 || wasm[0..4] != *b"\0asm" {
        bail!("not a WebAssembly binary (no \\0asm header)");
    }
    // Bytes 4..8 are the version (1 for a core module) and layer (1 for a component).
    if wasm[4..8] != [1, 0, 0, 0] {
        return Ok(wasm.to_vec());
    }
    let (with_section, _) = wit_component::metadata::decode(wasm).context("reading the core module")?;
    if with_section.is_none() {
        bail!(
            "the core module has no component-type section, so its exports cannot be typed \
             (was it built with wit-bindgen, e.g. through weir-guest?)"
        );
    }
    wit_component::ComponentEncoder::default()
        .module(wasm)
        .context("reading the core module's component-type section (was it built with wit-bindgen?)")?
        .validate(true)
        .encode()
        .context("encoding the component")
}

/// Where the contract and the guest SDKs live.
pub(crate) struct Repo {
    pub(crate) wit: PathBuf,
    pub(crate) root: PathBuf,
}

/// The repository the plugin belongs to: `$WEIR_WIT_DIR` if set, else the nearest ancestor of
/// `dir` holding `wit/weir.wit`, else the one the running `weir` binary was built in (a plugin
/// made by `weir plugin new` outside the repository).
pub(crate) fn repo_for(dir: &Path) -> anyhow::Result<Repo> {
    if let Some(wit) = std::env::var_os("WEIR_WIT_DIR").filter(|v| !v.is_empty()) {
        let wit = PathBuf::from(wit)
            .canonicalize()
            .with_context(|| format!("WEIR_WIT_DIR={:?} does not exist", std::env::var_os("WEIR_WIT_DIR")))?;
        let root = wit.parent().map(Path::to_path_buf).unwrap_or_else(|| wit.clone());
        return Ok(Repo { wit, root });
    }
    let start = dir.canonicalize().with_context(|| format!("resolving {}", dir.display()))?;
    let holds_wit = |d: &&Path| d.join("wit/weir.wit").is_file();
    let exe = std::env::current_exe().ok().and_then(|e| e.canonicalize().ok());
    let root = start
        .ancestors()
        .find(holds_wit)
        .or_else(|| exe.as_deref().and_then(|e| e.ancestors().find(holds_wit)))
        .map(Path::to_path_buf)
        .with_context(|| {
            format!(
                "no wit/weir.wit in {} or any parent, nor beside the weir binary: build plugins inside \
                 the weir repository, or set WEIR_WIT_DIR to its wit/ directory",
                start.display()
            )
        })?;
    Ok(Repo { wit: root.join("wit"), root })
}

/// How Rust guests are compiled on this machine.
enum RustRoute {
    /// rustup with the `wasm32-wasip2` target: cargo links a component.
    Wasip2,
    /// Debian's rustc/cargo with std sources: a core module, then [`componentize`].
    DebianBuildStd,
}

fn rust_route() -> anyhow::Result<RustRoute> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().any(|l| l.trim() == "wasm32-wasip2"))
        .unwrap_or(false);
    if installed {
        return Ok(RustRoute::Wasip2);
    }
    let missing: Vec<&str> = [
        ("/usr/bin/rustc", "rustc-web"),
        ("/usr/bin/cargo", "cargo-web"),
        ("/usr/lib/rustlib/src/rust/library/std", "rust-web-src"),
    ]
    .iter()
    .filter(|(path, _)| !Path::new(path).exists())
    .map(|(_, package)| *package)
    .collect();
    if missing.is_empty() {
        return Ok(RustRoute::DebianBuildStd);
    }
    bail!(
        "no Wasm toolchain for Rust: rustup has no wasm32-wasip2 target, and Debian's route lacks \
         the package(s) {}; {INSTALL_HINT}",
        missing.join(", ")
    )
}

/// The cdylib's file stem: `[lib] name`, else the package name with `-` as `_`.
fn lib_name(manifest: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(manifest).with_context(|| format!("reading {}", manifest.display()))?;
    let value: toml::Value = toml::from_str(&text).with_context(|| format!("parsing {}", manifest.display()))?;
    let name = value
        .get("lib")
        .and_then(|l| l.get("name"))
        .or_else(|| value.get("package").and_then(|p| p.get("name")))
        .and_then(|n| n.as_str())
        .with_context(|| format!("{} has no [package] name", manifest.display()))?;
    Ok(name.replace('-', "_"))
}

fn build_rust(dir: &Path) -> anyhow::Result<Vec<u8>> {
    let dir = &dir.canonicalize().with_context(|| format!("resolving {}", dir.display()))?;
    let manifest = dir.join("Cargo.toml");
    let name = lib_name(&manifest)?;
    let target_dir = match repo_for(dir) {
        Ok(repo) => repo.root.join("target/wasm-guest"),
        Err(_) => dir.join("target/wasm-guest"),
    };
    let route = rust_route()?;
    let (mut cmd, triple, how) = match route {
        RustRoute::Wasip2 => {
            let mut c = Command::new("cargo");
            c.args(["build", "--release", "--target", "wasm32-wasip2"]);
            (c, "wasm32-wasip2", "rustup's wasm32-wasip2 target")
        }
        RustRoute::DebianBuildStd => {
            let mut c = Command::new("/usr/bin/cargo");
            c.args(["build", "--release", "-Zbuild-std=std,panic_abort", "--target", "wasm32-unknown-unknown"])
                .env("RUSTC", "/usr/bin/rustc")
                .env("RUSTC_BOOTSTRAP", "1");
            (c, "wasm32-unknown-unknown", "Debian's rustc with -Zbuild-std, then wit-component")
        }
    };
    cmd.arg("--manifest-path").arg(&manifest).env("CARGO_TARGET_DIR", &target_dir).current_dir(dir);
    // Settings meant for the build that runs us (under `cargo run`/`cargo test`) must not leak
    // into the guest's build.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_BUILD_TARGET",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_MAKEFLAGS",
        "MAKEFLAGS",
        "MFLAGS",
    ] {
        cmd.env_remove(var);
    }
    if let RustRoute::Wasip2 = route {
        cmd.env_remove("RUSTC");
    }
    eprintln!("weir plugin build: {} (Rust, via {how})", dir.display());
    let status = cmd.status().with_context(|| format!("running {}", describe(&cmd)))?;
    if !status.success() {
        bail!("{} failed ({status}); see cargo's output above", describe(&cmd));
    }
    let artifact = target_dir.join(triple).join("release").join(format!("{name}.wasm"));
    let bytes = std::fs::read(&artifact)
        .with_context(|| format!("reading {} (is the crate's crate-type \"cdylib\"?)", artifact.display()))?;
    componentize(&bytes).with_context(|| format!("turning {} into a component", artifact.display()))
}

fn build_python(dir: &Path) -> anyhow::Result<Vec<u8>> {
    let dir = &dir.canonicalize().with_context(|| format!("resolving {}", dir.display()))?;
    let repo = repo_for(dir)?;
    let venv_tool = repo.root.join(".venv-plugins/bin/componentize-py");
    let tool = if venv_tool.is_file() {
        venv_tool
    } else if Command::new("componentize-py").arg("--version").output().is_ok_and(|o| o.status.success()) {
        PathBuf::from("componentize-py")
    } else {
        bail!("componentize-py is not installed ({} is missing); {INSTALL_HINT}", venv_tool.display());
    };
    let app = dir.join("app.py");
    let source = std::fs::read_to_string(&app).with_context(|| format!("reading {}", app.display()))?;
    let world = python_world(&source).with_context(|| format!("reading the world of {}", app.display()))?;
    let worlds = wit_worlds(&repo.wit)?;
    if !worlds.iter().any(|w| *w == world) {
        bail!(
            "{} asks for the world `{world}`, but the contract in {} has no such world (its worlds: {})",
            app.display(),
            repo.wit.display(),
            worlds.join(", ")
        );
    }
    let sdk = repo.root.join("guest-sdk/python");
    // componentize-py writes its output in place: write a scratch file, read it back, and let
    // the caller put it at `out` atomically.
    let scratch = std::env::temp_dir().join(format!("weir-plugin-{}-{}.wasm", std::process::id(), unique()));
    let mut cmd = Command::new(&tool);
    cmd.arg("-d")
        .arg(&repo.wit)
        .args(["-w", &world, "componentize", "app", "-p"])
        .arg(dir)
        .arg("-p")
        .arg(&sdk)
        .arg("-o")
        .arg(&scratch)
        // Keep the plugin's directory free of __pycache__.
        .env("PYTHONDONTWRITEBYTECODE", "1");
    eprintln!("weir plugin build: {} (Python, world `{world}`, via componentize-py)", dir.display());
    let bytes = run_into(&mut cmd, &scratch)?;
    // componentize-py already gives a component; this checks the header all the same.
    componentize(&bytes)
}

/// Runs `cmd`, which writes a component to `scratch`, and returns the component's bytes (the
/// scratch file is removed either way).
fn run_into(cmd: &mut Command, scratch: &Path) -> anyhow::Result<Vec<u8>> {
    let bytes = match cmd.status() {
        Ok(s) if s.success() => std::fs::read(scratch).with_context(|| format!("reading {}", scratch.display())),
        Ok(s) => Err(anyhow::anyhow!("{} failed ({s}); see its output above", describe(cmd))),
        Err(e) => Err(anyhow::Error::new(e).context(format!("running {}", describe(cmd)))),
    };
    let _ = std::fs::remove_file(scratch);
    bytes
}

/// A JavaScript plugin: `app.js` (and what it imports, e.g. the SDK in `guest-sdk/js`) bundled
/// by `tools/js/build.mjs` with rolldown, then through componentize-js (SpiderMonkey) into a
/// component of the world [`js_world`] reads. No `--aot` (it downloads weval); `wasi:http`, which
/// weir does not give plugins, is left out of the component's imports.
fn build_js(dir: &Path) -> anyhow::Result<Vec<u8>> {
    let dir = &dir.canonicalize().with_context(|| format!("resolving {}", dir.display()))?;
    let repo = repo_for(dir)?;
    let tool = repo.root.join("tools/js/node_modules/.bin/componentize-js");
    if !tool.is_file() {
        bail!("componentize-js is not installed ({} is missing); run scripts/js-toolchain.sh", tool.display());
    }
    let app = dir.join("app.js");
    let source = std::fs::read_to_string(&app).with_context(|| format!("reading {}", app.display()))?;
    let world = js_world(&source).with_context(|| format!("reading the world of {}", app.display()))?;
    let worlds = wit_worlds(&repo.wit)?;
    if !worlds.iter().any(|w| *w == world) {
        bail!(
            "{} asks for the world `{world}`, but the contract in {} has no such world (its worlds: {})",
            app.display(),
            repo.wit.display(),
            worlds.join(", ")
        );
    }
    let scratch = std::env::temp_dir().join(format!("weir-plugin-{}-{}.wasm", std::process::id(), unique()));
    let mut cmd = Command::new("node");
    cmd.arg(repo.root.join("tools/js/build.mjs"))
        .arg("--wit")
        .arg(&repo.wit)
        .args(["--world", &world, "--out"])
        .arg(&scratch)
        .arg(&app)
        .current_dir(dir);
    eprintln!("weir plugin build: {} (JavaScript, world `{world}`, via componentize-js)", dir.display());
    componentize(&run_into(&mut cmd, &scratch)?)
}

/// The WIT world a JavaScript plugin implements, from its app.js: a top-level
/// `export const WORLD = "name";` (or `const WORLD = 'name'`) names it; without one, an app.js
/// that calls the SDK's `exportStateful(` is `stateful`, one that calls `exportBatchSink(` is
/// `batch-sink`, anything else `mapper`.
fn js_world(source: &str) -> anyhow::Result<String> {
    for (n, line) in source.lines().enumerate() {
        let decl = line.strip_prefix("export ").unwrap_or(line);
        let Some(rest) = decl.strip_prefix("const WORLD").or_else(|| decl.strip_prefix("let WORLD")) else {
            continue;
        };
        let Some(value) = rest.trim_start().strip_prefix('=') else { continue };
        return match quoted_world(value.trim(), Some(';'), "//") {
            Some(name) => Ok(name.to_string()),
            None => bail!(
                "line {}: `{}` must give the world as a plain string, e.g. export const WORLD = \"stateful\";",
                n + 1,
                line.trim_end()
            ),
        };
    }
    Ok(world_of_export(source, "exportStateful(", "exportBatchSink("))
}

/// A world name quoted (`"name"` or `'name'`) at the start of `value`, followed by nothing but
/// an optional `end` character and an optional comment starting with `comment`.
fn quoted_world<'a>(value: &'a str, end: Option<char>, comment: &str) -> Option<&'a str> {
    let quote = value.chars().next().filter(|q| *q == '"' || *q == '\'')?;
    let inner = &value[1..];
    let close = inner.find(quote)?;
    let rest = inner[close + 1..].trim_start();
    let rest = end.and_then(|e| rest.strip_prefix(e)).unwrap_or(rest).trim_start();
    let name = &inner[..close];
    let plain = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    (plain && (rest.is_empty() || rest.starts_with(comment))).then_some(name)
}

/// The world a plugin's source implies by the SDK export it calls: `stateful` or `batch-sink`
/// for their exports, else `mapper`.
fn world_of_export(source: &str, stateful: &str, batch_sink: &str) -> String {
    if source.contains(stateful) {
        "stateful"
    } else if source.contains(batch_sink) {
        "batch-sink"
    } else {
        "mapper"
    }
    .to_string()
}

/// The WIT world a Python plugin implements, from its app.py: a top-level `WORLD = "name"`
/// (or `'name'`, a trailing `# comment` allowed), else `stateful` when the module calls
/// `export_stateful(` (the SDK's export for that world), else `batch-sink` when it calls
/// `export_batch_sink(`, else `mapper`.
fn python_world(source: &str) -> anyhow::Result<String> {
    for (n, line) in source.lines().enumerate() {
        let Some(rest) = line.strip_prefix("WORLD") else { continue };
        let Some(value) = rest.trim_start().strip_prefix('=') else { continue };
        let value = value.trim();
        if value.starts_with('=') {
            continue; // `WORLD == ...`, a comparison
        }
        return match quoted_world(value, None, "#") {
            Some(name) => Ok(name.to_string()),
            None => bail!(
                "line {}: `{}` must give the world as a plain string, e.g. WORLD = \"stateful\"",
                n + 1,
                line.trim_end()
            ),
        };
    }
    Ok(world_of_export(source, "export_stateful(", "export_batch_sink("))
}

/// The names of the worlds the contract declares (`world NAME {` lines of the .wit files in `wit`).
fn wit_worlds(wit: &Path) -> anyhow::Result<Vec<String>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(wit)
        .with_context(|| format!("reading {}", wit.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension() == Some(OsStr::new("wit")))
        .collect();
    files.sort();
    let mut worlds = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).with_context(|| format!("reading {}", f.display()))?;
        worlds.extend(text.lines().filter_map(|l| {
            let name = l.trim_start().strip_prefix("world ")?.trim_end().strip_suffix('{')?.trim();
            Some(name.to_string())
        }));
    }
    Ok(worlds)
}

/// A number distinct between calls in one process, for scratch file names.
fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// The command line, for error messages.
fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        let a = a.to_string_lossy();
        if a.contains(' ') {
            s.push_str(&format!("{a:?}"));
        } else {
            s.push_str(&a);
        }
    }
    let envs: Vec<String> = cmd
        .get_envs()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .filter(|(k, _)| *k != OsStr::new("CARGO_TARGET_DIR"))
        .map(|(k, v)| format!("{}={}", k.to_string_lossy(), v.to_string_lossy()))
        .collect();
    if envs.is_empty() {
        s
    } else {
        format!("{} {s}", envs.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_component_passes_through_and_garbage_is_refused() {
        // The 8-byte preamble of an (empty) component: magic, version 0x0d, layer 1.
        let component = [0, b'a', b's', b'm', 0x0d, 0, 1, 0];
        assert_eq!(componentize(&component).unwrap(), component);
        assert!(componentize(b"hello world").unwrap_err().to_string().contains("not a WebAssembly binary"));
        // A core module without wit-bindgen's section cannot become a component.
        let core = [0, b'a', b's', b'm', 1, 0, 0, 0];
        let e = format!("{:#}", componentize(&core).unwrap_err());
        assert!(e.contains("no component-type section"), "{e}");
    }

    #[test]
    fn a_directory_without_a_plugin_is_refused_by_name() {
        let d = tempfile::tempdir().unwrap();
        let e = build_plugin(d.path(), &d.path().join("x.wasm")).unwrap_err().to_string();
        assert!(e.contains("is not a plugin directory") && e.contains("Cargo.toml") && e.contains("app.py"), "{e}");
        assert!(e.contains("app.js"), "{e}");
    }

    #[test]
    fn a_js_plugin_without_the_js_toolchain_names_the_script() {
        let repo = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(repo.path().join("wit")).unwrap();
        std::fs::write(repo.path().join("wit/weir.wit"), "package weir:plugin@0.1.0;\n").unwrap();
        let dir = repo.path().join("plugins/p");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("app.js"), "export function init(config) {}\n").unwrap();
        let e = format!("{:#}", build_plugin(&dir, &repo.path().join("p.wasm")).unwrap_err());
        assert!(e.starts_with("building the JavaScript plugin in "), "{e}");
        assert!(e.contains("componentize-js is not installed") && e.contains("run scripts/js-toolchain.sh"), "{e}");
    }

    #[test]
    fn a_python_plugin_names_its_world_or_is_a_mapper() {
        let world = |s: &str| python_world(s).unwrap();
        assert_eq!(world("import weir_guest as w\nWitWorld = w.export(M)\n"), "mapper");
        assert_eq!(world("WORLD = \"stateful\"\nWitWorld = w.export_stateful(S)\n"), "stateful");
        assert_eq!(world("WORLD='batch-sink'  # foreachBatch\n"), "batch-sink");
        // The SDK's stateful export alone is enough; a WORLD line wins over it.
        assert_eq!(world("WitWorld = w.export_stateful(S)\n"), "stateful");
        assert_eq!(world("WitWorld = w.export_batch_sink(R)\n"), "batch-sink");
        assert_eq!(world("WORLD = \"mapper\"\nx = export_stateful(S)\n"), "mapper");
        // Only a top-level assignment counts.
        assert_eq!(world("def f():\n    WORLD = \"stateful\"\nWORLDS = 1\n"), "mapper");
        let e = python_world("WORLD = STATEFUL\n").unwrap_err().to_string();
        assert!(e.contains("line 1") && e.contains("plain string"), "{e}");
    }

    #[test]
    fn a_js_plugin_names_its_world_or_the_sdk_export_decides() {
        let world = |s: &str| js_world(s).unwrap();
        assert_eq!(world("export const { init, outputSchema, mapBatch } = w.exportMapper(M);\n"), "mapper");
        assert_eq!(world("export const WORLD = \"stateful\";\n"), "stateful");
        assert_eq!(world("const WORLD = 'batch-sink' // foreachBatch\n"), "batch-sink");
        assert_eq!(world("export const { init, writeBatch } = w.exportBatchSink(R);\n"), "batch-sink");
        assert_eq!(world("export const { init } = w.exportStateful(S);\n"), "stateful");
        // A WORLD line wins over the export; only a top-level declaration counts.
        assert_eq!(world("export const WORLD = 'mapper';\nw.exportStateful(S);\n"), "mapper");
        assert_eq!(world("function f() {\n  const WORLD = 'stateful';\n}\nconst WORLDS = 1;\n"), "mapper");
        let e = js_world("export const WORLD = STATEFUL;\n").unwrap_err().to_string();
        assert!(e.contains("line 1") && e.contains("plain string"), "{e}");
    }

    #[test]
    fn the_worlds_are_read_from_the_contract() {
        let wit = Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit");
        let worlds = wit_worlds(&wit).unwrap();
        for w in ["mapper", "stateful", "batch-sink"] {
            assert!(worlds.iter().any(|x| x == w), "{w} missing from {worlds:?}");
        }
    }

    #[test]
    fn lib_name_prefers_the_lib_section() {
        let d = tempfile::tempdir().unwrap();
        let m = d.path().join("Cargo.toml");
        std::fs::write(&m, "[package]\nname = \"my-plugin\"\n").unwrap();
        assert_eq!(lib_name(&m).unwrap(), "my_plugin");
        std::fs::write(&m, "[package]\nname = \"my-plugin\"\n[lib]\nname = \"other\"\n").unwrap();
        assert_eq!(lib_name(&m).unwrap(), "other");
    }
}
