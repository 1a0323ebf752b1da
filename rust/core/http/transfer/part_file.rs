//! The files of a download in progress, all blocking I/O (called on tokio's blocking
//! pool): `<file>.part` holds the bytes so far, `<file>.part.meta` the URL and the
//! validator (ETag or Last-Modified) they belong to, so a later run of the game can resume
//! with `If-Range` (RFC 9110 section 13.1.5) and never glue two versions together.
//!
//! Bytes go to `<file>.part` in 256 KiB writes (memory per download: that plus one network
//! chunk), and the SHA-256 (ring) is updated as they are written; on success the file is
//! fsynced, renamed over `<file>`, and the folder fsynced. `<file>.part.meta` (JSON,
//! written through a temporary file and a rename) keeps the URL, the validator and the
//! size, so a later run resumes: the existing part is hashed again, then continued. A
//! sidecar is resumed only when netkit could have written it (a strong ETag or an HTTP date
//! usable in `If-Range` as is, a part no longer than its recorded total, at most 64 KiB);
//! anything else starts over instead of failing every attempt on a header that cannot be
//! sent.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use ring::digest::{Context, SHA256};
use serde_json::{Value, json};

/// The three paths of one download.
#[derive(Clone, Debug)]
pub(crate) struct PartPaths {
    pub file: PathBuf,
    pub part: PathBuf,
    pub meta: PathBuf,
}

impl PartPaths {
    pub fn new(file: &Path) -> PartPaths {
        let with = |suffix: &str| {
            let mut name = file.as_os_str().to_owned();
            name.push(suffix);
            PathBuf::from(name)
        };
        PartPaths {
            file: file.to_path_buf(),
            part: with(".part"),
            meta: with(".part.meta"),
        }
    }
}

/// What the sidecar remembers about the part file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Meta {
    pub url: String,
    /// The `If-Range` value: a strong ETag or a Last-Modified date.
    pub validator: String,
    pub total: Option<u64>,
}

/// Largest sidecar read: netkit writes a URL, a validator and a number.
const MAX_META_BYTES: u64 = 64 * 1024;

/// The sidecar and the part file's length, when both exist and the sidecar is one netkit
/// could have written: its validator a strong ETag or an HTTP date that can go into
/// `If-Range` as is, and the part file no longer than the total it records. Anything else
/// (a sidecar edited, truncated or from another program) is not resumed: the download
/// starts over instead of failing on every attempt or gluing unrelated bytes together.
pub(crate) fn read_resumable(paths: &PartPaths) -> Option<(Meta, u64)> {
    if fs::metadata(&paths.meta).ok()?.len() > MAX_META_BYTES {
        return None;
    }
    let meta = parse_meta(&fs::read(&paths.meta).ok()?)?;
    let part = fs::metadata(&paths.part).ok()?;
    if !part.is_file() || meta.total.is_some_and(|total| part.len() > total) {
        return None;
    }
    Some((meta, part.len()))
}

/// The sidecar's content, when it is one netkit could have written (see
/// [`read_resumable`]); `None` for anything else.
pub(crate) fn parse_meta(bytes: &[u8]) -> Option<Meta> {
    let value: Value = serde_json::from_slice(bytes).ok()?;
    let meta = Meta {
        url: value.get("url")?.as_str()?.to_string(),
        validator: value.get("validator")?.as_str()?.to_string(),
        total: match value.get("total") {
            None | Some(Value::Null) => None,
            Some(total) => Some(total.as_u64()?),
        },
    };
    usable_validator(&meta.validator).then_some(meta)
}

/// A strong entity tag (RFC 9110 section 8.8.3: `"` etagc* `"`) or an HTTP date.
pub(crate) fn usable_validator(validator: &str) -> bool {
    let etag = validator.len() >= 2
        && validator.starts_with('"')
        && validator.ends_with('"')
        && validator[1..validator.len() - 1]
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x7e).contains(&b) || b >= 0x80);
    etag || (validator.is_ascii() && httpdate::parse_http_date(validator).is_ok())
}

/// Writes the sidecar through a temporary file and a rename, so a crash leaves the old
/// one or the new one, never half of one.
pub(crate) fn write_meta(paths: &PartPaths, meta: &Meta) -> io::Result<()> {
    let text = json!({"url": meta.url, "validator": meta.validator, "total": meta.total});
    let mut tmp = paths.meta.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut file = File::create(&tmp)?;
    file.write_all(text.to_string().as_bytes())?;
    file.sync_all()?;
    fs::rename(&tmp, &paths.meta)
}

