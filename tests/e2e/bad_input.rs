//! Bad input never vanishes: it stops the job with the file and line, or goes to the
//! dead-letter output with the reason. Bad job files are refused before start, exactly as
//! tests/bad_jobs/*.err says.

use crate::common::*;

const SCHEMA: &str = "event_id string, user_id string, amount double, event_time timestamp";

fn job(s: &Scratch, format: &str, extra: &str) -> std::path::PathBuf {
    s.job(&format!(
        r#"{extra}
[source]
format = "{format}"
path = "{{dir}}/in"
schema = "{SCHEMA}"

[[operator]]
kind = "map"
plugin = "{{plugin:enrich}}"

[sink]
format = "json"
path = "{{dir}}/out"
checkpoint = "{{dir}}/ckpt"
trigger = {{ available_now = true }}
"#
    ))
}

const GOOD_AND_BAD: &str =
    "{\"event_id\":\"e1\",\"user_id\":\"alice\",\"amount\":1.0,\"event_time\":\"2024-01-01T00:00:00Z\"}\n\
{\"event_id\":\"e2\",\"user_id\":\"bob\",\"amount\":2.0,\n\
{\"event_id\":\"e3\",\"user_id\":\"carol\",\"amount\":\"abc\",\"event_time\":\"2024-01-01T00:00:00Z\"}\n\
{\"event_id\":\"e4\",\"user_id\":\"dave\",\"amount\":4.0,\"event_time\":\"2024-01-01T00:00:00Z\"}\n";

#[test]
fn malformed_json_line_stops_the_job_naming_file_and_line() {
    let s = Scratch::new();
    let input = s.write("in/a.json", GOOD_AND_BAD);
    let err = run_err(&job(&s, "json", ""));
    assert!(err.contains(&format!("{} line 2: malformed JSON", input.display())), "{err}");
    assert!(err.contains("on_bad_record = \"dead_letter\""), "the error says how to go on: {err}");
    assert!(committed_files(&s.path("out")).is_empty(), "nothing of the failed batch is committed");
}

#[test]
fn a_value_that_does_not_fit_its_type_names_the_field() {
    let s = Scratch::new();
    let input = s.write(
        "in/a.json",
        &GOOD_AND_BAD.lines().filter(|l| !l.contains("e2")).map(|l| format!("{l}\n")).collect::<String>(),
    );
    let err = run_err(&job(&s, "json", ""));
    assert!(err.contains(&format!("{} line 2:", input.display())), "{err}");
    assert!(err.contains("amount") && err.contains("double") && err.contains("abc"), "{err}");
}

#[test]
fn dead_letter_keeps_bad_records_with_reason_and_the_job_goes_on() {
    let s = Scratch::new();
    let input = s.write("in/a.json", GOOD_AND_BAD);
    run_ok(&job(&s, "json", "on_bad_record = \"dead_letter\""));
    let out = committed_text(&s.path("out"));
    let ids: Vec<String> = out
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["event_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, vec!["e1", "e4"]);
    let dead = std::fs::read_to_string(s.path("ckpt/dead_letter/batch-0.jsonl")).unwrap();
    let dead: Vec<serde_json::Value> = dead.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(dead.len(), 2);
    assert_eq!(dead[0]["origin"], input.display().to_string());
    assert_eq!(dead[0]["line"], 2);
    assert_eq!(dead[0]["raw"], "{\"event_id\":\"e2\",\"user_id\":\"bob\",\"amount\":2.0,");
    assert!(dead[0]["reason"].as_str().unwrap().starts_with("malformed JSON"), "{}", dead[0]);
    assert_eq!(dead[1]["line"], 3);
    assert!(dead[1]["reason"].as_str().unwrap().contains("amount"), "{}", dead[1]);
    let p = progress(&s.path("ckpt"));
    assert_eq!(p[0]["numDeadLetterRows"], 2);
}

#[test]
fn csv_row_with_wrong_field_count_stops_the_job_naming_the_line() {
    let s = Scratch::new();
    let input =
        s.write("in/a.csv", "event_id,user_id,amount,event_time\ne1,alice,1.0,2024-01-01T00:00:00Z\ne2,bob,2.0\n");
    let err = run_err(&job(&s, "csv", ""));
    assert!(err.contains(&format!("{} line 3: expected 4 fields, got 3", input.display())), "{err}");
}

/// Every tests/bad_jobs/NAME.toml must fail with exactly NAME.err (a prefix when it ends in ": ").
#[test]
fn bad_job_files_are_refused_before_start_with_designed_messages() {
    let dir = repo().join("tests/bad_jobs");
    let mut checked = 0;
    let mut entries: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for toml in entries.iter().filter(|p| p.extension().is_some_and(|e| e == "toml")) {
        let name = toml.file_name().unwrap().to_str().unwrap();
        let want =
            std::fs::read_to_string(toml.with_extension("err")).unwrap_or_else(|_| panic!("{name} has no .err file"));
        let want = want.trim_end_matches('\n');
        let out = weir().current_dir(&dir).args(["run", "--quiet", name]).output().unwrap();
        assert!(!out.status.success(), "{name} should be refused");
        let got = String::from_utf8_lossy(&out.stderr);
        let got = got.trim_end();
        if want.ends_with(": ") {
            assert!(got.starts_with(want), "{name}:\nwant prefix: {want}\ngot:         {got}");
        } else {
            assert_eq!(got, want, "{name}");
        }
        assert!(!dir.join("ckpt").exists(), "{name} created a checkpoint before being refused");
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} bad job files found");
}
