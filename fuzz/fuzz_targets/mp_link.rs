#![no_main]

// `Link` catches renet's panics on hostile packets and ends the link instead
// (link.rs); libFuzzer's hook would abort at the panic, before the catch. The default
// hook prints them; a panic that escapes the target still aborts (libfuzzer-sys).
libfuzzer_sys::fuzz_target!(
    init: drop(std::panic::take_hook()),
    |data: &[u8]| netkit::fuzzing::mp_link(data)
);
