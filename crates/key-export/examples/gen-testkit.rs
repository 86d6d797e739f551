//! Writes the malformed-file test kit: one file per case, each with a `.expect` sidecar
//! saying what must happen to it. The files are committed (the kit is data, like age's
//! `testkit/`); run this only to add cases:
//!
//! ```sh
//! cargo run -p key-export --example gen-testkit -- crates/key-export/tests/testkit
//! ```
//!
//! Sidecar lines: `job:` (`filter` reads an export, `encrypt` reads JSON), `library:` (what
//! the library returns: `ok N` sessions written, an error kind, or `invalid PROBLEM`),
//! `exit:` (the binary's exit code), `message:` (a part of its error message).

use std::path::{Path, PathBuf};

use key_export::armor::{self, BEGIN, END};
use key_export::testkit::{self, Device};
use key_export::{container, ExportedSession, Passphrase};

/// The passphrase of every export in the kit.
const PASS: &str = "testkit passphrase";
const ROUNDS: u32 = 10;

struct Kit {
    dir: PathBuf,
    made: usize,
}

impl Kit {
    fn case(&mut self, name: &str, about: &str, data: &[u8], expect: &str) {
        std::fs::write(self.dir.join(name), data).expect("write case");
        let side = format!("# {about}\n{}\n", expect.trim());
        std::fs::write(self.dir.join(format!("{name}.expect")), side).expect("write sidecar");
        self.made += 1;
    }
}

fn sessions(n: usize) -> Vec<ExportedSession> {
    let device = Device::new();
    (0..n)
        .map(|i| {
            device
                .new_session(&format!("!room{}:example.org", i % 2))
                .export_at(i as u32)
        })
        .collect()
}

fn seal(plain: &[u8]) -> String {
    container::encrypt(plain, &Passphrase::new(PASS.into()), ROUNDS).expect("seal")
}

fn body(text: &str) -> Vec<u8> {
    armor::dearmor(text.as_bytes()).expect("our own export").0
}

/// Base64 lines of `body`, `width` characters each (0: one line), padded or not.
fn lines(body: &[u8], width: usize, padded: bool) -> Vec<String> {
    use base64::Engine;
    let b64 = if padded {
        base64::engine::general_purpose::STANDARD.encode(body)
    } else {
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(body)
    };
    if width == 0 {
        return vec![b64];
    }
    b64.as_bytes()
        .chunks(width)
        .map(|c| String::from_utf8(c.to_vec()).expect("ascii"))
        .collect()
}

fn armour_with(body: &[u8], width: usize, padded: bool, eol: &str, final_eol: bool) -> String {
    let mut out = format!("{BEGIN}{eol}");
    for l in lines(body, width, padded) {
        out.push_str(&l);
        out.push_str(eol);
    }
    out.push_str(END);
    if final_eol {
        out.push_str(eol);
    }
    out
}

/// One entry, edited as JSON.
fn entry_json(edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let s = &sessions(1)[0];
    let mut v: serde_json::Value = serde_json::from_str(&s.to_json()).expect("json");
    edit(&mut v);
    v.to_string()
}

fn layouts(kit: &mut Kit) {
    let good = sessions(3);
    let json = testkit::to_json(&good);
    let b = body(&seal(&json));
    let ok = "job: filter\nlibrary: ok 3\nexit: 0";
    let mut layout =
        |name: &str, about: &str, text: String| kit.case(name, about, text.as_bytes(), ok);
    layout(
        "layout-element-web.txt",
        "Element Web: 128-character padded lines, final newline",
        armour_with(&b, 128, true, "\n", true),
    );
    layout(
        "layout-rust-sdk.txt",
        "matrix-rust-sdk: one unpadded line, no final newline",
        armour_with(&b, 0, false, "\n", false),
    );
    layout(
        "layout-76.txt",
        "Element Android / mautrix-go: 76-character lines",
        armour_with(&b, 76, true, "\n", true),
    );
    layout(
        "layout-crlf.txt",
        "CRLF line ends",
        armour_with(&b, 128, true, "\r\n", true),
    );
    layout(
        "layout-bom.txt",
        "a UTF-8 byte-order mark first",
        format!("\u{feff}{}", armour_with(&b, 128, true, "\n", true)),
    );
    layout(
        "layout-text-around.txt",
        "text before and after the armour",
        format!(
            "Exported by a client\n\n{}\nkeep this safe\n",
            armour_with(&b, 64, true, "\n", true)
        ),
    );
    layout(
        "layout-indented.txt",
        "base64 lines indented with spaces",
        armour_with(&b, 128, true, "\n", true)
            .replace("\n", "\n  ")
            .replacen(&format!("  {END}"), END, 1),
    );
    let empty = body(&seal(b"[]"));
    kit.case(
        "empty-array.txt",
        "an export of no sessions",
        armour_with(&empty, 128, true, "\n", true).as_bytes(),
        "job: filter\nlibrary: ok 0\nexit: 0",
    );
}

