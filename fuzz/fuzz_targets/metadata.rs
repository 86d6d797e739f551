//! `migrate::fuzz::metadata`: see its documentation for what must hold.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    migrate::fuzz::metadata(data);
});
