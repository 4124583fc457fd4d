//! `weir plugin new NAME --lang L --world W`: writes a plugin directory that builds, passes its
//! own test and runs as a job out of the box.
//!
//! The language's part (the plugin's source, its own native test, its README) comes from the
//! templates embedded from `host/templates/<lang>/<world>/` at build time. The parts every
//! language shares are written here: `job.toml` (the world's job, run from the plugin's
//! directory), two input files under `input/` and a `.gitignore`. A template's logic is the same
//! in every language, so the job's output is the same whichever language the plugin is in.
//!
//! Placeholders, replaced in file contents and file names: `{{name}}` (the name as given),
//! `{{name_snake}}` (with `-` as `_`), `{{sdk_dir}}` (the repository's `guest-sdk` directory:
//! Cargo path dependency, Python path, JS import, C include).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/templates.rs"));
}

/// The languages a plugin can be written in.
pub const LANGUAGES: [&str; 4] = ["rust", "python", "js", "c"];
/// The plugin worlds of `wit/weir.wit`.
pub const WORLDS: [&str; 3] = ["mapper", "stateful", "batch-sink"];

/// The longest plugin name accepted (it becomes a directory, a crate and a file name).
const MAX_NAME_LEN: usize = 64;

/// The sample input every template's job reads: two files, so the job runs two micro-batches
/// (a stateful plugin's totals carry over from the first to the second).
const INPUT_FILES: [(&str, &str); 2] = [
    (
        "input/events-1.json",
        "{\"user\":\"ann\",\"amount\":120.0,\"ts\":\"2026-01-01T10:00:00Z\"}\n\
         {\"user\":\"bob\",\"amount\":40.5,\"ts\":\"2026-01-01T10:00:05Z\"}\n\
         {\"user\":\"ann\",\"amount\":null,\"ts\":\"2026-01-01T10:00:09Z\"}\n",
    ),
    (
        "input/events-2.json",
        "{\"user\":\"bob\",\"amount\":100.0,\"ts\":\"2026-01-01T10:01:00Z\"}\n\
         {\"user\":\"cid\",\"amount\":7.25,\"ts\":\"2026-01-01T10:01:30Z\"}\n",
    ),
];

const GITIGNORE: &str = "/out/\n/target/\n/node_modules/\n__pycache__/\n*.wasm\n*.o\n/test_native\n";

/// What was written, for the command's message.
#[derive(Debug)]
pub struct Created {
    pub dir: PathBuf,
    /// The command that runs the plugin's own test (the first line of its README).
    pub test_command: Option<String>,
}

/// Writes the plugin `name` in `lang` for `world` into `parent/name`, which must not exist yet.
/// `repo_root` is the weir repository (its `guest-sdk` is what the plugin builds against).
pub fn create(parent: &Path, name: &str, lang: &str, world: &str, repo_root: &Path) -> anyhow::Result<Created> {
    check_name(name)?;
    if !LANGUAGES.contains(&lang) {
        bail!("unknown language {lang:?}: --lang takes one of {}", LANGUAGES.join(", "));
    }
    if !WORLDS.contains(&world) {
        bail!("unknown world {world:?}: --world takes one of {}", WORLDS.join(", "));
    }
    let files: Vec<(&str, &[u8])> = embedded::TEMPLATE_FILES
        .iter()
        .filter(|(l, w, _, _)| *l == lang && *w == world)
        .map(|(_, _, path, bytes)| (*path, *bytes))
        .collect();
    if files.is_empty() {
        bail!("this weir has no {lang} template for the {world} world (host/templates/{lang}/{world} is empty)");
    }
    let dir = parent.join(name);
    if dir.exists() {
        bail!("{} already exists: pick another NAME, or remove it first", dir.display());
    }
    let sdk_dir = repo_root.join("guest-sdk");
    if !sdk_dir.is_dir() {
        bail!("{} does not exist: `weir plugin new` needs the weir repository's guest SDKs", sdk_dir.display());
    }
    let sdk = sdk_dir.to_string_lossy().into_owned();
    let fill = |text: &str| {
        text.replace("{{name_snake}}", &name.replace('-', "_")).replace("{{name}}", name).replace("{{sdk_dir}}", &sdk)
    };

    let mut written: Vec<(String, Vec<u8>)> = Vec::new();
    for (path, bytes) in files {
        let contents = match std::str::from_utf8(bytes) {
            Ok(text) => fill(text).into_bytes(),
            Err(_) => bytes.to_vec(),
        };
        written.push((fill(path), contents));
    }
    written.push(("job.toml".into(), job_file(name, world).into_bytes()));
    for (path, text) in INPUT_FILES {
        written.push((path.into(), text.as_bytes().to_vec()));
    }
    written.push((".gitignore".into(), GITIGNORE.as_bytes().to_vec()));

    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    for (path, contents) in &written {
        let target = dir.join(path);
        if let Some(p) = target.parent() {
            std::fs::create_dir_all(p).with_context(|| format!("creating {}", p.display()))?;
        }
        std::fs::write(&target, contents).with_context(|| format!("writing {}", target.display()))?;
        #[cfg(unix)]
        if contents.starts_with(b"#!") {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755))
                .with_context(|| format!("making {} executable", target.display()))?;
        }
    }
    let test_command = std::fs::read_to_string(dir.join("README.md"))
        .ok()
        .and_then(|readme| readme.lines().next().and_then(|l| l.strip_prefix("test:")).map(|c| c.trim().to_string()));
    Ok(Created { dir, test_command })
}

