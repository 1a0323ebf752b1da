//! Claims on the files downloads write: two downloads of one file in one process would
//! interleave their bytes in its part file, so each takes the file's claim first.
//!
//! A second download of a claimed file waits up to 2 s for the claim, then ends with
//! `ERR_FILE`: a download cancelled a moment ago (its pool freed on a scene change) holds
//! the claim until its task has run its ending, and starting the same download again right
//! then was refused instead of resuming. Two spellings of one path (`dir/./f`,
//! `dir/x/../f`) are the same claim (lexical normalization; symbolic links are not
//! resolved, which would need the disk on a worker). `user://` and `res://` paths were
//! globalized on the main thread; the core gets a `PathBuf`.

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// The part files being written by some download of this process: two downloads of one
/// file would interleave their bytes.
fn active_files() -> &'static Mutex<HashSet<PathBuf>> {
    static ACTIVE: OnceLock<Mutex<HashSet<PathBuf>>> = OnceLock::new();
    ACTIVE.get_or_init(|| Mutex::new(HashSet::new()))
}

/// A claim on a file path, released on drop.
pub(super) struct FileClaim(PathBuf);

impl FileClaim {
    pub(super) fn take(path: &Path) -> Option<FileClaim> {
        let key = normalized(path);
        let mut active = active_files().lock().unwrap_or_else(|p| p.into_inner());
        active.insert(key.clone()).then(|| FileClaim(key))
    }
}

/// `path` with `.`, `..` and repeated separators resolved in the text, so that two
/// spellings of one file (`dir/./f`, `dir/sub/../f`, `dir//f`) claim the same entry. It
/// touches no disk (the claim is taken on a runtime worker); a symbolic link is not
/// followed.
fn normalized(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => match out.components().next_back() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => out.push(".."),
            },
            other => out.push(other),
        }
    }
    out
}

/// How long a download waits for another one of the same file to let go. A download
/// cancelled a moment ago (its pool freed on a scene change, `cancel()` before starting
/// it again) still holds the file until its task has run its ending; starting the same
/// download again right then must resume, not fail.
const CLAIM_WAIT: Duration = Duration::from_secs(2);

impl FileClaim {
    /// Takes the claim, waiting up to [`CLAIM_WAIT`] for a holder to end.
    pub(super) async fn wait(path: &Path) -> Option<FileClaim> {
        let deadline = tokio::time::Instant::now() + CLAIM_WAIT;
        loop {
            if let Some(claim) = FileClaim::take(path) {
                return Some(claim);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for FileClaim {
    fn drop(&mut self) {
        active_files()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_of_one_path_normalize_alike() {
        let n = |p: &str| normalized(std::path::Path::new(p));
        assert_eq!(n("/a/b/f"), PathBuf::from("/a/b/f"));
        for same in ["/a/./b/f", "/a//b/f", "/a/c/../b/f", "/a/b/./f"] {
            assert_eq!(n(same), n("/a/b/f"), "{same}");
        }
        assert_eq!(n("../x/f"), PathBuf::from("../x/f"), "a leading .. stays");
        assert_eq!(n("/../f"), PathBuf::from("/f"), "nothing above the root");
    }
}
