#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| helm_handler_fuzz::helm_handler_targets::manifests(data));
