//! The binary container inside the armour (Matrix spec, "Key exports", version 1):
//!
//! | bytes | field |
//! |---|---|
//! | 1 | version, 0x01 |
//! | 16 | salt |
//! | 16 | IV (AES-CTR initial counter block) |
//! | 4 | PBKDF2 rounds, big-endian |
//! | n | AES-256-CTR ciphertext of the JSON |
//! | 32 | HMAC-SHA-256 of everything before it |
//!
//! The counter is the low 64 bits of the counter block, wrapping without carry, as
//! WebCrypto's AES-CTR with `length: 64` (Element Web) does: `ctr::Ctr64BE`.
//!
//! Decryption is the hot path. [`decrypt`] decodes base64 while another thread runs
//! PBKDF2, then verifies the MAC on one core while the other decrypts the chunks the
//! MAC has already covered, in place. Nothing leaves this module before the MAC checks.

use std::io::{Read, Write};
use std::sync::mpsc::sync_channel;

use aes::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};
use hmac::{Hmac, Mac};
use rayon::prelude::*;
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

use crate::armor::{self, Dearmorer, Layout};
use crate::error::{Error, Result};
use crate::passphrase::{DerivedKeys, Passphrase};

type Aes256Ctr64 = ctr::Ctr64BE<aes::Aes256>;
type HmacSha256 = Hmac<Sha256>;

/// The only container version.
pub const VERSION: u8 = 1;
/// Bytes before the ciphertext.
pub const HEADER_LEN: usize = 1 + 16 + 16 + 4;
/// Bytes of the MAC at the end.
pub const MAC_LEN: usize = 32;
/// The smallest possible container (an empty ciphertext).
pub const MIN_LEN: usize = HEADER_LEN + MAC_LEN;
/// Rounds Element writes, and our default.
pub const DEFAULT_ROUNDS: u32 = 500_000;
/// Default cap on the rounds a file may ask for: twenty times what Element writes, so
/// seconds of PBKDF2, not the hours a hostile file could ask for.
pub const DEFAULT_MAX_ROUNDS: u32 = 10_000_000;
/// Largest round count a writer may use: Element reads it as a signed 32-bit number.
pub const MAX_WRITE_ROUNDS: u32 = i32::MAX as u32;

/// A PBKDF2 round count this tool will write: 1 to [`MAX_WRITE_ROUNDS`]. Checked once,
/// where it is made, so everything that takes one can rely on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rounds(u32);

impl Rounds {
    /// What Element writes.
    pub const DEFAULT: Rounds = Rounds(DEFAULT_ROUNDS);

    /// Checks `rounds`.
    pub fn new(rounds: u32) -> Result<Self> {
        if rounds == 0 || rounds > MAX_WRITE_ROUNDS {
            return Err(Error::InvalidRounds { rounds });
        }
        Ok(Rounds(rounds))
    }

    /// The count.
    pub fn get(self) -> u32 {
        self.0
    }
}

impl std::fmt::Display for Rounds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Work is split in pieces of this size for the MAC/decrypt pipeline.
const CHUNK: usize = 1 << 20;

/// The container header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// PBKDF2 salt.
    pub salt: [u8; 16],
    /// Initial AES-CTR counter block.
    pub iv: [u8; 16],
    /// PBKDF2 rounds.
    pub rounds: u32,
}

impl Header {
    /// Parses and checks the first [`HEADER_LEN`] bytes of a container.
    pub fn parse(bytes: &[u8], max_rounds: u32) -> Result<Self> {
        let Some(&version) = bytes.first() else {
            return Err(Error::BodyTooShort { len: 0 });
        };
        if version != VERSION {
            return Err(Error::UnsupportedVersion { version });
        }
        if bytes.len() < HEADER_LEN {
            return Err(Error::BodyTooShort { len: bytes.len() });
        }
        let mut h = Header {
            salt: [0; 16],
            iv: [0; 16],
            rounds: 0,
        };
        h.salt.copy_from_slice(&bytes[1..17]);
        h.iv.copy_from_slice(&bytes[17..33]);
        h.rounds = u32::from_be_bytes(bytes[33..37].try_into().expect("4 bytes"));
        if h.rounds == 0 || h.rounds > max_rounds {
            return Err(Error::RoundsOutOfRange {
                rounds: h.rounds,
                max: max_rounds,
            });
        }
        Ok(h)
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.push(VERSION);
        out.extend_from_slice(&self.salt);
        out.extend_from_slice(&self.iv);
        out.extend_from_slice(&self.rounds.to_be_bytes());
    }
}

