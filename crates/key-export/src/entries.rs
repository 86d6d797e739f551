//! The decrypted JSON array: splitting it into entries without copying, and writing
//! entries back out.
//!
//! Entries are split as borrowed [`RawValue`]s of the decrypted buffer (the README's
//! "Performance" section has the measured rate), then each is read by
//! [`SessionRef::parse`] in parallel. An entry that passes through unchanged is written
//! back byte for byte.

use std::io::Write;

use rayon::prelude::*;
use serde_json::value::RawValue;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::session::SessionRef;

/// Splits decrypted export JSON into its entries. Errors when the text is not UTF-8 or
/// not a JSON array.
pub fn split(json: &[u8]) -> Result<Vec<&RawValue>> {
    let text = std::str::from_utf8(json).map_err(|e| Error::NotUtf8 {
        offset: e.valid_up_to(),
    })?;
    serde_json::from_str(text).map_err(Error::from_json)
}

/// Reads every entry, in parallel, keeping file order.
pub fn parse_all<'a>(entries: &[&'a RawValue]) -> Vec<SessionRef<'a>> {
    entries
        .par_iter()
        .with_min_len(1024)
        .map(|raw| SessionRef::parse(raw))
        .collect()
}

/// Reads, in parallel and in file order, the entries whose room `keep` accepts; the
/// others are only counted (their room_id is all that is read of them). The wanted
/// entries are found first and then read into a vector of their exact length: collecting
/// a filtered parallel iterator would hold every reading twice while its pieces are
/// joined (the peak memory of a merge).
pub fn parse_where<'a, F>(entries: &[&'a RawValue], keep: F) -> (Vec<SessionRef<'a>>, usize)
where
    F: Fn(&str) -> bool + Sync,
{
    let wanted: Vec<&'a RawValue> = entries
        .par_iter()
        .with_min_len(1024)
        .filter(|raw| keep(&SessionRef::room_of(raw)))
        .copied()
        .collect();
    let dropped = entries.len() - wanted.len();
    (parse_all(&wanted), dropped)
}

/// Writes entries as one compact JSON array (Element's own layout) to `out`.
pub fn write_array_to<I, W>(entries: I, out: &mut W) -> std::io::Result<()>
where
    I: IntoIterator,
    I::Item: AsRef<str>,
    W: Write + ?Sized,
{
    out.write_all(b"[")?;
    for (i, e) in entries.into_iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        out.write_all(e.as_ref().as_bytes())?;
    }
    out.write_all(b"]")
}

/// Writes a JSON array of entries handed over one at a time (for entries that arrive as
/// a stream, such as a backup being downloaded).
pub struct ArrayWriter<W: Write> {
    out: W,
    empty: bool,
}

impl<W: Write> ArrayWriter<W> {
    /// Starts the array.
    pub fn new(mut out: W) -> std::io::Result<Self> {
        out.write_all(b"[")?;
        Ok(ArrayWriter { out, empty: true })
    }

    /// Writes one entry (a JSON object's text).
    pub fn push(&mut self, entry: &str) -> std::io::Result<()> {
        if !self.empty {
            self.out.write_all(b",")?;
        }
        self.empty = false;
        self.out.write_all(entry.as_bytes())
    }

    /// Closes the array; returns the writer.
    pub fn finish(mut self) -> std::io::Result<W> {
        self.out.write_all(b"]")?;
        Ok(self.out)
    }
}

/// Writes entries as one compact JSON array into a buffer that is wiped on drop.
pub fn write_array<I>(entries: I) -> Zeroizing<Vec<u8>>
where
    I: IntoIterator,
    I::Item: AsRef<str>,
{
    let mut out = Zeroizing::new(Vec::new());
    write_array_to(entries, &mut *out).expect("writing to memory cannot fail");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    #[test]
    fn parse_where_reads_the_wanted_entries_in_file_order() {
        let json: String = format!(
            "[{}]",
            (0..5000)
                .map(|i| format!(r#"{{"room_id": "!r{}:x", "n": {i}}}"#, i % 7))
                .collect::<Vec<_>>()
                .join(",")
        );
        let raw = split(json.as_bytes()).unwrap();
        let (kept, dropped) = parse_where(&raw, |room| room == "!r3:x" || room == "!r5:x");
        let expected: Vec<&str> = raw
            .iter()
            .map(|r| r.get())
            .filter(|t| t.contains("\"!r3:x\"") || t.contains("\"!r5:x\""))
            .collect();
        assert_eq!(
            kept.iter().map(|s| s.raw.get()).collect::<Vec<_>>(),
            expected
        );
        assert_eq!(dropped, 5000 - expected.len());
        assert_eq!(
            kept.capacity(),
            kept.len(),
            "read into a vector of its exact length"
        );
    }

    #[test]
    fn split_keeps_bytes_and_reports_positions() {
        let json = br#"[ {"a": 1} ,{"b":[2, 3]}]"#;
        let e = split(json).unwrap();
        assert_eq!(
            e.iter().map(|r| r.get()).collect::<Vec<_>>(),
            [r#"{"a": 1}"#, r#"{"b":[2, 3]}"#]
        );
        assert_eq!(
            &*write_array(e.iter().map(|r| Cow::Borrowed(r.get()))),
            br#"[{"a": 1},{"b":[2, 3]}]"#
        );
        assert!(split(b"[]").unwrap().is_empty());
        match split(b"{\"not\": \"array\"}") {
            Err(Error::NotSessionArray { line: 1, .. }) => {}
            other => panic!("{other:?}"),
        }
        match split(b"[\n{},\n{") {
            Err(Error::NotSessionArray {
                line: 3, column, ..
            }) => assert_eq!(column, 1),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            split(b"[\"\xff\"]"),
            Err(Error::NotUtf8 { offset: 2 })
        ));
    }
}
