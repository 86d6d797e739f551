//! The text armour around the binary container:
//! `-----BEGIN MEGOLM SESSION DATA-----`, base64 lines, `-----END MEGOLM SESSION DATA-----`.
//!
//! [`Dearmorer`] is a lenient streaming reader: it accepts every layout real producers
//! write (any line length, one line or many, CRLF, padded or unpadded base64, text and
//! whitespace around the armour, a UTF-8 BOM, no final newline) and decodes while the
//! file is still being read, so the passphrase can be derived at the same time.
//! [`armor`] writes what Element writes: 128-character padded lines and a final newline.

use base64::{
    alphabet,
    engine::{general_purpose::GeneralPurpose, DecodePaddingMode, GeneralPurposeConfig},
    Engine,
};
use base64_simd::AsOut;
use rayon::prelude::*;
use serde::Serialize;

use crate::error::{Error, Result};

/// The first line of the armour.
pub const BEGIN: &str = "-----BEGIN MEGOLM SESSION DATA-----";
/// The last line of the armour.
pub const END: &str = "-----END MEGOLM SESSION DATA-----";

/// Characters per base64 line in what we write (Element Web's layout).
pub const LINE_LEN: usize = 128;

/// How far into a file the BEGIN line may be before we give up.
const MAX_PREAMBLE: usize = 1 << 20;
/// One message for padding followed by more data, however the file was split.
const MID_PADDING: &str = "\"=\" padding in the middle of the data";
/// Longest marker line we buffer (BEGIN/END plus generous whitespace).
const MAX_MARKER: usize = 256;

/// Lenient decoder: padding optional, non-canonical trailing bits tolerated (the MAC
/// covers the decoded bytes, so leniency here cannot let corruption through).
const DECODER: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);
const ENCODER: GeneralPurpose = base64::engine::general_purpose::STANDARD;
/// SIMD decoder for unpadded whole quanta (where padded and unpadded decoding agree).
const SIMD_DECODER: base64_simd::Base64 = base64_simd::STANDARD;

/// What the armour of a file looked like: reported by `keys inspect` to tell
/// which tool made a file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Layout {
    /// Number of lines holding base64.
    pub base64_lines: usize,
    /// Length of the longest base64 line, in characters.
    pub longest_line: usize,
    /// The base64 ended with `=` padding.
    pub padded: bool,
    /// Lines ended with CRLF.
    pub crlf: bool,
    /// The file began with a UTF-8 byte-order mark.
    pub bom: bool,
    /// There was text other than whitespace before the BEGIN line.
    pub text_before: bool,
    /// There was text other than whitespace after the END line.
    pub text_after: bool,
    /// The END line was followed by a line ending.
    pub final_newline: bool,
}

impl Layout {
    /// A short guess at the producer, from the notes on real producers' layouts.
    pub fn producer_hint(&self) -> &'static str {
        match (self.base64_lines, self.longest_line, self.padded) {
            (n, 128, true) if n >= 1 => "Element Web (128-character lines)",
            (1, n, true) if n < 128 && self.final_newline => "Element Web (a short file)",
            (n, 76, _) if n >= 1 => "Element Android (old SDK) or mautrix-go (76-character lines)",
            (1, _, false) => "matrix-rust-sdk, matrix-nio or nheko (one unpadded line)",
            (1, _, true) => "one padded line",
            _ => "unknown layout",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Looking for the BEGIN line.
    Preamble,
    /// At the start of a body line (skipping indentation).
    LineStart,
    /// Inside a base64 line.
    Base64,
    /// Inside a line that starts with `-`: must be the END line.
    Marker,
    /// After the END line.
    Done,
}

/// A streaming, lenient armour decoder. Feed it the file in chunks of any size with
/// [`Dearmorer::feed`], then call [`Dearmorer::finish`].
pub struct Dearmorer {
    state: State,
    /// 1-based number of the line being read.
    line: usize,
    /// Bytes read so far (for the preamble cap).
    seen: usize,
    /// The current marker/preamble line, when one is being collected.
    marker: Vec<u8>,
    marker_overflow: bool,
    /// Base64 characters (< 4) not yet decoded.
    carry: Vec<u8>,
    /// Length of the current base64 line, in characters.
    line_chars: usize,
    /// The data so far ended with padding; nothing may follow.
    padded: bool,
    /// Whitespace seen at the end of the current base64 line (only legal if the line ends).
    pending_space: bool,
    /// The current line's last byte so far is a carriage return.
    last_was_cr: bool,
    out: Vec<u8>,
    layout: Layout,
}

impl Dearmorer {
    /// A decoder whose output buffer is sized for a file of `file_len` bytes
    /// (0 when unknown), so decoding a large file does not reallocate.
    pub fn with_capacity(file_len: usize) -> Self {
        Dearmorer {
            state: State::Preamble,
            line: 1,
            seen: 0,
            marker: Vec::new(),
            marker_overflow: false,
            carry: Vec::with_capacity(4),
            line_chars: 0,
            padded: false,
            pending_space: false,
            last_was_cr: false,
            out: Vec::with_capacity(file_len / 4 * 3 + 8),
            layout: Layout::default(),
        }
    }

