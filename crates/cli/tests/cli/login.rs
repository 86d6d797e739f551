//! Logging in through the binary: OAuth 2.0 against the NEXTGEN Synapse and its fake
//! Matrix Authentication Service (the test plays the person at the browser: it follows the
//! address the tool prints; or, for the device grant, the person at the phone: it opens
//! the address printed with the code), what a server that lacks a method says, and what a dead token
//! the user gave says. These tests FAIL, never skip, when the servers are not running.

use std::io::{BufRead, BufReader, Read};
use std::process::Stdio;

use crate::support::*;
use online::testkit::{next_sso_login, nextgen, play_browser, server, unique};

/// Runs `line` with no token anywhere (and, with `headless`, no display to open a browser
/// on), waits for the address `find` picks out of a line it prints on stderr, plays the
/// browser (or the phone) at `open(address)`, and returns its exit code and everything it
/// printed on stderr.
fn log_in(
    s: &Scratch,
    line: &str,
    headless: bool,
    find: impl Fn(&str) -> Option<String>,
    open: impl FnOnce(String) -> String,
) -> (Option<i32>, String) {
    let mut cmd = s.cmd(line);
    cmd.env_remove("MATRIX_ACCESS_TOKEN");
    if headless {
        cmd.env_remove("DISPLAY").env_remove("WAYLAND_DISPLAY");
    }
    let mut child = cmd
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let address = loop {
        let mut line = String::new();
        assert!(
            err.read_line(&mut line).unwrap() > 0,
            "no address printed: {seen}"
        );
        seen.push_str(&line);
        if let Some(address) = find(line.trim()) {
            break address;
        }
    };
    assert_eq!(play_browser(&open(address)).join().unwrap(), 200);
    err.read_to_string(&mut seen).unwrap();
    let out = child.wait_with_output().unwrap();
    (out.status.code(), seen)
}

/// [`log_in`] through the browser, at the address the tool prints.
fn log_in_through_the_browser(s: &Scratch, line: &str) -> (Option<i32>, String) {
    let found = log_in(
        s,
        line,
        false,
        |l| l.strip_prefix("http://").map(|u| format!("http://{u}")),
        |url| url,
    );
    assert!(
        found.1.contains("open this address in a browser"),
        "{}",
        found.1
    );
    found
}

#[test]
fn oauth_login_in_a_browser_then_the_session_is_revoked() {
    let ng = nextgen();
    let user = ng.next_login(&unique("cli"));
    let before = ng.stats();
    let s = Scratch::new();
    let (code, seen) = log_in_through_the_browser(
        &s,
        &format!(
            "download direct --homeserver {} --user {user} --login oauth -o %direct.json",
            ng.url
        ),
    );
    assert_eq!(code, Some(0), "{seen}");
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&s.read("direct.json")).unwrap(),
        serde_json::json!({})
    );
    // The session the tool opened is gone: revoked at the provider.
    let after = ng.stats();
    assert!(
        after["revocations"].as_u64().unwrap() > before["revocations"].as_u64().unwrap(),
        "{after}"
    );
    assert_eq!(after["live_sessions"], before["live_sessions"], "{after}");
}

/// On a machine with no browser to open (no display), `auto` logs in with a code: the tool
/// prints the address and the code, polls, and goes on once the phone approves.
#[test]
fn without_a_browser_auto_logs_in_with_a_code_entered_on_a_phone() {
    let ng = nextgen();
    let localpart = unique("phone");
    let before = ng.stats();
    let s = Scratch::new();
    let (code, seen) = log_in(
        &s,
        &format!(
            "download direct --homeserver {} --user @{localpart}:localhost -o %direct.json",
            ng.url
        ),
        true,
        |l| {
            l.strip_prefix("(or open ")
                .map(|r| r.split(',').next().unwrap().to_owned())
        },
        |complete| format!("{complete}&localpart={localpart}"),
    );
    assert_eq!(code, Some(0), "{seen}");
    assert!(seen.contains("a phone will do"), "{seen}");
    assert!(seen.contains("  code: "), "{seen}");
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&s.read("direct.json")).unwrap(),
        serde_json::json!({})
    );
    let after = ng.stats();
    assert!(
        after["device_polls"].as_u64().unwrap() > before["device_polls"].as_u64().unwrap(),
        "{after}"
    );
    assert!(
        after["revocations"].as_u64().unwrap() > before["revocations"].as_u64().unwrap(),
        "revoked at the end: {after}"
    );
}

#[test]
fn a_method_the_server_lacks_is_refused_with_what_it_offers() {
    let ng = nextgen();
    let s = Scratch::new();
    let out = s
        .cmd(&format!(
            "download direct --homeserver {} --user @x:localhost --login password -o %d.json",
            ng.url
        ))
        .env_remove("MATRIX_ACCESS_TOKEN")
        .output()
        .unwrap();
    assert_code(&out, 2);
    let err = stderr(&out);
    assert!(
        err.contains("does not offer a login by password; it offers: oauth"),
        "{err}"
    );
    assert!(
        err.contains("hint: choose one it offers with --login (oauth, device)"),
        "{err}"
    );
    assert!(s.names().iter().all(|n| n != "d.json"), "nothing written");
}