/// Options for reading an export.
#[derive(Debug, Clone, Copy)]
pub struct ReadOptions {
    /// Refuse files asking for more PBKDF2 rounds than this.
    pub max_rounds: u32,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            max_rounds: DEFAULT_MAX_ROUNDS,
        }
    }
}

/// An authenticated, decrypted export: the JSON text, wiped from memory on drop.
pub struct Plaintext {
    /// The whole decoded container; the plaintext is `buf[HEADER_LEN..end]`.
    buf: Zeroizing<Vec<u8>>,
    end: usize,
    header: Header,
    layout: Layout,
}

impl Plaintext {
    /// The decrypted JSON bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[HEADER_LEN..self.end]
    }
    /// The header of the file it came from.
    pub fn header(&self) -> &Header {
        &self.header
    }
    /// The armour layout of the file it came from.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }
}

impl std::fmt::Debug for Plaintext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plaintext")
            .field("len", &(self.end - HEADER_LEN))
            .field("header", &self.header)
            .finish_non_exhaustive()
    }
}

/// Reads, authenticates and decrypts an armoured export from `reader`.
///
/// `size_hint` is the file's length when known (0 otherwise): it sizes the buffer once.
pub fn decrypt(
    mut reader: impl Read,
    size_hint: usize,
    passphrase: &Passphrase,
    options: &ReadOptions,
) -> Result<Plaintext> {
    let mut dearmorer = Dearmorer::with_capacity(size_hint);
    let mut chunk = vec![0u8; 1 << 20];
    // PBKDF2 starts as soon as the header is decoded, on its own thread, while the
    // rest of the file is read and decoded. The thread owns copies of what it needs,
    // so an early error returns at once and the thread ends (and wipes) on its own.
    let mut kdf: Option<std::thread::JoinHandle<DerivedKeys>> = None;
    loop {
        let n = match reader.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        dearmorer.feed(&chunk[..n])?;
        if kdf.is_none() && dearmorer.decoded().len() >= HEADER_LEN {
            // A bad header is reported once the whole file is read (a short body is the
            // more useful message for a damaged file).
            let Ok(header) = Header::parse(dearmorer.decoded(), options.max_rounds) else {
                continue;
            };
            let pass = passphrase.clone();
            let handle =
                std::thread::spawn(move || DerivedKeys::derive(&pass, &header.salt, header.rounds));
            kdf = Some(handle);
        }
    }
    let (body, layout) = dearmorer.finish()?;
    let header = check_body(&body, options.max_rounds)?;
    let keys = match kdf {
        Some(handle) => handle.join().expect("PBKDF2 thread does not panic"),
        None => DerivedKeys::derive(passphrase, &header.salt, header.rounds),
    };
    open(body, header, layout, &keys)
}

/// Authenticates and decrypts a decoded container (no armour) with a known key.
pub fn decrypt_body(
    body: Vec<u8>,
    passphrase: &Passphrase,
    options: &ReadOptions,
) -> Result<Plaintext> {
    let header = check_body(&body, options.max_rounds)?;
    let keys = DerivedKeys::derive(passphrase, &header.salt, header.rounds);
    open(body, header, Layout::default(), &keys)
}

/// Checks a whole decoded container, in the order that gives the most useful message:
/// version, length, then rounds.
fn check_body(body: &[u8], max_rounds: u32) -> Result<Header> {
    match body.first() {
        Some(&VERSION) if body.len() >= MIN_LEN => Header::parse(body, max_rounds),
        Some(&VERSION) | None => Err(Error::BodyTooShort { len: body.len() }),
        Some(&version) => Err(Error::UnsupportedVersion { version }),
    }
}

/// Verifies the MAC and decrypts in place, pipelined: the MAC runs over chunk i on
/// this thread while chunk i-1 is decrypted on another.
fn open(body: Vec<u8>, header: Header, layout: Layout, keys: &DerivedKeys) -> Result<Plaintext> {
    let mut buf = Zeroizing::new(body);
    let end = buf.len() - MAC_LEN;
    let mut tag = [0u8; MAC_LEN];
    tag.copy_from_slice(&buf[end..]);
    let mut mac = HmacSha256::new_from_slice(&keys.mac).expect("any key length");
    let (head, rest) = buf.split_at_mut(HEADER_LEN);
    mac.update(head);
    let ciphertext = &mut rest[..end - HEADER_LEN];
    if ciphertext.len() <= CHUNK {
        mac.update(ciphertext);
        if mac.verify_slice(&tag).is_err() {
            return Err(Error::WrongPassphraseOrCorrupted);
        }
        apply_keystream(ciphertext, 0, &keys.aes, &header.iv);
    } else {
        std::thread::scope(|s| {
            let (tx, rx) = sync_channel::<(usize, &mut [u8])>(16);
            let aes = &keys.aes;
            let iv = &header.iv;
            s.spawn(move || {
                for (offset, piece) in rx {
                    apply_keystream(piece, offset, aes, iv);
                }
            });
            for (i, piece) in ciphertext.chunks_mut(CHUNK).enumerate() {
                mac.update(piece);
                tx.send((i * CHUNK, piece)).expect("decryptor alive");
            }
        });
        if mac.verify_slice(&tag).is_err() {
            ciphertext.zeroize();
            return Err(Error::WrongPassphraseOrCorrupted);
        }
    }
    Ok(Plaintext {
        buf,
        end,
        header,
        layout,
    })
}

