//! End-to-end tests of `matrix-transplant direct build|merge|check`.

use crate::support::*;

const OLD: &str = r#"{
  "type": "m.direct",
  "content": {
    "@carol:example.org": ["!dm-carol:example.org", "!org-dm:corp.example"],
    "@alice:corp.example": ["!notes:corp.example"],
    "@dave:example.org": ["!GmZ1jXGQ9OYb0Sy4sZ0I2mG"],
    "erin@example.net": ["!invite:example.org"],
    "@frank:example.org": ["!shared:example.org", "!local.8c1e5f0a"],
    "@grace:example.org": ["!shared:example.org"],
    "@heidi:example.org": "not a list"
  }
}"#;

const MOVING: &str = "# rooms that move\n!dm-carol:example.org\n!notes:corp.example\n!GmZ1jXGQ9OYb0Sy4sZ0I2mG\n!invite:example.org\n!shared:example.org\n!group:example.org\n";

#[test]
fn build_rebuilds_the_new_accounts_dm_list() {
    let s = Scratch::new();
    s.write("old.json", OLD);
    s.write("moving.txt", MOVING);
    let o = s.run("direct build --from %old.json --rooms-file %moving.txt --old @alice:corp.example --new @alice:example.org -o %new.json --json");
    assert_code(&o, 0);
    assert_schema("direct-build", &serde_json::from_slice(&o.stdout).unwrap());
    let new: serde_json::Value = serde_json::from_slice(&s.read("new.json")).unwrap();
    assert_eq!(
        new,
        serde_json::json!({
            "@carol:example.org": ["!dm-carol:example.org"],
            "@dave:example.org": ["!GmZ1jXGQ9OYb0Sy4sZ0I2mG"],
            "@frank:example.org": ["!shared:example.org"],
            "@grace:example.org": ["!shared:example.org"],
            "erin@example.net": ["!invite:example.org"]
        })
    );
    let text = String::from_utf8(s.read("new.json")).unwrap();
    assert!(
        text.contains("\n  \"@carol:example.org\": [\n"),
        "pretty-printed for devtools: {text}"
    );
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["dm_rooms"], 4);
    assert_eq!(report["ambiguous"][0]["room"], "!shared:example.org");
    assert_eq!(report["self_entries"][0][1], "!notes:corp.example");
    let err = stderr(&o);
    assert!(err.contains("4 of the 6 moving rooms are DMs"), "{err}");
    assert!(err.contains("ambiguous: !shared:example.org"), "{err}");
}

#[test]
fn build_takes_the_rooms_from_a_key_export_or_an_inspect_report() {
    let s = Scratch::new();
    let dev = key_export::testkit::Device::new();
    let sessions = vec![
        dev.new_session("!dm-carol:example.org").export_at(0),
        dev.new_session("!GmZ1jXGQ9OYb0Sy4sZ0I2mG").export_at(0),
    ];
    s.write("moving-keys.txt", export(&sessions, "pw"));
    s.write("pw", "pw");
    s.write("old.json", OLD);
    let o = s.run("direct build --from %old.json --rooms-from-export %moving-keys.txt --passphrase-file %pw --old @alice:corp.example --new @alice:example.org");
    assert_code(&o, 0);
    let new: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        new,
        serde_json::json!({"@carol:example.org": ["!dm-carol:example.org"], "@dave:example.org": ["!GmZ1jXGQ9OYb0Sy4sZ0I2mG"]})
    );
    let report = s.run("keys inspect %moving-keys.txt --passphrase-file %pw --json");
    assert_schema(
        "keys-inspect",
        &serde_json::from_slice(&report.stdout).unwrap(),
    );
    s.write("report.json", &report.stdout);
    let o2 = s.run("direct build --from %old.json --rooms-file %report.json --old @alice:corp.example --new @alice:example.org");
    assert_code(&o2, 0);
    assert_eq!(o2.stdout, o.stdout);
}