    /// The bytes decoded so far (the container's header is available early).
    pub fn decoded(&self) -> &[u8] {
        &self.out
    }

    /// Feeds the next chunk of the file.
    pub fn feed(&mut self, mut chunk: &[u8]) -> Result<()> {
        while !chunk.is_empty() {
            let nl = memchr_newline(chunk);
            let (segment, ends_line) = match nl {
                Some(i) => (&chunk[..i], true),
                None => (chunk, false),
            };
            self.segment(segment)?;
            if ends_line {
                self.end_line()?;
                chunk = &chunk[segment.len() + 1..];
            } else {
                chunk = &[];
            }
        }
        Ok(())
    }

    /// Processes the bytes of one line (or the part of it in this chunk).
    fn segment(&mut self, mut seg: &[u8]) -> Result<()> {
        self.seen += seg.len() + 1;
        loop {
            match self.state {
                State::Preamble => {
                    if self.seen > MAX_PREAMBLE {
                        return Err(Error::NotAnExport);
                    }
                    self.collect_marker(seg);
                    return Ok(());
                }
                State::Marker => {
                    self.collect_marker(seg);
                    return Ok(());
                }
                State::Done => {
                    if seg.iter().any(|b| !b.is_ascii_whitespace()) {
                        self.layout.text_after = true;
                    }
                    return Ok(());
                }
                State::LineStart => {
                    let skip = seg.iter().take_while(|b| is_space(**b)).count();
                    seg = &seg[skip..];
                    match seg.first() {
                        None => return Ok(()),
                        Some(b'-') => self.state = State::Marker,
                        Some(_) => self.state = State::Base64,
                    }
                }
                State::Base64 => return self.base64(seg),
            }
        }
    }

    fn collect_marker(&mut self, seg: &[u8]) {
        let room = MAX_MARKER.saturating_sub(self.marker.len());
        if seg.len() > room {
            self.marker_overflow = true;
        }
        self.marker.extend_from_slice(&seg[..seg.len().min(room)]);
    }

    fn take_marker(&mut self) -> Option<Vec<u8>> {
        let mut m = std::mem::take(&mut self.marker);
        let overflow = std::mem::replace(&mut self.marker_overflow, false);
        // A UTF-8 byte-order mark can only start the file.
        if self.line == 1 && m.starts_with(b"\xEF\xBB\xBF") {
            self.layout.bom = true;
            m.drain(..3);
        }
        (!overflow).then_some(m)
    }

