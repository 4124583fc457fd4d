//! `weir plugin build DIR` for C plugins (docs/plugins-c.md).
//!
//! DIR has `plugin.c` (and maybe more `.c` files), or a Makefile with a `weir-wasm` target:
//! 1. the world comes from a `#define WEIR_WORLD "stateful"` line (or a `weir:world stateful`
//!    comment) in DIR's `.c`/`.h` files or Makefile; without one, `mapper`;
//! 2. `wit-bindgen c` writes that world's bindings into a scratch dir;
//! 3. clang compiles for `wasm32-wasip1` (wasi-libc) as a reactor, `-O2`: DIR's `.c` files (all
//!    but test files: `test.c`, `test_*.c`, `*_test.c`), the SDK (`guest-sdk/c/weir.c` and the
//!    glue `weir_wasm.c`) and the bindings. With a Makefile and no plugin.c, `make weir-wasm`
//!    runs instead with the variables `WEIR_CC`, `WEIR_CFLAGS`, `WEIR_SDK_SRCS` and `WEIR_OUT`
//!    (the core module to write);
//! 4. wit-component turns the core module into a component, with WASI preview 1 calls (stdio,
//!    clocks, random...) adapted to the preview 2 interfaces weir links.
//!
//! Tools: `$WEIR_CLANG`, else `clang-22`, else `clang`; wasi-libc from `$WASI_SYSROOT`, else
//! Debian's `wasi-libc` package; `<repo>/tools/c/bin/wit-bindgen`, else `wit-bindgen` on PATH.
//! `scripts/c-toolchain.sh` installs them.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

use super::{describe, repo_for, run_into, unique, wit_worlds};

const HINT: &str = "run scripts/c-toolchain.sh to install the C toolchain (see docs/plugins-c.md)";

/// Whether DIR is a C plugin: a `plugin.c`, or a Makefile with a `weir-wasm` target.
pub(super) fn is_c_plugin(dir: &Path) -> bool {
    dir.join("plugin.c").is_file()
        || std::fs::read_to_string(dir.join("Makefile")).is_ok_and(|m| m.lines().any(|l| l.starts_with("weir-wasm:")))
}

/// The world a C plugin names, from its sources: `#define WEIR_WORLD "name"` or a comment
/// `weir:world name`; `None` when no line names one.
pub(super) fn c_world(source: &str) -> anyhow::Result<Option<String>> {
    for (n, line) in source.lines().enumerate() {
        let t = line.trim();
        let value = if let Some(rest) = t.strip_prefix("#define WEIR_WORLD") {
            if !rest.starts_with([' ', '\t']) {
                continue;
            }
            let v = rest.trim();
            match v.strip_prefix('"').and_then(|v| v.split_once('"')) {
                Some((name, after)) if after.trim().is_empty() || after.trim().starts_with("//") => name.to_string(),
                _ => {
                    bail!("line {}: `{t}` must give the world as a string, e.g. #define WEIR_WORLD \"stateful\"", n + 1)
                }
            }
        } else if let Some(pos) = t.find("weir:world") {
            let rest = &t[pos + "weir:world".len()..];
            rest.split_whitespace().next().unwrap_or("").trim_end_matches("*/").to_string()
        } else {
            continue;
        };
        if value.is_empty() || !value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            bail!("line {}: `{t}` does not name a world (mapper, stateful or batch-sink)", n + 1);
        }
        return Ok(Some(value));
    }
    Ok(None)
}

fn is_test_file(name: &str) -> bool {
    name == "test.c" || name.starts_with("test_") || name.ends_with("_test.c")
}

/// DIR's top-level files with these extensions, sorted.
fn files(dir: &Path, exts: &[&str]) -> anyhow::Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().and_then(OsStr::to_str).is_some_and(|e| exts.contains(&e)))
        .collect();
    v.sort();
    Ok(v)
}

fn works(program: &OsStr) -> bool {
    Command::new(program).arg("--version").output().is_ok_and(|o| o.status.success())
}

