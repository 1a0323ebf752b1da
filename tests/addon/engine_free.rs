//! rust/core runs on worker threads and must stay free of engine types: no file under it
//! may import the `godot` crate.

use std::path::Path;

fn check(dir: &Path, offenders: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).expect("read rust/core") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            check(&path, offenders);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).expect("read source");
            for (n, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or("");
                if code.contains("godot::")
                    || code.trim_start().starts_with("use godot")
                    || code.contains("extern crate godot")
                {
                    offenders.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
                }
            }
        }
    }
}

#[test]
fn core_does_not_import_godot() {
    let core = Path::new(env!("CARGO_MANIFEST_DIR")).join("rust/core");
    let mut offenders = Vec::new();
    check(&core, &mut offenders);
    assert!(
        offenders.is_empty(),
        "rust/core must not use the godot crate:\n{}",
        offenders.join("\n")
    );
}