    /// Base64 text of the current line.
    fn base64(&mut self, mut seg: &[u8]) -> Result<()> {
        if !seg.is_empty() {
            self.last_was_cr = seg.last() == Some(&b'\r');
        }
        let trimmed_len = seg.len() - seg.iter().rev().take_while(|b| is_space(**b)).count();
        let had_space = trimmed_len < seg.len();
        seg = &seg[..trimmed_len];
        if seg.is_empty() {
            self.pending_space |= had_space;
            return Ok(());
        }
        if self.pending_space {
            // Same verdict whichever way the file was split into chunks.
            return Err(self.bad("whitespace inside a base64 line"));
        }
        self.pending_space = had_space;
        if self.padded {
            return Err(self.bad(MID_PADDING));
        }
        self.line_chars += seg.len();
        // Complete a quantum left over from the previous segment.
        if !self.carry.is_empty() {
            let take = (4 - self.carry.len()).min(seg.len());
            if let Some(&b) = seg[..take].iter().find(|&&b| !is_base64_char(b)) {
                return Err(self.bad_byte(b));
            }
            self.carry.extend_from_slice(&seg[..take]);
            seg = &seg[take..];
            if self.carry.len() < 4 {
                return Ok(());
            }
            let quantum = std::mem::take(&mut self.carry);
            self.decode(&quantum)?;
            self.carry = quantum;
            self.carry.clear();
            if self.padded && !seg.is_empty() {
                return Err(self.bad(MID_PADDING));
            }
        }
        let aligned = seg.len() / 4 * 4;
        let (body, tail) = seg.split_at(aligned);
        if !body.is_empty() {
            self.decode(body)?;
        }
        if self.padded && !tail.is_empty() {
            return Err(self.bad(MID_PADDING));
        }
        // Check held-back characters now, so the first bad character is the one reported
        // however the file is split into chunks.
        if let Some(&b) = tail.iter().find(|&&b| !is_base64_char(b)) {
            return Err(self.bad_byte(b));
        }
        self.carry.extend_from_slice(tail);
        Ok(())
    }

    /// Decodes whole quanta (a multiple of 4 characters) onto the output.
    fn decode(&mut self, b64: &[u8]) -> Result<()> {
        // The common case, no padding: the SIMD decoder (several times faster). On any
        // error fall through to the scalar one, which names the bad character.
        if b64.last() != Some(&b'=') {
            let start = self.out.len();
            self.out.resize(start + b64.len() / 4 * 3, 0);
            if SIMD_DECODER.decode(b64, self.out[start..].as_out()).is_ok() {
                return Ok(());
            }
            self.out.truncate(start);
        }
        match DECODER.decode_vec(b64, &mut self.out) {
            Ok(()) => {
                if b64.last() == Some(&b'=') {
                    self.padded = true;
                    self.layout.padded = true;
                }
                Ok(())
            }
            Err(e) => Err(self.bad_decode(e)),
        }
    }

    fn bad_decode(&self, e: base64::DecodeError) -> Error {
        match e {
            base64::DecodeError::InvalidByte(_, b) => self.bad_byte(b),
            other => self.bad(&other.to_string()),
        }
    }

    fn bad_byte(&self, b: u8) -> Error {
        match b {
            b'=' => self.bad(MID_PADDING),
            b if is_space(b) => self.bad("whitespace inside a base64 line"),
            b if b.is_ascii_graphic() => {
                self.bad(&format!("character {:?} is not base64", b as char))
            }
            b => self.bad(&format!("byte 0x{b:02x} is not base64")),
        }
    }

    fn bad(&self, reason: &str) -> Error {
        Error::BadBase64 {
            line: self.line,
            reason: reason.to_owned(),
        }
    }

    fn end_line(&mut self) -> Result<()> {
        match self.state {
            State::Preamble => {
                if let Some(m) = self.take_marker() {
                    if trim(&m) == BEGIN.as_bytes() {
                        self.state = State::LineStart;
                    } else if !trim(&m).is_empty() {
                        self.layout.text_before = true;
                    }
                } else {
                    self.layout.text_before = true;
                }
            }
            State::Marker => {
                let m = self.take_marker();
                if m.as_deref().map(trim) == Some(END.as_bytes()) {
                    self.state = State::Done;
                    self.layout.final_newline = true;
                } else {
                    return Err(self.bad("a line starting with \"-\" that is not the END line"));
                }
            }
            State::Base64 => {
                self.layout.base64_lines += 1;
                self.layout.longest_line = self.layout.longest_line.max(self.line_chars);
                self.line_chars = 0;
                self.pending_space = false;
                self.layout.crlf |= std::mem::take(&mut self.last_was_cr);
                self.state = State::LineStart;
            }
            State::Done | State::LineStart => {}
        }
        self.line += 1;
        Ok(())
    }