/// A plugin name: lowercase ASCII letters, digits, `-` and `_`, starting with a letter.
fn check_name(name: &str) -> anyhow::Result<()> {
    let ok = name.len() <= MAX_NAME_LEN
        && name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !ok {
        bail!(
            "{name:?} is not a plugin name: use at most {MAX_NAME_LEN} lowercase letters, digits, `-` or `_`, \
             starting with a letter (it becomes a directory, a crate and a file name)"
        );
    }
    Ok(())
}

/// The job that runs the plugin over `input/` from its own directory, for the plugin's world.
fn job_file(name: &str, world: &str) -> String {
    let head = format!(
        "# Runs the {name} plugin (the `{world}` world) over the sample events in input/, one file per\n\
         # micro-batch, from this directory:\n\
         #   weir plugin build . --out {name}.wasm && weir run job.toml\n\
         name = \"{name}\"\n\n\
         [source]\n\
         format = \"json\"\n\
         path = \"input\"\n\
         schema = \"user string, amount double, ts timestamp\"\n\
         max_files_per_trigger = 1\n\n"
    );
    let rest = match world {
        "mapper" => format!(
            "[[operator]]\nkind = \"map\"\nplugin = \"{name}.wasm\"\n\n\
             [sink]\nformat = \"json\"\npath = \"out/data\"\ncheckpoint = \"out/checkpoint\"\n\
             trigger = {{ available_now = true }}\n"
        ),
        "stateful" => format!(
            "[[operator]]\nkind = \"stateful\"\nplugin = \"{name}.wasm\"\ngroup_by = [\"user\"]\n\n\
             [sink]\nformat = \"json\"\npath = \"out/data\"\ncheckpoint = \"out/checkpoint\"\n\
             trigger = {{ available_now = true }}\n"
        ),
        _ => format!(
            "# foreachBatch: the plugin gets each micro-batch and emits to the outputs declared below.\n\
             [sink]\nformat = \"foreach_batch\"\nplugin = \"{name}.wasm\"\ncheckpoint = \"out/checkpoint\"\n\
             trigger = {{ available_now = true }}\n\n\
             [[sink.output]]\nname = \"big\"\nformat = \"json\"\npath = \"out/big\"\n\n\
             [[sink.output]]\nname = \"small\"\nformat = \"json\"\npath = \"out/small\"\n"
        ),
    };
    head + &rest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_must_be_a_lowercase_identifier_of_bounded_length() {
        for good in ["a", "my-plugin", "p_2"] {
            check_name(good).unwrap();
        }
        for bad in ["", "2p", "My", "a b", "../x", "a/b", &"a".repeat(65)] {
            let e = check_name(bad).unwrap_err().to_string();
            assert!(e.contains("is not a plugin name"), "{bad}: {e}");
        }
        check_name(&"a".repeat(64)).unwrap();
    }

    #[test]
    fn unknown_languages_worlds_and_existing_directories_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let e = create(tmp.path(), "p", "cobol", "mapper", tmp.path()).unwrap_err().to_string();
        assert_eq!(e, "unknown language \"cobol\": --lang takes one of rust, python, js, c");
        let e = create(tmp.path(), "p", "rust", "reducer", tmp.path()).unwrap_err().to_string();
        assert_eq!(e, "unknown world \"reducer\": --world takes one of mapper, stateful, batch-sink");
        std::fs::create_dir(tmp.path().join("p")).unwrap();
        if embedded::TEMPLATE_FILES.iter().any(|(l, w, _, _)| *l == "rust" && *w == "mapper") {
            let e = create(tmp.path(), "p", "rust", "mapper", tmp.path()).unwrap_err().to_string();
            assert!(e.ends_with("p already exists: pick another NAME, or remove it first"), "{e}");
        }
    }

    #[test]
    fn every_world_has_a_job_that_parses() {
        let tmp = tempfile::tempdir().unwrap();
        for world in WORLDS {
            let text = job_file("my-plugin", world);
            let file = tmp.path().join(format!("{world}.toml"));
            std::fs::write(&file, &text).unwrap();
            let job = crate::config::Job::load(&file).unwrap_or_else(|e| panic!("{world}: {e}\n{text}"));
            assert_eq!(job.name, "my-plugin");
        }
    }
}