fn apply_keystream(data: &mut [u8], offset: usize, key: &[u8; 32], iv: &[u8; 16]) {
    let mut c = Aes256Ctr64::new(key.into(), iv.into());
    c.seek(offset as u64);
    c.apply_keystream(data);
}

/// A key ready to seal one export: fresh random salt, derived keys and round count.
/// Deriving it is the slow part (PBKDF2), so callers can do it while other work runs.
pub struct SealingKey {
    salt: [u8; 16],
    rounds: u32,
    keys: DerivedKeys,
}

impl SealingKey {
    /// Draws a random salt and derives the keys for `rounds` PBKDF2 rounds.
    pub fn derive(passphrase: &Passphrase, rounds: Rounds) -> Result<Self> {
        let rounds = rounds.get();
        let mut salt = [0u8; 16];
        getrandom::getrandom(&mut salt).map_err(|e| Error::Random(e.to_string()))?;
        let keys = DerivedKeys::derive(passphrase, &salt, rounds);
        Ok(SealingKey { salt, rounds, keys })
    }

    /// The round count this key was derived with.
    pub fn rounds(&self) -> u32 {
        self.rounds
    }

    /// Starts writing an armoured export to `sink`, with a fresh IV. The key is consumed:
    /// one salt, one file. Write the JSON into the returned writer, then call
    /// [`SealWriter::finish`].
    pub fn seal_to<W: Write>(self, sink: W) -> Result<SealWriter<W>> {
        let mut iv = [0u8; 16];
        getrandom::getrandom(&mut iv).map_err(|e| Error::Random(e.to_string()))?;
        // Keep the 64-bit counter from wrapping within any file, like Element does.
        iv[8] &= 0x7f;
        let header = Header {
            salt: self.salt,
            iv,
            rounds: self.rounds,
        };
        let mut mac = HmacSha256::new_from_slice(&self.keys.mac).expect("any key length");
        let mut pending = Vec::with_capacity(SEAL_CHUNK + armor::RAW_PER_LINE);
        header.write(&mut pending);
        mac.update(&pending);
        let mut text = Vec::with_capacity(SEAL_CHUNK / 3 * 4 + SEAL_CHUNK / 96 + 64);
        armor::encode_head(&mut text);
        Ok(SealWriter {
            sink,
            key: self,
            iv,
            mac,
            plain: Zeroizing::new(Vec::with_capacity(SEAL_CHUNK)),
            offset: 0,
            pending,
            text,
        })
    }

    /// Encrypts `plaintext` (the JSON) into an armoured export held in memory.
    pub fn seal(self, plaintext: &[u8]) -> Result<String> {
        let mut w = self.seal_to(Vec::with_capacity(plaintext.len() / 3 * 4 + 1024))?;
        w.write_all(plaintext)?;
        Ok(String::from_utf8(w.finish()?).expect("armour is ASCII"))
    }
}

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealingKey")
            .field("rounds", &self.rounds)
            .finish_non_exhaustive()
    }
}

/// Plaintext is encrypted and encoded in pieces of this size (a whole number of lines).
const SEAL_CHUNK: usize = armor::RAW_PER_LINE * 10_923; // ≈ 1 MiB

/// Streams an export out: plaintext JSON in, armoured text (Element's layout) out, in
/// bounded memory. Each piece is encrypted in parallel, then MACed while it is base64
/// encoded in parallel. Nothing is complete until [`SealWriter::finish`].
pub struct SealWriter<W: Write> {
    sink: W,
    key: SealingKey,
    iv: [u8; 16],
    mac: HmacSha256,
    /// Plaintext not yet encrypted (wiped on drop).
    plain: Zeroizing<Vec<u8>>,
    /// Ciphertext offset of the first byte of `plain`.
    offset: usize,
    /// Binary container bytes not yet encoded (less than one line after each piece).
    pending: Vec<u8>,
    /// Armoured text not yet written.
    text: Vec<u8>,
}