    /// Ends the input: checks the armour was complete and returns the decoded body.
    pub fn finish(mut self) -> Result<(Vec<u8>, Layout)> {
        // A last line without a line ending.
        match self.state {
            State::Preamble => {
                if let Some(m) = self.take_marker() {
                    if trim(&m) == BEGIN.as_bytes() {
                        return Err(Error::Truncated);
                    }
                }
                return Err(Error::NotAnExport);
            }
            State::Marker => {
                let m = self.take_marker();
                if m.as_deref().map(trim) != Some(END.as_bytes()) {
                    return Err(self.bad("a line starting with \"-\" that is not the END line"));
                }
                self.state = State::Done;
            }
            State::Base64 | State::LineStart => return Err(Error::Truncated),
            State::Done => {}
        }
        match self.carry.len() {
            0 => {}
            1 => return Err(self.bad("the base64 data ends with a stray character")),
            _ => {
                let q = std::mem::take(&mut self.carry);
                self.decode(&q)?;
            }
        }
        Ok((self.out, self.layout))
    }
}

/// Decodes a whole armoured file held in memory.
pub fn dearmor(text: &[u8]) -> Result<(Vec<u8>, Layout)> {
    let mut d = Dearmorer::with_capacity(text.len());
    d.feed(text)?;
    d.finish()
}

/// Bytes of binary data per armour line (96 bytes → 128 base64 characters).
pub const RAW_PER_LINE: usize = LINE_LEN / 4 * 3;

/// Appends `bin` as base64 lines of 128 characters, each ending in `\n`, encoding in
/// parallel. `bin` must be a whole number of lines ([`RAW_PER_LINE`] bytes each).
pub fn encode_lines(bin: &[u8], out: &mut Vec<u8>) {
    const LINES_PER_TASK: usize = 2048;
    assert_eq!(bin.len() % RAW_PER_LINE, 0, "whole lines only");
    let start = out.len();
    out.resize(start + bin.len() / RAW_PER_LINE * (LINE_LEN + 1), 0);
    out[start..]
        .par_chunks_mut((LINE_LEN + 1) * LINES_PER_TASK)
        .zip(bin.par_chunks(RAW_PER_LINE * LINES_PER_TASK))
        .for_each(|(dst, src)| {
            for (d, s) in dst.chunks_mut(LINE_LEN + 1).zip(src.chunks(RAW_PER_LINE)) {
                ENCODER
                    .encode_slice(s, &mut d[..LINE_LEN])
                    .expect("96 bytes fit 128 characters");
                d[LINE_LEN] = b'\n';
            }
        });
}

/// Appends the last, possibly short, line (padded) and the END line.
pub fn encode_tail(rest: &[u8], out: &mut Vec<u8>) {
    debug_assert!(rest.len() <= RAW_PER_LINE);
    if !rest.is_empty() {
        out.extend_from_slice(ENCODER.encode(rest).as_bytes());
        out.push(b'\n');
    }
    out.extend_from_slice(END.as_bytes());
    out.push(b'\n');
}

/// The BEGIN line.
pub fn encode_head(out: &mut Vec<u8>) {
    out.extend_from_slice(BEGIN.as_bytes());
    out.push(b'\n');
}

/// Armours a binary container the way Element Web does: BEGIN line, base64 in
/// 128-character padded lines, END line, final newline.
pub fn armor(body: &[u8]) -> String {
    let whole = body.len() / RAW_PER_LINE * RAW_PER_LINE;
    let mut out = Vec::with_capacity(body.len() / 3 * 4 + body.len() / 96 + 100);
    encode_head(&mut out);
    encode_lines(&body[..whole], &mut out);
    encode_tail(&body[whole..], &mut out);
    String::from_utf8(out).expect("armour is ASCII")
}

fn memchr_newline(s: &[u8]) -> Option<usize> {
    memchr::memchr(b'\n', s)
}

fn is_base64_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=')
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\x0b' | b'\x0c')
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s.iter().take_while(|b| b.is_ascii_whitespace()).count();
    let end = s.len()
        - s[start..]
            .iter()
            .rev()
            .take_while(|b| b.is_ascii_whitespace())
            .count();
    &s[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};