/// The clang to use and the flags that pick the target and wasi-libc.
fn clang() -> anyhow::Result<(PathBuf, Vec<String>)> {
    let explicit = std::env::var_os("WEIR_CLANG").filter(|v| !v.is_empty());
    let program = match &explicit {
        Some(p) if works(p) => PathBuf::from(p),
        Some(p) => bail!("WEIR_CLANG={} does not run; {HINT}", Path::new(p).display()),
        None => ["clang-22", "clang"]
            .into_iter()
            .find(|p| works(OsStr::new(p)))
            .map(PathBuf::from)
            .with_context(|| format!("no clang (neither clang-22 nor clang is on PATH); {HINT}"))?,
    };
    // `-s`: no debug info in the component.
    let mut flags = vec!["-O2".to_string(), "-mexec-model=reactor".to_string(), "-s".to_string()];
    if let Some(sysroot) = std::env::var_os("WASI_SYSROOT").filter(|v| !v.is_empty()) {
        if !Path::new(&sysroot).is_dir() {
            bail!("WASI_SYSROOT={} is not a directory; {HINT}", Path::new(&sysroot).display());
        }
        flags.push("--target=wasm32-wasip1".into());
        flags.push(format!("--sysroot={}", Path::new(&sysroot).display()));
    } else if Path::new("/usr/lib/wasm32-wasi/libc.a").is_file() {
        // Debian's wasi-libc lays itself out under the triple's old name.
        flags.push("--target=wasm32-wasi".into());
        flags.push("-Wno-deprecated".into());
    } else {
        bail!("no wasi-libc: set WASI_SYSROOT, or install Debian's wasi-libc package; {HINT}");
    }
    Ok((program, flags))
}

fn wit_bindgen(root: &Path) -> anyhow::Result<PathBuf> {
    let local = root.join("tools/c/bin/wit-bindgen");
    if local.is_file() {
        return Ok(local);
    }
    if works(OsStr::new("wit-bindgen")) {
        return Ok(PathBuf::from("wit-bindgen"));
    }
    bail!("wit-bindgen is not installed ({} is missing); {HINT}", local.display())
}

