//! The armour reader and container parser on arbitrary bytes: never panic, and the same
//! verdict (and for bad base64 the same line) however the input is split into chunks.
#![no_main]

use key_export::armor::Dearmorer;
use key_export::{container, Error, Passphrase, ReadOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&split, text)) = data.split_first() else { return };
    let whole = {
        let mut d = Dearmorer::with_capacity(text.len());
        d.feed(text).and_then(|_| d.finish())
    };
    let chunked = {
        let mut d = Dearmorer::with_capacity(0);
        let size = usize::from(split).max(1);
        text.chunks(size).try_for_each(|c| d.feed(c)).and_then(|_| d.finish())
    };
    match (&whole, &chunked) {
        (Ok(a), Ok(b)) => assert_eq!(a.0, b.0),
        // Bad base64: the same line (which bad character is named first may differ).
        (Err(Error::BadBase64 { line: a, .. }), Err(Error::BadBase64 { line: b, .. })) => assert_eq!(a, b),
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
        _ => panic!("chunking changed the verdict: {whole:?} vs {chunked:?}"),
    }
    if let Ok((body, _)) = whole {
        // Few rounds so the fuzzer stays fast; the MAC must reject anything it did not make.
        let opts = ReadOptions { max_rounds: 8 };
        let _ = container::decrypt_body(body, &Passphrase::new("fuzz".into()), &opts);
    }
});