/// Removes the part file and its sidecar; a missing one is fine.
pub(crate) fn remove_part(paths: &PartPaths) -> io::Result<()> {
    for path in [&paths.part, &paths.meta] {
        match fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// The open part file with the SHA-256 of everything in it so far.
pub(crate) struct PartWriter {
    file: File,
    hasher: Context,
    len: u64,
}

impl PartWriter {
    /// An empty part file (created, or truncated), its folder created if needed.
    pub fn create(paths: &PartPaths) -> io::Result<PartWriter> {
        if let Some(dir) = paths.part.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir)?;
        }
        let file = File::create(&paths.part)?;
        Ok(PartWriter {
            file,
            hasher: Context::new(&SHA256),
            len: 0,
        })
    }

    /// The existing part file, opened to append, its bytes hashed so the final hash
    /// covers the resumed prefix too.
    pub fn resume(paths: &PartPaths) -> io::Result<PartWriter> {
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(&paths.part)?;
        let mut hasher = Context::new(&SHA256);
        let mut buf = vec![0u8; 1 << 20];
        let mut len = 0u64;
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            len += n as u64;
        }
        Ok(PartWriter { file, hasher, len })
    }

    /// Bytes in the file.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Appends and hashes `bytes`.
    pub fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all(bytes)?;
        self.hasher.update(bytes);
        self.len += bytes.len() as u64;
        Ok(())
    }

    /// Flushes the file to the disk (fsync) and returns the SHA-256 of its content.
    pub fn finish(self) -> io::Result<[u8; 32]> {
        self.file.sync_all()?;
        let digest = self.hasher.finish();
        let mut out = [0u8; 32];
        out.copy_from_slice(digest.as_ref());
        Ok(out)
    }
}

/// Renames the complete part file into place (replacing an older file), removes the
/// sidecar, and syncs the folder so the rename survives a power cut.
pub(crate) fn commit(paths: &PartPaths) -> io::Result<()> {
    fs::rename(&paths.part, &paths.file)?;
    let _ = fs::remove_file(&paths.meta);
    #[cfg(unix)]
    if let Some(dir) = paths.file.parent().filter(|d| !d.as_os_str().is_empty())
        && let Ok(dir) = File::open(dir)
    {
        // Best effort: some file systems refuse fsync on a folder.
        let _ = dir.sync_all();
    }
    Ok(())
}

/// Lowercase hex of a digest.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses 64 hex digits (either case) into a SHA-256.
pub fn parse_sha256(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[i * 2..i * 2 + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_hex_round_trip_and_bad_input() {
        let text = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855";
        let parsed = parse_sha256(text).unwrap();
        assert_eq!(hex(&parsed), text.to_lowercase());
        assert!(parse_sha256("abc").is_none());
        assert!(parse_sha256(&"zz".repeat(32)).is_none());
    }

    #[test]
    fn only_validators_fit_for_if_range_are_resumed() {
        assert!(usable_validator("\"dl-5\""));
        assert!(usable_validator("Mon, 01 Jan 2024 00:00:00 GMT"));
        for bad in [
            "",
            "\"",
            "abc",
            "\"a\r\nX: 1\"",
            "\"a\"b\"",
            "W/\"a\"",
            "yesterday",
        ] {
            assert!(!usable_validator(bad), "{bad:?}");
        }
    }

    #[test]
    fn resume_hashes_the_existing_prefix() {
        let dir = std::env::temp_dir().join(format!("netkit-part-{}", std::process::id()));
        let paths = PartPaths::new(&dir.join("sub/file.bin"));
        let mut w = PartWriter::create(&paths).unwrap();
        w.write(b"hello ").unwrap();
        drop(w);
        let mut w = PartWriter::resume(&paths).unwrap();
        assert_eq!(w.len(), 6);
        w.write(b"world").unwrap();
        let digest = w.finish().unwrap();
        assert_eq!(
            digest.as_ref(),
            ring::digest::digest(&SHA256, b"hello world").as_ref()
        );
        commit(&paths).unwrap();
        assert_eq!(fs::read(&paths.file).unwrap(), b"hello world");
        assert!(!paths.part.exists());
        fs::remove_dir_all(&dir).unwrap();
    }
}