#[test]
fn build_errors() {
    let s = Scratch::new();
    s.write("old.json", OLD);
    s.write("bad-rooms.txt", "!ok:x\n#not-a-room:x\nnot a room\n");
    let o =
        s.run("direct build --from %old.json --rooms-file %bad-rooms.txt --old @a:x --new @b:y");
    assert_code(&o, 3);
    assert!(stderr(&o).contains("line 3"), "{}", stderr(&o));
    s.write("rooms.txt", "!ok:x\n");
    let o = s.run("direct build --from %old.json --rooms-file %rooms.txt --old alice --new @b:y");
    assert_code(&o, 2);
    assert!(
        stderr(&o).contains("'alice' for '--old") && stderr(&o).contains("not a user ID"),
        "{}",
        stderr(&o)
    );
    s.write("broken.json", "{\"@a:x\": [");
    let o = s.run("direct build --from %broken.json --rooms-file %rooms.txt --old @a:x --new @b:y");
    assert_code(&o, 3);
    assert!(stderr(&o).contains("not JSON"));
    s.write("push.json", r#"{"type": "m.push_rules", "content": {}}"#);
    let o = s.run(
        "direct build --from %push.json --rooms-file %rooms.txt --old @a:x --new @b:y -o %out.json",
    );
    assert_code(&o, 3);
    assert!(stderr(&o).contains("not m.direct"));
    assert!(!s.path("out.json").exists());
}

#[test]
fn merge_unions_in_stable_order_and_refuses_to_clobber() {
    let s = Scratch::new();
    s.write("a.json", r#"{"@z:x": ["!1:x", "!2:x"], "@a:x": ["!9:x"]}"#);
    s.write(
        "b.json",
        r#"{"type": "m.direct", "content": {"@z:x": ["!3:x", "!1:x"]}}"#,
    );
    let o = s.run("direct merge %a.json %b.json -o %m.json --json");
    assert_code(&o, 0);
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_schema("direct-merge", &report);
    assert_eq!(
        report,
        serde_json::json!({"format": "matrix-transplant.direct-merge/1", "users": 2, "replaced_non_lists": []})
    );
    let m: serde_json::Value = serde_json::from_slice(&s.read("m.json")).unwrap();
    assert_eq!(
        m,
        serde_json::json!({"@a:x": ["!9:x"], "@z:x": ["!1:x", "!2:x", "!3:x"]})
    );
    let keys: Vec<String> = m.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["@a:x", "@z:x"]);
    let o = s.run("direct merge %a.json -o %m.json");
    assert_code(&o, 6);
}

#[test]
fn check_reports_and_fix_writes_a_clean_copy() {
    let s = Scratch::new();
    s.write("old.json", OLD);
    let o = s.run("direct check %old.json --self @alice:corp.example");
    assert_code(&o, 5);
    let err = stderr(&o);
    for needle in [
        "is the account itself",
        "local echo",
        "not a list",
        "third-party identifier",
        "listed under 2 users",
        "--fix -o OUT",
    ] {
        assert!(err.contains(needle), "{needle}: {err}");
    }
    let o = s.run("direct check %old.json --self @alice:corp.example --fix -o %clean.json --json");
    assert_code(&o, 0);
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_schema("direct-check", &report);
    assert_eq!(report["fixable"], 3);
    let clean: serde_json::Value = serde_json::from_slice(&s.read("clean.json")).unwrap();
    assert!(
        clean.get("@alice:corp.example").is_none() && clean.get("@heidi:example.org").is_none()
    );
    assert_eq!(
        clean["@frank:example.org"],
        serde_json::json!(["!shared:example.org"])
    );
    let o = s.run("direct check %clean.json --self @alice:corp.example");
    assert_code(&o, 0);
    assert!(
        stderr(&o).contains("listed under 2 users"),
        "ambiguity is only reported"
    );
    let o = s.run("direct check %old.json --fix");
    assert_code(&o, 2);
}

/// The README's worked example, run as it is written: the command, and what it prints
/// (the map on standard output, the report on standard error), word for word.
#[test]
fn the_readme_worked_example_is_what_the_tool_prints() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let block = readme
        .split("Worked example, with the files in `examples/`:")
        .nth(1)
        .and_then(|rest| rest.split("```sh\n").nth(1))
        .and_then(|b| b.split("\n```").next())
        .expect("the worked example block");
    let mut lines = block.lines();
    let mut command = String::new();
    for line in lines.by_ref() {
        command.push_str(line.trim_start_matches("$ ").trim_end_matches('\\'));
        if !line.ends_with('\\') {
            break;
        }
    }
    let shown: Vec<&str> = lines.collect();
    let split = shown.iter().position(|l| *l == "}").unwrap() + 1;
    let (out, err) = shown.split_at(split);
    let words: Vec<&str> = command.split_whitespace().collect();
    assert_eq!(words[0], "matrix-transplant");
    let o = bin().current_dir(&root).args(&words[1..]).output().unwrap();
    assert_code(&o, 0);
    assert_eq!(stdout(&o).lines().collect::<Vec<_>>(), out);
    assert_eq!(stderr(&o).lines().collect::<Vec<_>>(), err);
}
