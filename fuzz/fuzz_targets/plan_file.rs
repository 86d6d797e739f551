//! `migrate::fuzz::plan_file`: see its documentation for what must hold.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    migrate::fuzz::plan_file(data);
});
