//! The fuzz targets' entry points, one function per target of `fuzz/` (FUZZING.md says how
//! to run them). Each takes the fuzzer's bytes, drives one parser or state machine the way
//! a peer or a server's bytes reach it, and panics only when a property the code promises
//! does not hold; the parsers themselves must never panic, hang or grow without bound.
//!
//! Built with the `fuzzing` feature (for `fuzz/`) and in `cargo test`, which replays every
//! committed corpus and crash input through the same functions (see the tests below), so
//! the fuzz crate and the regression tests cannot drift apart. Not public API.

pub use crate::core::agones::fuzz::agones_watch;
pub use crate::core::dtls::fuzz::{dtls_admission, dtls_handshake_filter, dtls_pem, dtls_record};
pub use crate::core::http::fuzz::{http_headers, http_json, http_sse, storage};
pub use crate::core::multiplayer::fuzz::{mp_framing, mp_link, mp_packet};

/// A target: the fuzzer's bytes in, a panic when a promised property fails.
pub type Target = fn(&[u8]);

/// Every target by the name of its directories under `fuzz/corpus/` and
/// `fuzz/regressions/`, and of its binary in `fuzz/fuzz_targets/`.
pub const TARGETS: &[(&str, Target)] = &[
    ("dtls_record", dtls_record),
    ("dtls_handshake_filter", dtls_handshake_filter),
    ("dtls_admission", dtls_admission),
    ("dtls_pem", dtls_pem),
    ("mp_packet", mp_packet),
    ("mp_framing", mp_framing),
    ("mp_link", mp_link),
    ("http_json", http_json),
    ("http_sse", http_sse),
    ("http_headers", http_headers),
    ("storage", storage),
    ("agones_watch", agones_watch),
];

/// Cuts a fuzz input into a sequence of messages (datagrams, chunks): each behind its
/// 16-bit big-endian length; a length running past the end takes what is left. The
/// corpus seeds are written in this form (`datagrams` below builds it).
pub fn messages(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while data.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([data[0], data[1]]));
        let rest = &data[2..];
        let (message, next) = rest.split_at(len.min(rest.len()));
        out.push(message);
        data = next;
    }
    out
}

/// The inverse of [`messages`], for writing seeds.
pub fn datagrams<T: AsRef<[u8]>>(messages: &[T]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in messages {
        let m = m.as_ref();
        out.extend_from_slice(&(m.len().min(usize::from(u16::MAX)) as u16).to_be_bytes());
        out.extend_from_slice(&m[..m.len().min(usize::from(u16::MAX))]);
    }
    out
}

#[cfg(test)]
mod seeds;

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;

    fn fuzz_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
    }

    /// Every file of every target's corpus and regressions, through its target: a crash
    /// found once stays fixed, and the corpora keep covering what they covered.
    #[test]
    fn every_corpus_and_crash_input_replays_without_a_failure() {
        let mut replayed = 0;
        for (name, target) in TARGETS {
            let mut files = 0;
            for kind in ["corpus", "regressions"] {
                let dir = fuzz_dir().join(kind).join(name);
                let Ok(entries) = std::fs::read_dir(&dir) else {
                    continue;
                };
                for entry in entries {
                    let path = entry.expect("a readable directory").path();
                    let data = std::fs::read(&path).expect("a readable input");
                    let outcome = std::panic::catch_unwind(|| target(&data));
                    assert!(outcome.is_ok(), "{name} fails on {}", path.display());
                    files += 1;
                }
            }
            assert!(
                files > 0,
                "target {name} has no corpus under fuzz/corpus/{name}"
            );
            replayed += files;
        }
        eprintln!("replayed {replayed} fuzz inputs");
    }

    /// The fuzz crate has a binary for each target and no other.
    #[test]
    fn the_fuzz_crate_has_one_binary_per_target() {
        let manifest =
            std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).expect("fuzz/Cargo.toml");
        for (name, _) in TARGETS {
            assert!(
                manifest.contains(&format!("name = \"{name}\"")),
                "fuzz/Cargo.toml has no [[bin]] {name}"
            );
            assert!(
                fuzz_dir()
                    .join("fuzz_targets")
                    .join(format!("{name}.rs"))
                    .exists()
            );
        }
        assert_eq!(manifest.matches("[[bin]]").count(), TARGETS.len());
    }

    /// A `[patch]` applies only in the workspace that declares it, and the fuzz crate is a
    /// workspace of its own: every vendored crate the addon patches in must be patched in
    /// there too, or the targets build against the crates.io release (and fail to build,
    /// or fuzz code the addon does not run).
    #[test]
    fn the_fuzz_crate_patches_the_same_vendored_crates() {
        let patches = |manifest: &str| -> Vec<String> {
            let section = manifest
                .split("[patch.crates-io]")
                .nth(1)
                .unwrap_or_default();
            let mut names: Vec<String> = section
                .lines()
                .take_while(|l| !l.starts_with('['))
                .filter_map(|l| l.split_once(" = { path = "))
                .map(|(name, _)| name.trim().to_string())
                .collect();
            names.sort();
            names
        };
        let root = std::fs::read_to_string(fuzz_dir().join("../Cargo.toml")).expect("Cargo.toml");
        let fuzz = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).expect("fuzz/Cargo.toml");
        assert!(!patches(&root).is_empty());
        assert_eq!(patches(&fuzz), patches(&root));
    }

    #[test]
    fn messages_and_datagrams_are_inverse() {
        let parts: [&[u8]; 3] = [b"abc", b"", b"\x16\xfe\xfd"];
        assert_eq!(messages(&datagrams(&parts)), parts.to_vec());
        assert_eq!(messages(&[0, 9, 1, 2]), vec![&[1u8, 2][..]]);
    }
}