#[test]
fn a_dead_token_the_user_gave_says_how_to_let_the_tool_log_in() {
    let ng = nextgen();
    let s = Scratch::new();
    s.write("token", "mat_not_a_live_token\n");
    let out = s
        .cmd(&format!(
            "download direct --homeserver {} --access-token-file %token -o %d.json",
            ng.url
        ))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("no longer accepts this access token"), "{err}");
    assert!(
        err.contains("--login oauth, device, sso or password"),
        "{err}"
    );
    assert!(
        !err.contains("mat_not_a_live_token"),
        "the token is never printed: {err}"
    );
}

#[test]
fn sso_login_through_the_named_identity_provider() {
    let hs = server();
    let user = next_sso_login(&unique("ssocli"));
    let s = Scratch::new();
    let (code, seen) = log_in_through_the_browser(
        &s,
        &format!(
            "download direct --homeserver {} --user {user} --login sso --idp oidc-fake -o %direct.json",
            hs.url
        ),
    );
    assert_eq!(code, Some(0), "{seen}");
    assert!(seen.contains(&format!("m.direct of {user}")), "{seen}");
}

#[test]
fn several_identity_providers_and_no_terminal_ask_for_idp() {
    let hs = server();
    let s = Scratch::new();
    let out = s
        .cmd(&format!(
            "download direct --homeserver {} --login sso -o %d.json",
            hs.url
        ))
        .env_remove("MATRIX_ACCESS_TOKEN")
        .output()
        .unwrap();
    assert_code(&out, 2);
    let err = stderr(&out);
    assert!(err.contains("--idp ID"), "{err}");
    assert!(
        err.contains("oidc-fake (Fake IdP), oidc-other (Other IdP)"),
        "{err}"
    );
}

/// M3: the browser opener gets none of the tool's secrets from the environment, and no
/// `state` in its arguments (it opens the listener's start address, which redirects). L5:
/// a browser login without a user named is shown and, with no terminal to confirm on,
/// refused (and its session revoked).
#[test]
fn the_browser_opener_gets_no_secret_and_an_unnamed_account_is_not_taken() {
    let ng = nextgen();
    let user = ng.next_login(&unique("opener"));
    let s = Scratch::new();
    let record = s.path("opener.json");
    // A desktop's xdg-open that records what it was given, then plays the browser.
    s.write(
        "bin/xdg-open",
        format!(
            r#"#!/usr/bin/env python3
import json, os, sys, urllib.request, http.cookiejar
json.dump({{"argv": sys.argv, "env": dict(os.environ)}}, open({record:?}, "w"))
opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
opener.open(sys.argv[1]).read()
"#,
            record = record.display().to_string()
        ),
    );
    std::fs::set_permissions(
        s.path("bin/xdg-open"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        s.path("bin").display(),
        std::env::var("PATH").unwrap()
    );
    let before = ng.stats();
    let out = s
        .cmd(&format!(
            "download direct --homeserver {} --login oauth -o %direct.json",
            ng.url
        ))
        .env_remove("MATRIX_ACCESS_TOKEN")
        .env("PATH", &path)
        .env("DISPLAY", ":0")
        .env("MATRIX_TRANSPLANT_RECOVERY_KEY", "EsTc secret recovery key")
        .env("MATRIX_OLD_ACCESS_TOKEN", "syt_secret_old_token")
        .env("MATRIX_TRANSPLANT_PASSPHRASE", "secret passphrase")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let seen: serde_json::Value =
        serde_json::from_slice(&s.read("opener.json")).expect("the opener ran");
    let env = seen["env"].as_object().unwrap();
    for secret in [
        "MATRIX_TRANSPLANT_RECOVERY_KEY",
        "MATRIX_OLD_ACCESS_TOKEN",
        "MATRIX_TRANSPLANT_PASSPHRASE",
    ] {
        assert!(!env.contains_key(secret), "{secret} reached the opener");
    }
    assert!(env.contains_key("DISPLAY") && env.contains_key("PATH"));
    let argv = seen["argv"].to_string();
    assert!(
        argv.contains("/start") && !argv.contains("state="),
        "{argv}"
    );
    // No terminal, no user named: the account the browser chose is not taken.
    assert_code(&out, 2);
    assert!(
        stderr(&out).contains(&format!("the browser logged in as {user}")),
        "{}",
        stderr(&out)
    );
    assert!(!s.path("direct.json").exists());
    let after = ng.stats();
    assert_eq!(after["live_sessions"], before["live_sessions"], "{after}");
}