impl<W: Write> SealWriter<W> {
    fn seal_piece(&mut self) -> std::io::Result<()> {
        const LINE: usize = armor::RAW_PER_LINE;
        let aes = &self.key.keys.aes;
        let iv = &self.iv;
        let base = self.offset;
        self.plain
            .par_chunks_mut(1 << 16)
            .enumerate()
            .for_each(|(i, piece)| {
                apply_keystream(piece, base + i * (1 << 16), aes, iv);
            });
        self.offset += self.plain.len();
        // `pending` holds less than one line (at first: the header, MACed up front).
        // Complete it from the new ciphertext, then encode the rest straight from `plain`.
        let head = ((LINE - self.pending.len() % LINE) % LINE).min(self.plain.len());
        self.pending.extend_from_slice(&self.plain[..head]);
        let rest = &self.plain[head..];
        let whole = rest.len() / LINE * LINE;
        let (mac, pending, text, ciphertext) = (
            &mut self.mac,
            &self.pending,
            &mut self.text,
            &self.plain[..],
        );
        rayon::join(
            || mac.update(ciphertext),
            || {
                if pending.len() == LINE {
                    armor::encode_lines(pending, text);
                }
                armor::encode_lines(&rest[..whole], text);
            },
        );
        // Either `pending` was completed (and encoded), or `plain` ran out before it was
        // (then `rest` is empty): what is left of `rest` is the new partial line.
        if self.pending.len() == LINE {
            self.pending.clear();
        }
        self.pending.extend_from_slice(&rest[whole..]);
        self.plain.clear();
        self.sink.write_all(&self.text)?;
        self.text.clear();
        Ok(())
    }

    /// Writes the MAC and the END line; returns the sink.
    pub fn finish(mut self) -> Result<W> {
        self.seal_piece()?;
        let tag = self.mac.clone().finalize().into_bytes();
        self.pending.extend_from_slice(&tag);
        let whole = self.pending.len() / armor::RAW_PER_LINE * armor::RAW_PER_LINE;
        armor::encode_lines(&self.pending[..whole], &mut self.text);
        armor::encode_tail(&self.pending[whole..], &mut self.text);
        self.sink.write_all(&self.text)?;
        self.sink.flush()?;
        Ok(self.sink)
    }
}