fn armour_errors(kit: &mut Kit) {
    let good = seal(&testkit::to_json(&sessions(2)));
    let b = body(&good);
    let b64 = lines(&b, 128, true);
    let fmt =
        |kind: &str, msg: &str| format!("job: filter\nlibrary: {kind}\nexit: 3\nmessage: {msg}");
    kit.case(
        "not-an-export.txt",
        "plain text, no armour",
        b"these are not the keys you are looking for\n",
        &fmt("NotAnExport", "not a Matrix key export"),
    );
    kit.case(
        "empty-file.txt",
        "an empty file",
        b"",
        &fmt("NotAnExport", "not a Matrix key export"),
    );
    kit.case(
        "only-begin.txt",
        "the BEGIN line and nothing else",
        format!("{BEGIN}\n").as_bytes(),
        &fmt("Truncated", "truncated"),
    );
    let half = &good[..good.len() / 2];
    kit.case(
        "no-end.txt",
        "cut in the middle: no END line",
        half.as_bytes(),
        &fmt("Truncated", "truncated"),
    );
    let bad3 = format!("{BEGIN}\n{}\n*bad*\n{END}\n", b64[0]);
    kit.case(
        "bad-base64-line-3.txt",
        "a character that is not base64 on line 3",
        bad3.as_bytes(),
        &fmt("BadBase64", "bad base64 on line 3"),
    );
    let mid_pad = format!("{BEGIN}\nAAAA=AAA\n{END}\n");
    kit.case(
        "padding-in-the-middle.txt",
        "padding before the end of the data",
        mid_pad.as_bytes(),
        &fmt("BadBase64", "bad base64 on line 2"),
    );
    let bom_bad = format!("\u{feff}{BEGIN}\n{}\n%%%%\n{END}\n", b64[0]);
    kit.case("bom-then-bad-base64.txt", "fuzzer regression: a BOM, then a bad character (line counted the same however the file is read)", bom_bad.as_bytes(), &fmt("BadBase64", "bad base64 on line 3"));
    kit.case(
        "body-too-short.txt",
        "three bytes of data",
        format!("{BEGIN}\nAQID\n{END}\n").as_bytes(),
        &fmt("BodyTooShort", "only 3 bytes"),
    );
    let mut v2 = b.clone();
    v2[0] = 2;
    kit.case(
        "version-2.txt",
        "version byte 2",
        armor::armor(&v2).as_bytes(),
        &fmt("UnsupportedVersion", "unsupported key-export version 2"),
    );
    for (name, rounds, about) in [
        ("rounds-0.txt", 0u32, "0 PBKDF2 rounds"),
        (
            "rounds-u32-max.txt",
            u32::MAX,
            "2^32-1 PBKDF2 rounds (hours of work)",
        ),
        (
            "rounds-over-default-cap.txt",
            10_000_001,
            "one round over the default cap of 10,000,000",
        ),
    ] {
        let mut r = b.clone();
        r[33..37].copy_from_slice(&rounds.to_be_bytes());
        kit.case(
            name,
            about,
            armor::armor(&r).as_bytes(),
            &fmt(
                "RoundsOutOfRange",
                &format!("asks for {rounds} PBKDF2 rounds"),
            ),
        );
    }
}