    fn body() -> Vec<u8> {
        (0..1000u32).map(|i| (i * 7 + 3) as u8).collect()
    }

    fn wrap(b64: &str, width: usize, eol: &str) -> String {
        let mut s = format!("{BEGIN}{eol}");
        for line in b64.as_bytes().chunks(width) {
            s.push_str(std::str::from_utf8(line).unwrap());
            s.push_str(eol);
        }
        s.push_str(END);
        s
    }

    #[test]
    fn armor_writes_elements_layout_and_reads_back() {
        let body = body();
        let text = armor(&body);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], BEGIN);
        assert_eq!(*lines.last().unwrap(), END);
        assert!(text.ends_with('\n'));
        assert!(lines[1..lines.len() - 2].iter().all(|l| l.len() == 128));
        assert_eq!(lines[1..lines.len() - 1].concat(), STANDARD.encode(&body));
        let (back, layout) = dearmor(text.as_bytes()).unwrap();
        assert_eq!(back, body);
        assert_eq!(layout.longest_line, 128);
        assert!(layout.padded && layout.final_newline && !layout.crlf);
    }

    #[test]
    fn every_layout_and_every_chunking_decodes_the_same() {
        let body = body();
        let padded = STANDARD.encode(&body);
        let unpadded = STANDARD_NO_PAD.encode(&body);
        let variants = [
            wrap(&padded, 128, "\n") + "\n",
            wrap(&unpadded, 76, "\n"),
            wrap(&unpadded, usize::MAX, "\n"),
            wrap(&padded, 64, "\r\n") + "\r\n",
            wrap(&unpadded, 13, "\n"),
            format!(
                "\u{feff}  Exported keys\n\n  {}  \n\ntrailing notes\n",
                wrap(&padded, 128, "\n")
            ),
            format!("{BEGIN}\n   {unpadded}\t \n{END}"),
        ];
        for v in &variants {
            for chunk in [1, 3, 7, 128, 4096, usize::MAX] {
                let mut d = Dearmorer::with_capacity(0);
                for c in v.as_bytes().chunks(chunk.min(v.len())) {
                    d.feed(c).unwrap_or_else(|e| panic!("{e} in {v:?}"));
                }
                let (back, _) = d.finish().unwrap();
                assert_eq!(back, body, "layout {v:?} chunk {chunk}");
            }
        }
    }

    #[test]
    fn layout_is_reported() {
        let unpadded = STANDARD_NO_PAD.encode(body());
        let (_, l) = dearmor(format!("{BEGIN}\n{unpadded}\n{END}").as_bytes()).unwrap();
        assert_eq!(
            (l.base64_lines, l.padded, l.final_newline),
            (1, false, false)
        );
        assert!(l.producer_hint().contains("one unpadded line"));
        let (_, l) =
            dearmor(format!("hi\r\n{BEGIN}\r\n{unpadded}\r\n{END}\r\nbye").as_bytes()).unwrap();
        assert!(l.crlf && l.text_before && l.text_after && l.final_newline);
    }

    #[test]
    fn errors_are_specific() {
        let b64 = STANDARD.encode(body());
        assert!(matches!(
            dearmor(b"hello\nworld\n"),
            Err(Error::NotAnExport)
        ));
        assert!(matches!(dearmor(b""), Err(Error::NotAnExport)));
        assert!(matches!(
            dearmor(format!("{BEGIN}\n{b64}\n").as_bytes()),
            Err(Error::Truncated)
        ));
        assert!(matches!(
            dearmor(format!("{BEGIN}\n{b64}").as_bytes()),
            Err(Error::Truncated)
        ));
        assert!(matches!(dearmor(BEGIN.as_bytes()), Err(Error::Truncated)));
        let bad = format!("{BEGIN}\n{}\nAAAA*AAA\n{END}\n", &b64[..128]);
        match dearmor(bad.as_bytes()) {
            Err(Error::BadBase64 { line: 3, reason }) => assert!(reason.contains('*'), "{reason}"),
            other => panic!("{other:?}"),
        }
        let mid_pad = format!("{BEGIN}\nAAA=\nAAAA\n{END}\n");
        assert!(matches!(
            dearmor(mid_pad.as_bytes()),
            Err(Error::BadBase64 { line: 3, .. })
        ));
        let inner_pad = format!("{BEGIN}\nAA==AAAA\n{END}\n");
        assert!(matches!(
            dearmor(inner_pad.as_bytes()),
            Err(Error::BadBase64 { line: 2, .. })
        ));
        let inner_space = format!("{BEGIN}\nAAAA AAAA\n{END}\n");
        assert!(matches!(
            dearmor(inner_space.as_bytes()),
            Err(Error::BadBase64 { line: 2, .. })
        ));
        let mut d = Dearmorer::with_capacity(0);
        d.feed(format!("{BEGIN}\nAAAA ").as_bytes()).unwrap();
        assert!(matches!(
            d.feed(b"AAAA\n"),
            Err(Error::BadBase64 { line: 2, .. })
        ));
        let stray = format!("{BEGIN}\nAAAAA\n{END}\n");
        assert!(matches!(
            dearmor(stray.as_bytes()),
            Err(Error::BadBase64 { .. })
        ));
        let other_marker = format!("{BEGIN}\nAAAA\n-----BEGIN PGP MESSAGE-----\n");
        assert!(matches!(
            dearmor(other_marker.as_bytes()),
            Err(Error::BadBase64 { line: 3, .. })
        ));
    }

    #[test]
    fn bad_input_gives_the_same_error_whatever_the_chunking() {
        // The first two cases and the last were found by the `container` fuzz target.
        let cases: [&[u8]; 6] = [
            b"-----BEGIN MEGOLM SESSION DATA-----\n\x01\nJ\r\0\0\0\0\0\0\0\x1a",
            b"\xef\xbb\xbf-----BEGIN MEGOLM SESSION DATA-----\n\t\n",
            b"-----BEGIN MEGOLM SESSION DATA-----\nA\x01 B\n",
            b"-----BEGIN MEGOLM SESSION DATA-----\nA \x01\n",
            b"-----BEGIN MEGOLM SESSION DATA-----\nAB=A\n",
            b"-----BEGIN MEGOLM SESSION DATA-----\nSEN+=OATI\n",
        ];
        for case in cases {
            let whole = dearmor(case).unwrap_err().to_string();
            for size in 1..case.len() {
                let mut d = Dearmorer::with_capacity(0);
                let r = case
                    .chunks(size)
                    .try_for_each(|c| d.feed(c))
                    .and_then(|_| d.finish());
                assert_eq!(r.unwrap_err().to_string(), whole, "chunks of {size}");
            }
        }
    }

    #[test]
    fn the_preamble_cap_holds_at_its_boundary() {
        // Junk line, its newline, then the BEGIN line and its newline: exactly the cap is
        // still read, one byte more is not an export (whatever follows).
        let export = armor(&[7u8; 100]);
        let room = MAX_PREAMBLE - 1 - (BEGIN.len() + 1);
        let with_junk =
            |n: usize| [vec![b'x'; n], b"\n".to_vec(), export.as_bytes().to_vec()].concat();
        let (body, layout) = dearmor(&with_junk(room)).expect("a preamble of exactly the cap");
        assert_eq!(body, [7u8; 100]);
        assert!(layout.text_before);
        assert!(matches!(
            dearmor(&with_junk(room + 1)),
            Err(Error::NotAnExport)
        ));
    }
}
