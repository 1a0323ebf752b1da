#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| netkit::fuzzing::dtls_admission(data));