fn crypto_errors(kit: &mut Kit) {
    let good = seal(&testkit::to_json(&sessions(2)));
    let b = body(&good);
    let corrupt = "job: filter\nlibrary: WrongPassphraseOrCorrupted\nexit: 4\nmessage: wrong passphrase, or the file is corrupted";
    let mut mac = b.clone();
    let last = mac.len() - 1;
    mac[last] ^= 1;
    kit.case(
        "mac-flipped.txt",
        "one bit of the MAC flipped",
        armor::armor(&mac).as_bytes(),
        corrupt,
    );
    let mut ct = b.clone();
    ct[40] ^= 0x80;
    kit.case(
        "ciphertext-flipped.txt",
        "one bit of the ciphertext flipped",
        armor::armor(&ct).as_bytes(),
        corrupt,
    );
    let mut salt = b.clone();
    salt[1] ^= 1;
    kit.case(
        "salt-flipped.txt",
        "one bit of the salt flipped",
        armor::armor(&salt).as_bytes(),
        corrupt,
    );
    let other = container::encrypt(
        &testkit::to_json(&sessions(1)),
        &Passphrase::new("another passphrase".into()),
        ROUNDS,
    )
    .expect("seal");
    kit.case(
        "wrong-passphrase.txt",
        "sealed with another passphrase",
        other.as_bytes(),
        corrupt,
    );
    let fmt =
        |kind: &str, msg: &str| format!("job: filter\nlibrary: {kind}\nexit: 3\nmessage: {msg}");
    kit.case(
        "not-utf8.txt",
        "authenticated, but the JSON is not UTF-8",
        seal(b"[\"\xff\"]").as_bytes(),
        &fmt("NotUtf8", "not UTF-8"),
    );
    kit.case(
        "not-an-array.txt",
        "authenticated, but the JSON is an object",
        seal(b"{\"room_id\": \"!a:x\"}").as_bytes(),
        &fmt("NotSessionArray", "not an array of sessions"),
    );
    kit.case(
        "not-json.txt",
        "authenticated, but not JSON at all",
        seal(b"room keys go here").as_bytes(),
        &fmt("NotSessionArray", "not an array of sessions"),
    );
    kit.case(
        "array-cut-short.txt",
        "authenticated, but the array is not closed",
        seal(b"[{\"a\": 1}").as_bytes(),
        &fmt("NotSessionArray", "not an array of sessions"),
    );
}

/// An edit that makes a valid entry invalid.
type Edit = Box<dyn Fn(&mut serde_json::Value)>;

fn invalid_entries(kit: &mut Kit) {
    let edits: Vec<(&str, &str, Edit)> = vec![
        (
            "UnknownAlgorithm",
            "an algorithm other than Megolm v1",
            Box::new(|v| v["algorithm"] = "m.olm.v1.curve25519-aes-sha2".into()),
        ),
        (
            "BadSessionKey",
            "a padded session_key",
            Box::new(|v| {
                let k = v["session_key"].as_str().unwrap().to_owned();
                v["session_key"] = format!("{k}=").into();
            }),
        ),
        (
            "SessionIdMismatch",
            "a session_id that is not the key's",
            Box::new(|v| v["session_id"] = Device::new().new_session("!x:y").session_id().into()),
        ),
        (
            "MissingClaimedEd25519",
            "no claimed Ed25519 key",
            Box::new(|v| v["sender_claimed_keys"] = serde_json::json!({})),
        ),
        (
            "BadClaimedEd25519",
            "a claimed Ed25519 key that is not base64",
            Box::new(|v| v["sender_claimed_keys"]["ed25519"] = "not a key".into()),
        ),
        (
            "BadSenderKey",
            "a sender_key that is not a Curve25519 key",
            Box::new(|v| v["sender_key"] = "AAAA".into()),
        ),
        (
            "BadRoomId",
            "a room alias where the room ID belongs",
            Box::new(|v| v["room_id"] = "#alias:example.org".into()),
        ),
        (
            "Missing",
            "no session_key",
            Box::new(|v| {
                v.as_object_mut().unwrap().remove("session_key");
            }),
        ),
        (
            "BadForwardingChain",
            "a forwarding chain holding a malformed key",
            Box::new(|v| v["forwarding_curve25519_key_chain"] = serde_json::json!(["xyz"])),
        ),
        (
            "NotAnObject",
            "a number where an entry belongs",
            Box::new(|v| *v = serde_json::json!(42)),
        ),
    ];
    for (kind, about, edit) in edits {
        let bad = entry_json(|v| edit(v));
        let good = sessions(1)[0].to_json();
        let json = format!("[{good},{bad}]");
        let snake = snake(kind);
        let expect =
            |job: &str| format!("job: {job}\nlibrary: invalid {kind}\nexit: 5\nmessage: entry 1");
        kit.case(
            &format!("entry-{snake}.txt"),
            &format!("{about} (entry 1 of 2)"),
            seal(json.as_bytes()).as_bytes(),
            &expect("filter"),
        );
        kit.case(
            &format!("entry-{snake}.json"),
            &format!("{about} (entry 1 of 2), as JSON to encrypt"),
            json.as_bytes(),
            &expect("encrypt"),
        );
    }
}

