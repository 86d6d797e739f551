//! The decrypted-JSON layer on arbitrary bytes; the checks are
//! `key_export::testkit::fuzz::sessions`'s (replayed over the seed corpus by the tests).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| key_export::testkit::fuzz::sessions(data));
