//! The library half of netkit-tools: what the `package` and `demo` binaries are made of,
//! so their tests (`rust/tools/tests`) import it instead of compiling the files again.

/// The addon's packaging: which files ship, the Asset Library zip, and installing into a
/// project (`cargo run --release --bin package`).
pub mod package {
    pub mod addon;
    pub mod extension_list;
    pub mod install;
    pub mod zipper;
}

/// The demo's embedded backend (`cargo run --bin demo`), which the export test runs too.
pub mod demo {
    pub mod backend;
}
