#![no_main]

libfuzzer_sys::fuzz_target!(
    |data: &[u8]| helm_handler_fuzz::chart_source_targets::constraint(data)
);
