//! `migrate::fuzz::rooms_file`: see its documentation for what must hold.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    migrate::fuzz::rooms_file(data);
});