/// Two copies of one session whose signing key is not a curve point (vodozemac refuses to
/// import it; comparing the copies once panicked).
fn not_a_point(kit: &mut Kit) {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
    let signing = (0..=255u8)
        .map(|b| {
            let mut k = [0u8; 32];
            k[0] = b;
            k
        })
        .find(|k| vodozemac::Ed25519PublicKey::from_slice(k).is_err())
        .expect("a y coordinate off the curve");
    // Both copies from one device: the same sender, so only vodozemac can tell them apart.
    let base: serde_json::Value = serde_json::from_str(&sessions(1)[0].to_json()).expect("json");
    let copy = |ratchet: u8| {
        let mut v = base.clone();
        let mut key = vec![1u8, 0, 0, 0, 0];
        key.extend_from_slice(&[ratchet; 128]);
        key.extend_from_slice(&signing);
        v["session_key"] = b64.encode(key).into();
        v["session_id"] = b64.encode(signing).into();
        v.to_string()
    };
    let json = format!("[{},{}]", copy(1), copy(2));
    kit.case(
        "entry-signing-key-not-a-point.txt",
        "two copies of a session whose signing key is not an Ed25519 point (once a panic)",
        seal(json.as_bytes()).as_bytes(),
        "job: filter\nlibrary: invalid BadSessionKey\nexit: 5\nmessage: not an Ed25519 public key",
    );
}

/// Found by fuzzing: a claimed key of another algorithm that is not a string. Importers
/// decode every claimed key and reject the whole file.
fn claimed_keys_not_strings(kit: &mut Kit) {
    let good = sessions(1)[0].to_json();
    let bad = entry_json(|v| v["sender_claimed_keys"]["curve25519"] = serde_json::json!(["x"]));
    let json = format!("[{good},{bad}]");
    kit.case(
        "entry-claimed-key-not-a-string.txt",
        "fuzzer regression: a claimed key that is a list, beside a good ed25519 key (entry 1 of 2)",
        seal(json.as_bytes()).as_bytes(),
        "job: filter\nlibrary: invalid NotAnObject\nexit: 5\nmessage: entry 1",
    );
}

fn json_inputs(kit: &mut Kit) {
    let good = testkit::to_json(&sessions(2));
    kit.case(
        "valid.json",
        "two valid sessions to encrypt",
        &good,
        "job: encrypt\nlibrary: ok 2\nexit: 0",
    );
    kit.case(
        "empty.json",
        "no sessions to encrypt",
        b"[]",
        "job: encrypt\nlibrary: ok 0\nexit: 0",
    );
    kit.case(
        "object.json",
        "a JSON object, not an array",
        b"{}",
        "job: encrypt\nlibrary: NotSessionArray\nexit: 3\nmessage: not an array of sessions",
    );
    kit.case(
        "latin1.json",
        "not UTF-8",
        b"[\"caf\xe9\"]",
        "job: encrypt\nlibrary: NotUtf8\nexit: 3\nmessage: not UTF-8",
    );
}

fn snake(kind: &str) -> String {
    let mut s = String::new();
    for (i, c) in kind.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            s.push('-');
        }
        s.push(c.to_ascii_lowercase());
    }
    s
}

fn main() {
    let dir: PathBuf = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new("crates/key-export/tests/testkit").to_owned());
    std::fs::create_dir_all(&dir).expect("create the kit folder");
    std::fs::write(dir.join("passphrase"), PASS).expect("write the passphrase");
    let mut kit = Kit { dir, made: 0 };
    layouts(&mut kit);
    armour_errors(&mut kit);
    crypto_errors(&mut kit);
    invalid_entries(&mut kit);
    not_a_point(&mut kit);
    claimed_keys_not_strings(&mut kit);
    json_inputs(&mut kit);
    eprintln!("wrote {} cases to {}", kit.made, kit.dir.display());
}
