//! Embeds `templates/` (what `weir plugin new` writes) into the binary: a generated
//! `templates.rs` lists every file as `(language, world, relative path, bytes)`, so the binary
//! needs no checkout to scaffold a plugin.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        // Build output and caches a template author may have left behind are not part of it.
        if matches!(name, "target" | "node_modules" | "__pycache__" | "Cargo.lock") || name.ends_with(".wasm") {
            continue;
        }
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("templates");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    files_under(&root, &mut files);
    let mut code = String::from("/// Every template file: (language, world, path inside the plugin dir, contents).\n");
    code.push_str("pub static TEMPLATE_FILES: &[(&str, &str, &str, &[u8])] = &[\n");
    for path in &files {
        println!("cargo:rerun-if-changed={}", path.display());
        let rel = path.strip_prefix(&root).unwrap();
        let parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
        if parts.len() < 3 {
            continue; // templates/<language>/<world>/<file...>
        }
        writeln!(
            code,
            "    ({:?}, {:?}, {:?}, include_bytes!({:?})),",
            parts[0],
            parts[1],
            parts[2..].join("/"),
            path.display().to_string()
        )
        .unwrap();
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("templates.rs");
    std::fs::write(out, code).unwrap();
}
