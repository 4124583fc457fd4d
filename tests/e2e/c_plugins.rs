//! C plugins (guest-sdk/c, built by `weir plugin build` with clang, wasi-libc and wit-bindgen):
//! each example gives exactly the output of its Rust twin. (router-c: tests/e2e/routers.rs.)

use crate::common::*;
use crate::pipeline::{assert_parquet_identical_to_rust, enrich_job, ENRICHED};
use crate::stateful::{assert_sessionize_identical_to_rust, event, sessionize_job};

#[test]
fn c_enrich_gives_the_same_json_as_the_rust_one() {
    let s = Scratch::new();
    run_ok(&enrich_job(&s, "enrich-c", "json", ""));
    assert_eq!(committed_text(&s.path("out")), ENRICHED);
}

#[test]
fn rust_and_c_plugins_give_byte_identical_parquet() {
    assert_parquet_identical_to_rust("enrich-c");
}

#[test]
fn sessionize_rust_and_c_outputs_are_identical() {
    assert_sessionize_identical_to_rust("sessionize-c");
}

/// A row the C plugin refuses (a null event time) goes to the dead-letter output, named by its
/// row, and the rest goes on: the same output as the Rust plugin's.
#[test]
fn a_row_the_c_plugin_refuses_goes_to_the_dead_letter_output() {
    let mut outputs = Vec::new();
    for plugin in ["sessionize", "sessionize-c"] {
        let s = Scratch::new();
        s.write(
            "in/a.json",
            &(event("u1", "00:00", 1.0)
                + "{\"user_id\":\"u1\",\"event_time\":null,\"amount\":2.0}\n"
                + &event("u1", "00:10", 3.0)
                + &event("u2", "02:00", 1.0)),
        );
        run_ok(&sessionize_job(&s, plugin, "memory", "on_bad_record = \"dead_letter\""));
        let dead = std::fs::read_to_string(s.path("ckpt/dead_letter/batch-0.jsonl")).unwrap();
        assert_eq!(dead.lines().count(), 1, "{dead}");
        assert!(dead.contains("`event_time` is null: a session event needs a time"), "{dead}");
        outputs.push(committed_text(&s.path("out")));
    }
    assert_eq!(outputs[0], outputs[1]);
    assert_eq!(outputs[0].lines().count(), 1, "{}", outputs[0]);
}

/// A config the C plugin refuses stops the job with the SDK's message, as in Rust.
#[test]
fn a_bad_config_of_a_c_plugin_is_named() {
    let s = Scratch::new();
    let job = sessionize_job(&s, "sessionize-c", "memory", "");
    let text = std::fs::read_to_string(&job).unwrap().replace("gap_minutes=30", "gap=30");
    std::fs::write(&job, text).unwrap();
    s.write("in/a.json", &event("u1", "00:00", 1.0));
    let err = run_err(&job);
    assert!(err.contains("unknown config key `gap` (known keys: gap_minutes)"), "{err}");
}

/// A C plugin dir with a Makefile (a `weir-wasm` target) and no plugin.c: `weir plugin build`
/// runs make with the compiler, flags and SDK sources, and the component gives enrich's output.
#[test]
fn a_c_plugin_built_by_its_makefile_gives_the_same_output() {
    let s = Scratch::new();
    let dir = s.path("enrich-make");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(repo().join("plugins/enrich-c/plugin.c"), dir.join("enrich_main.c")).unwrap();
    std::fs::write(
        dir.join("Makefile"),
        "weir-wasm:\n\t$(WEIR_CC) $(WEIR_CFLAGS) -o $(WEIR_OUT) enrich_main.c $(WEIR_SDK_SRCS)\n",
    )
    .unwrap();
    let wasm = s.path("enrich-make.wasm");
    let built = weir().arg("plugin").arg("build").arg(&dir).arg("--out").arg(&wasm).output().unwrap();
    assert!(built.status.success(), "{}", String::from_utf8_lossy(&built.stderr));
    assert_eq!(String::from_utf8_lossy(&built.stdout).trim(), wasm.display().to_string(), "stdout is the path only");
    let job = enrich_job(&s, "enrich-c", "json", "");
    let text = std::fs::read_to_string(&job).unwrap();
    let text = text.replace(&plugin("enrich-c").display().to_string(), &wasm.display().to_string());
    std::fs::write(&job, text).unwrap();
    run_ok(&job);
    assert_eq!(committed_text(&s.path("out")), ENRICHED);
}

/// A job of two rows through tests/plugins/hostile-c in `mode`, with `extra` operator lines.
fn hostile_c_job(s: &Scratch, mode: &str, extra: &str) -> std::path::PathBuf {
    s.write("in/a.json", "{\"id\":\"a\"}\n{\"id\":\"b\"}\n");
    s.job(&format!(
        "[source]\nformat = \"json\"\npath = \"{{dir}}/in\"\nschema = \"id string\"\n\
         [[operator]]\nkind = \"map\"\nplugin = \"{{plugin:hostile-c}}\"\nconfig = \"mode={mode}\"\n{extra}\n\
         [sink]\nformat = \"json\"\npath = \"{{dir}}/out\"\ncheckpoint = \"{{dir}}/ckpt\"\n\
         trigger = {{ available_now = true }}\n"
    ))
}

/// What a C plugin prints (wasi-libc's stdio, through the preview 1 adapter) goes to the job's
/// log, labelled with the plugin and batch, as a Rust plugin's does.
#[test]
fn what_a_c_plugin_prints_goes_to_the_log() {
    let s = Scratch::new();
    let out = run_job(&hostile_c_job(&s, "print", ""));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("plugin hostile-c.wasm batch 0: hello from C: 2 rows"), "{err}");
    assert!(err.contains("plugin hostile-c.wasm batch 0: and on stderr"), "{err}");
    assert_eq!(committed_text(&s.path("out")), "{\"id\":\"a\"}\n{\"id\":\"b\"}\n");
}

/// A C plugin that aborts, spins or eats memory is stopped like any plugin: the job fails
/// naming the plugin, the export and the limit.
#[test]
fn a_c_plugin_that_aborts_spins_or_eats_memory_is_contained() {
    for (mode, extra, wanted) in [
        ("abort", "", "`map-batch` trapped"),
        ("spin", "max_call_time = \"1 seconds\"", "ran longer than its CPU time limit of 1s"),
        ("grow", "max_memory = \"32 MiB\"", "needed more than its memory limit of 32 MiB"),
    ] {
        let s = Scratch::new();
        let err = run_err(&hostile_c_job(&s, mode, extra));
        assert!(err.contains("hostile-c.wasm") && err.contains(wanted), "{mode}: {err}");
        assert!(!err.contains("panicked"), "{mode}: the host panicked: {err}");
    }
}

/// A C filter (weir_output_select) with a computed column: the passed-through columns are taken
/// at the kept rows.
#[test]
fn a_c_filter_keeps_the_selected_rows() {
    let s = Scratch::new();
    let job = hostile_c_job(&s, "filter", "");
    s.write("in/a.json", "{\"id\":\"a\"}\n{\"id\":\"b\"}\n{\"id\":\"ccc\"}\n{\"id\":null}\n");
    run_ok(&job);
    assert_eq!(committed_text(&s.path("out")), "{\"id\":\"a\",\"len\":1}\n{\"id\":\"ccc\",\"len\":3}\n{\"len\":0}\n");
}