impl<W: Write> Write for SealWriter<W> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let room = SEAL_CHUNK - self.plain.len();
        let n = data.len().min(room);
        self.plain.extend_from_slice(&data[..n]);
        if self.plain.len() == SEAL_CHUNK {
            self.seal_piece()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Encrypts `plaintext` into an armoured export (derive + seal in one step).
pub fn encrypt(plaintext: &[u8], passphrase: &Passphrase, rounds: u32) -> Result<String> {
    SealingKey::derive(passphrase, Rounds::new(rounds)?)?.seal(plaintext)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pass(s: &str) -> Passphrase {
        Passphrase::new(s.to_owned())
    }

    #[test]
    fn round_trip_small_and_pipelined_sizes() {
        for len in [
            0,
            1,
            15,
            16,
            17,
            95,
            96,
            97,
            CHUNK - 1,
            CHUNK,
            3 * CHUNK + 5,
            2 * SEAL_CHUNK + 100,
        ] {
            let plain: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let text = encrypt(&plain, &pass("pw"), 3).unwrap();
            let out = decrypt(
                text.as_bytes(),
                text.len(),
                &pass("pw"),
                &ReadOptions::default(),
            )
            .unwrap();
            assert_eq!(out.as_bytes(), &plain[..], "len {len}");
            assert_eq!(out.header().rounds, 3);
            assert_eq!(out.header().iv[8] & 0x80, 0, "bit 63 of the IV is cleared");
        }
    }

    #[test]
    fn every_split_of_the_output_into_lines_round_trips() {
        // Plaintext lengths around line and piece boundaries (the header is 37 bytes, a
        // line 96), written in pieces of every phase.
        for len in [
            0,
            58,
            59,
            60,
            155,
            59 + 96 * 3,
            SEAL_CHUNK - 37,
            SEAL_CHUNK + 59,
        ] {
            let plain: Vec<u8> = (0..len).map(|i| (i % 89) as u8).collect();
            let mut w = SealingKey::derive(&pass("pw"), Rounds::new(1).unwrap())
                .unwrap()
                .seal_to(Vec::new())
                .unwrap();
            for piece in plain.chunks(SEAL_CHUNK - 59) {
                w.write_all(piece).unwrap();
            }
            let text = w.finish().unwrap();
            let out = decrypt(&text[..], 0, &pass("pw"), &ReadOptions::default()).unwrap();
            assert_eq!(out.as_bytes(), &plain[..], "len {len}");
        }
    }

    #[test]
    fn streaming_in_odd_writes_equals_one_write() {
        let plain: Vec<u8> = (0..SEAL_CHUNK + 12_345).map(|i| (i % 97) as u8).collect();
        let mut w = SealingKey::derive(&pass("pw"), Rounds::new(2).unwrap())
            .unwrap()
            .seal_to(Vec::new())
            .unwrap();
        for piece in plain.chunks(7_777) {
            w.write_all(piece).unwrap();
        }
        let text = w.finish().unwrap();
        let lines: Vec<&[u8]> = text.split(|b| *b == b'\n').collect();
        assert!(
            lines[1..lines.len() - 3].iter().all(|l| l.len() == 128),
            "Element's layout"
        );
        let out = decrypt(&text[..], 0, &pass("pw"), &ReadOptions::default()).unwrap();
        assert_eq!(out.as_bytes(), &plain[..]);
    }

    #[test]
    fn wrong_passphrase_and_flipped_bits_fail_the_mac() {
        let plain = vec![b'x'; 2 * CHUNK + 7];
        let text = encrypt(&plain, &pass("right"), 2).unwrap();
        let err = decrypt(text.as_bytes(), 0, &pass("wrong"), &ReadOptions::default());
        assert!(matches!(err, Err(Error::WrongPassphraseOrCorrupted)));
        let (mut body, _) = armor::dearmor(text.as_bytes()).unwrap();
        for pos in [HEADER_LEN, HEADER_LEN + CHUNK + 3, body.len() - 1, 20] {
            body[pos] ^= 1;
            let r = decrypt_body(body.clone(), &pass("right"), &ReadOptions::default());
            assert!(
                matches!(r, Err(Error::WrongPassphraseOrCorrupted)),
                "pos {pos}"
            );
            body[pos] ^= 1;
        }
    }

    #[test]
    fn header_checks() {
        let opts = ReadOptions::default();
        let mut body = vec![1u8; MIN_LEN];
        body[33..37].copy_from_slice(&0u32.to_be_bytes());
        assert!(matches!(
            Header::parse(&body, 10),
            Err(Error::RoundsOutOfRange { rounds: 0, .. })
        ));
        body[33..37].copy_from_slice(&11u32.to_be_bytes());
        assert!(matches!(
            Header::parse(&body, 10),
            Err(Error::RoundsOutOfRange {
                rounds: 11,
                max: 10
            })
        ));
        assert!(Header::parse(&body, 11).is_ok());
        // The default cap at its boundary.
        body[33..37].copy_from_slice(&DEFAULT_MAX_ROUNDS.to_be_bytes());
        assert!(Header::parse(&body, ReadOptions::default().max_rounds).is_ok());
        body[33..37].copy_from_slice(&(DEFAULT_MAX_ROUNDS + 1).to_be_bytes());
        assert!(matches!(
            Header::parse(&body, ReadOptions::default().max_rounds),
            Err(Error::RoundsOutOfRange {
                rounds: 10_000_001,
                max: 10_000_000
            })
        ));
        body[0] = 2;
        assert!(matches!(
            decrypt_body(body.clone(), &pass(""), &opts),
            Err(Error::UnsupportedVersion { version: 2 })
        ));
        assert!(matches!(
            decrypt_body(vec![1u8; MIN_LEN - 1], &pass(""), &opts),
            Err(Error::BodyTooShort { len: 68 })
        ));
        assert!(matches!(
            decrypt_body(vec![], &pass(""), &opts),
            Err(Error::BodyTooShort { len: 0 })
        ));
    }

    #[test]
    fn a_failing_reader_is_an_io_error() {
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("disk on fire"))
            }
        }
        match decrypt(Broken, 0, &pass("p"), &ReadOptions::default()) {
            Err(Error::Io(e)) => assert_eq!(e.to_string(), "disk on fire"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn writer_refuses_rounds_element_cannot_read() {
        assert!(matches!(
            encrypt(b"[]", &pass("p"), 0),
            Err(Error::InvalidRounds { rounds: 0 })
        ));
        assert!(matches!(
            encrypt(b"[]", &pass("p"), 1 << 31),
            Err(Error::InvalidRounds { .. })
        ));
    }
}