pub(super) fn build_c(dir: &Path) -> anyhow::Result<Vec<u8>> {
    let dir = &dir.canonicalize().with_context(|| format!("resolving {}", dir.display()))?;
    let repo = repo_for(dir)?;
    let sources = files(dir, &["c", "h"])?;
    let makefile = dir.join("Makefile");
    let mut world = None;
    for f in sources.iter().chain(makefile.is_file().then_some(&makefile)) {
        let text = std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        if let Some(w) = c_world(&text).with_context(|| format!("reading the world of {}", f.display()))? {
            world = Some(w);
            break;
        }
    }
    let world = world.unwrap_or_else(|| "mapper".to_string());
    let worlds = wit_worlds(&repo.wit)?;
    if !worlds.iter().any(|w| *w == world) {
        bail!(
            "the plugin asks for the world `{world}`, but the contract in {} has no such world (its worlds: {})",
            repo.wit.display(),
            worlds.join(", ")
        );
    }
    let sdk = repo.root.join("guest-sdk/c");
    if !sdk.join("weir.h").is_file() {
        bail!("the C SDK is missing ({} has no weir.h)", sdk.display());
    }
    let (cc, mut flags) = clang()?;
    let bindgen = wit_bindgen(&repo.root)?;

    let scratch = Scratch::new()?;
    let gen = scratch.path().join("bindings");
    let mut cmd = Command::new(&bindgen);
    cmd.arg("c").arg(&repo.wit).args(["--world", &world, "--out-dir"]).arg(&gen);
    let out = cmd.output().with_context(|| format!("running {}", describe(&cmd)))?;
    if !out.status.success() {
        bail!("{} failed ({}): {}", describe(&cmd), out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    let macro_name = format!("-DWEIR_WORLD_{}", world.to_ascii_uppercase().replace('-', "_"));
    flags.extend([macro_name, format!("-I{}", sdk.display()), format!("-I{}", gen.display())]);
    let mut sdk_srcs: Vec<PathBuf> = vec![sdk.join("weir.c"), sdk.join("weir_wasm.c")];
    sdk_srcs.extend(files(&gen, &["c", "o"])?);

    let core = scratch.path().join(format!("plugin-{}.wasm", unique()));
    let how;
    let bytes = if dir.join("plugin.c").is_file() {
        how = "clang";
        let mut cmd = Command::new(&cc);
        cmd.args(&flags).arg("-o").arg(&core).current_dir(dir).stdout(std::io::stderr());
        for f in &sources {
            let name = f.file_name().and_then(OsStr::to_str).unwrap_or("");
            if name.ends_with(".c") && !is_test_file(name) {
                cmd.arg(f);
            }
        }
        cmd.args(&sdk_srcs);
        eprintln!("weir plugin build: {} (C, world `{world}`, via {})", dir.display(), cc.display());
        run_into(&mut cmd, &core).with_context(|| format!("compiling the C plugin in {dir:?}; {HINT}"))?
    } else {
        how = "make weir-wasm";
        let join = |v: &[PathBuf]| v.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" ");
        let mut cmd = Command::new("make");
        // make's own output goes to stderr: stdout is weir's (the component's path).
        cmd.arg("--no-print-directory").arg("-C").arg(dir).arg("weir-wasm").stdout(std::io::stderr());
        cmd.arg(format!("WEIR_CC={}", cc.display()))
            .arg(format!("WEIR_CFLAGS={}", flags.join(" ")))
            .arg(format!("WEIR_SDK_SRCS={}", join(&sdk_srcs)))
            .arg(format!("WEIR_OUT={}", core.display()));
        for var in ["MAKEFLAGS", "MFLAGS", "CARGO_MAKEFLAGS"] {
            cmd.env_remove(var);
        }
        eprintln!("weir plugin build: {} (C, world `{world}`, via make weir-wasm)", dir.display());
        run_into(&mut cmd, &core)?
    };
    encode(&bytes).with_context(|| format!("turning the core module ({how}) into a component"))
}

/// A scratch directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> anyhow::Result<Scratch> {
        let p = std::env::temp_dir().join(format!("weir-c-{}-{}", std::process::id(), unique()));
        std::fs::create_dir_all(&p).with_context(|| format!("making the scratch directory {}", p.display()))?;
        Ok(Scratch(p))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A core module into a component, with the WASI preview 1 reactor adapter for whatever
/// wasi-libc calls the module makes.
fn encode(wasm: &[u8]) -> anyhow::Result<Vec<u8>> {
    wit_component::ComponentEncoder::default()
        .module(wasm)
        .context("reading the core module's component-type section (were the wit-bindgen bindings linked in?)")?
        .adapter(
            "wasi_snapshot_preview1",
            wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
        )
        .context("reading the WASI preview 1 adapter")?
        .validate(true)
        .encode()
        .context("encoding the component")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_world_comes_from_a_define_or_a_comment() {
        let w = |s: &str| c_world(s).unwrap();
        assert_eq!(w("#include \"weir.h\"\n"), None);
        assert_eq!(w("#define WEIR_WORLD \"stateful\"\n#include \"weir.h\"\n"), Some("stateful".into()));
        assert_eq!(w("#define WEIR_WORLD \"batch-sink\" // foreachBatch\n"), Some("batch-sink".into()));
        assert_eq!(w("// weir:world batch-sink\n"), Some("batch-sink".into()));
        assert_eq!(w("/* weir:world stateful */\n"), Some("stateful".into()));
        assert_eq!(w("# weir:world mapper\n"), Some("mapper".into()));
        assert_eq!(w("#define WEIR_WORLDS 3\n"), None);
        let e = c_world("x\n#define WEIR_WORLD stateful\n").unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("as a string"), "{e}");
    }

    #[test]
    fn test_files_are_left_out() {
        assert!(is_test_file("test.c") && is_test_file("test_logic.c") && is_test_file("logic_test.c"));
        assert!(!is_test_file("plugin.c") && !is_test_file("contest.c"));
    }

    #[test]
    fn a_c_plugin_without_the_toolchain_names_the_script() {
        // Whatever is installed, an unusable WEIR_CLANG is refused naming the script.
        let repo = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(repo.path().join("wit")).unwrap();
        std::fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit/weir.wit"), repo.path().join("wit/weir.wit"))
            .unwrap();
        std::fs::create_dir_all(repo.path().join("guest-sdk/c")).unwrap();
        std::fs::write(repo.path().join("guest-sdk/c/weir.h"), "").unwrap();
        let dir = repo.path().join("plugins/p");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("plugin.c"), "#define WEIR_WORLD \"nope\"\n").unwrap();
        let e = format!("{:#}", build_c(&dir).unwrap_err());
        assert!(e.contains("asks for the world `nope`") && e.contains("batch-sink"), "{e}");
        assert!(is_c_plugin(&dir));
        std::fs::write(dir.join("plugin.c"), "#define WEIR_WORLD \"mapper\"\n").unwrap();
        std::env::set_var("WEIR_CLANG", repo.path().join("no-such-clang"));
        let e = format!("{:#}", build_c(&dir).unwrap_err());
        std::env::remove_var("WEIR_CLANG");
        assert!(e.contains("does not run") && e.contains("scripts/c-toolchain.sh"), "{e}");
    }
}
