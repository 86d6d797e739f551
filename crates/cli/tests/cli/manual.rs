//! Shell completions and man pages: a real bash completes with the generated script, and
//! `man` renders the generated pages.

use std::process::Command;

use crate::support::*;

/// What bash's completion offers for `words` (the last one being completed).
fn complete(script: &std::path::Path, words: &[&str]) -> String {
    let line = words.join(" ");
    let cword = words.len() - 1;
    let prev = words[cword - 1];
    let cur = words[cword];
    let shell = format!(
        "source {}; COMP_WORDS=({line}); COMP_CWORD={cword}; \
         _matrix__transplant matrix-transplant {cur} {prev}; echo \"${{COMPREPLY[*]}}\"",
        script.display()
    );
    let o = Command::new("bash").args(["-c", &shell]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

#[test]
fn bash_completes_subcommands_and_flags() {
    let s = Scratch::new();
    let o = s.run("completions bash");
    assert_code(&o, 0);
    let script = s.write("completion.bash", &o.stdout);
    assert_eq!(
        complete(&script, &["matrix-transplant", "keys", "fi"]),
        "filter"
    );
    assert_eq!(
        complete(&script, &["matrix-transplant", "download", "ke"]),
        "keys"
    );
    assert_eq!(
        complete(&script, &["matrix-transplant", "keys", "filter", "--rooms"]),
        "--rooms-file"
    );
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let o = s.run(&format!("completions {shell}"));
        assert_code(&o, 0);
        assert!(stdout(&o).contains("matrix-transplant"), "{shell}");
    }
}

/// A man page as `man` shows it, in plain text (no bold/underline overstrikes).
fn render(page: &std::path::Path) -> String {
    let o = Command::new("man")
        .args(["-P", "cat", "-l"])
        .arg(page)
        .env("MANWIDTH", "100")
        .env("GROFF_NO_SGR", "1")
        .output()
        .expect("man(1) renders the page");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    let mut plain = String::new();
    for c in text.chars() {
        if c == '\u{8}' {
            plain.pop();
        } else {
            plain.push(c);
        }
    }
    plain
}

#[test]
fn man_renders_a_page_for_every_subcommand() {
    let s = Scratch::new();
    let dir = s.path("man");
    std::fs::create_dir(&dir).unwrap();
    let o = s.run("manpage -o %man");
    assert_code(&o, 0);
    let mut pages: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    for want in [
        "matrix-transplant.1",
        "matrix-transplant-keys-filter.1",
        "matrix-transplant-upload-keys.1",
        "matrix-transplant-direct-build.1",
    ] {
        assert!(pages.iter().any(|p| p == want), "{want} in {pages:?}");
    }
    let filter = render(&dir.join("matrix-transplant-keys-filter.1"));
    assert!(filter.contains("NAME"), "{filter}");
    assert!(filter.contains("--rooms-file"), "{filter}");
    assert!(filter.contains("matrix-transplant-keys-filter"), "{filter}");
    let main = render(&dir.join("matrix-transplant.1"));
    assert!(
        main.contains("Exit codes"),
        "the exit-code table is in the main page: {main}"
    );
    // Pages that exist are kept without --force, replaced with it.
    let o = s.run("manpage -o %man");
    assert_code(&o, 6);
    let o = s.run("manpage -o %man --force");
    assert_code(&o, 0);
    // Without a folder: the main page on standard output.
    let o = s.run("manpage");
    assert_code(&o, 0);
    assert!(
        stdout(&o).contains(".TH matrix-transplant"),
        "{}",
        stdout(&o)
    );
}

/// Colour on standard error: on a terminal by default, never with NO_COLOR or
/// `--color never`, never into a pipe unless `--color always`.
#[test]
fn colour_follows_the_terminal_color_and_no_color() {
    let s = Scratch::new();
    let line = "keys inspect %missing.txt --passphrase-file %missing.pass";
    let red = "\u{1b}[31m";
    let (code, screen) = s.screen_of(line, &[]);
    assert_eq!(code, Some(1), "{screen}");
    assert!(screen.contains(red), "no colour on a terminal: {screen:?}");
    let (_, screen) = s.screen_of(line, &[("NO_COLOR", "1")]);
    assert!(!screen.contains('\u{1b}'), "NO_COLOR: {screen:?}");
    let (_, screen) = s.screen_of(&format!("--color never {line}"), &[]);
    assert!(!screen.contains('\u{1b}'), "--color never: {screen:?}");
    let (_, screen) = s.screen_of(&format!("{line} --color=never"), &[]);
    assert!(!screen.contains('\u{1b}'), "--color=never last: {screen:?}");
    let piped = s.run(line);
    assert!(!stderr(&piped).contains('\u{1b}'), "{}", stderr(&piped));
    let forced = s.run(&format!("--color always {line}"));
    assert!(
        stderr(&forced).starts_with(&format!("{red}\u{1b}[1mmatrix-transplant\u{1b}[0m: ")),
        "{:?}",
        stderr(&forced)
    );
}
