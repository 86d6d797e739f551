//! Known-answer vectors for the container (data copied from the team's checked vectors).
//! Vector 4 has an all-0xff IV and decrypts only with the 64-bit wrapping counter.

use base64::Engine;
use key_export::{armor, container, Error, Passphrase, ReadOptions};
use serde::Deserialize;

#[derive(Deserialize)]
struct Vector {
    passphrase: String,
    rounds: u32,
    plaintext: String,
    body: String,
}

#[derive(Deserialize)]
struct Vectors {
    vectors: Vec<Vector>,
}

fn vectors() -> Vec<Vector> {
    let text = include_str!("data/element-key-export.json");
    serde_json::from_str::<Vectors>(text).unwrap().vectors
}

fn armoured(body: &str) -> String {
    format!("{}\n{}\n{}\n", armor::BEGIN, body, armor::END)
}

#[test]
fn all_four_vectors_decrypt_to_their_plaintext() {
    let vs = vectors();
    assert_eq!(vs.len(), 4);
    for v in vs {
        let pass = Passphrase::new(v.passphrase.clone());
        let text = armoured(&v.body);
        let plain = container::decrypt(text.as_bytes(), 0, &pass, &ReadOptions::default()).unwrap();
        assert_eq!(plain.as_bytes(), v.plaintext.as_bytes());
        assert_eq!(plain.header().rounds, v.rounds);
    }
}

#[test]
fn vector_4_needs_the_64_bit_counter() {
    let v = &vectors()[3];
    let body = base64::engine::general_purpose::STANDARD
        .decode(&v.body)
        .unwrap();
    assert_eq!(&body[17..33], &[0xff; 16], "the IV is all ones");
    // With a 128-bit counter the second block's keystream differs, so the text would not
    // match; ours matches, which pins the counter width.
    let plain = container::decrypt_body(
        body,
        &Passphrase::new(v.passphrase.clone()),
        &ReadOptions::default(),
    )
    .unwrap();
    assert_eq!(plain.as_bytes(), v.plaintext.as_bytes());
    assert!(v.plaintext.len() > 16, "spans more than one counter block");
}

#[test]
fn wrong_passphrase_on_a_vector_is_a_mac_error() {
    let v = &vectors()[0];
    let r = container::decrypt(
        armoured(&v.body).as_bytes(),
        0,
        &Passphrase::new("Password".into()),
        &ReadOptions::default(),
    );
    assert!(matches!(r, Err(Error::WrongPassphraseOrCorrupted)));
}

#[test]
fn vectors_in_every_reader_layout() {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
    for v in vectors() {
        let raw = STANDARD.decode(&v.body).unwrap();
        let padded = STANDARD.encode(&raw);
        let unpadded = STANDARD_NO_PAD.encode(&raw);
        let lines = |s: &str, n: usize, eol: &str| {
            s.as_bytes()
                .chunks(n)
                .map(|c| std::str::from_utf8(c).unwrap())
                .collect::<Vec<_>>()
                .join(eol)
        };
        let layouts = [
            // Element Web: 128-char padded lines, trailing newline.
            format!(
                "{}\n{}\n{}\n",
                armor::BEGIN,
                lines(&padded, 128, "\n"),
                armor::END
            ),
            // matrix-rust-sdk: one unpadded line, no trailing newline.
            format!("{}\n{}\n{}", armor::BEGIN, unpadded, armor::END),
            // Element Android / mautrix-go: 76-char lines.
            format!(
                "{}\n{}\n{}\n",
                armor::BEGIN,
                lines(&padded, 76, "\n"),
                armor::END
            ),
            // matrix-nio: one unpadded line with newline.
            format!("{}\n{}\n{}\n", armor::BEGIN, unpadded, armor::END),
            // CRLF, indentation and text around.
            format!(
                "Keys\r\n\r\n  {}\r\n {}\r\n{}\r\n-- \r\n",
                armor::BEGIN,
                lines(&padded, 64, "\r\n "),
                armor::END
            ),
        ];
        for text in layouts {
            let plain = container::decrypt(
                text.as_bytes(),
                0,
                &Passphrase::new(v.passphrase.clone()),
                &ReadOptions::default(),
            )
            .unwrap_or_else(|e| panic!("{e}: {text}"));
            assert_eq!(plain.as_bytes(), v.plaintext.as_bytes());
        }
    }
}
