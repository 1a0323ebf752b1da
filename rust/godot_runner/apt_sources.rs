//! The Debian mirror the host's apt already uses, read from its sources files.

use std::fs;
use std::path::PathBuf;

use crate::locate::GODOT_BIN_ENV;

/// Environment variable overriding the Debian mirror URL used for provisioning, for
/// hosts whose apt configuration has no Debian archive (e.g. Ubuntu).
pub const MIRROR_ENV: &str = "NETKIT_DEBIAN_MIRROR";

/// The Debian archive mirror this host's apt already uses (`$NETKIT_DEBIAN_MIRROR`
/// wins), read from /etc/apt/sources.list and /etc/apt/sources.list.d/ — never a
/// hard-coded host, so provisioning goes wherever the host's own apt traffic goes.
/// Only entries for the main Debian archive count: `deb` type, `main` component, a
/// Debian suite (codename or stable/testing/unstable/..., also with -updates or
/// -backports), no -security suite, and no third-party Signed-By keyring.
pub fn debian_mirror() -> Result<String, String> {
    if let Some(url) = std::env::var(MIRROR_ENV)
        .ok()
        .filter(|v| !v.trim().is_empty())
    {
        return Ok(url.trim().trim_end_matches('/').to_string());
    }
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(dir) = fs::read_dir("/etc/apt/sources.list.d") {
        let mut more: Vec<PathBuf> = dir.filter_map(|e| e.ok().map(|e| e.path())).collect();
        more.sort();
        files.extend(more);
    }
    let mut read = Vec::new();
    for file in &files {
        let Ok(text) = fs::read_to_string(file) else {
            continue;
        };
        let entries = match file.extension().and_then(|e| e.to_str()) {
            Some("sources") => parse_deb822_sources(&text),
            Some("list") => parse_one_line_sources(&text),
            _ => continue,
        };
        read.push(file.display().to_string());
        if let Some(uri) = entries
            .iter()
            .find(|e| e.is_main_debian_archive())
            .map(|e| e.uri.clone())
        {
            return Ok(uri.trim_end_matches('/').to_string());
        }
    }
    Err(format!(
        "found no main Debian archive mirror in the apt configuration (read: {}). Set \
         {MIRROR_ENV}=<URL of a Debian mirror> or {GODOT_BIN_ENV}=/path/to/godot",
        if read.is_empty() {
            "nothing".to_string()
        } else {
            read.join(", ")
        }
    ))
}

/// One `deb` source: URI, suites, components and keyring.
#[derive(Debug, Default, Clone)]
struct AptSource {
    uri: String,
    types: Vec<String>,
    suites: Vec<String>,
    components: Vec<String>,
    signed_by: Option<String>,
    enabled: bool,
}

impl AptSource {
    fn is_main_debian_archive(&self) -> bool {
        const SUITES: [&str; 17] = [
            "buster",
            "bullseye",
            "bookworm",
            "trixie",
            "forky",
            "duke",
            "sid",
            "stable",
            "testing",
            "unstable",
            "oldstable",
            "oldoldstable",
            "experimental",
            "stretch",
            "jessie",
            "rc-buggy",
            "stable-updates",
        ];
        let debian_suite = |suite: &str| {
            if suite.ends_with("-security") || suite.contains("/updates") {
                return false;
            }
            let base = suite
                .trim_end_matches("-updates")
                .trim_end_matches("-backports")
                .trim_end_matches("-proposed-updates");
            SUITES.contains(&base)
        };
        self.enabled
            && self.types.iter().any(|t| t == "deb")
            && (self.uri.starts_with("http://") || self.uri.starts_with("https://"))
            && self.components.iter().any(|c| c == "main")
            && self.suites.iter().any(|s| debian_suite(s))
            && self
                .signed_by
                .as_deref()
                .is_none_or(|k| k.contains("debian-archive"))
    }
}

fn parse_deb822_sources(text: &str) -> Vec<AptSource> {
    let mut out = Vec::new();
    let mut fields: Vec<(String, String)> = Vec::new();
    let flush = |fields: &mut Vec<(String, String)>, out: &mut Vec<AptSource>| {
        if fields.is_empty() {
            return;
        }
        let get = |key: &str| {
            fields
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v.clone())
        };
        let words = |key: &str| -> Vec<String> {
            get(key)
                .map(|v| v.split_whitespace().map(String::from).collect())
                .unwrap_or_default()
        };
        let base = AptSource {
            uri: String::new(),
            types: words("Types"),
            suites: words("Suites"),
            components: words("Components"),
            signed_by: get("Signed-By"),
            enabled: get("Enabled").is_none_or(|v| !v.trim().eq_ignore_ascii_case("no")),
        };
        for uri in words("URIs") {
            out.push(AptSource {
                uri,
                ..base.clone()
            });
        }
        fields.clear();
    };
    for line in text.lines() {
        if line.trim_start().starts_with('#') {
            continue;
        }
        if line.trim().is_empty() {
            flush(&mut fields, &mut out);
        } else if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = fields.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((key, value)) = line.split_once(':') {
            fields.push((key.trim().to_string(), value.trim().to_string()));
        }
    }
    flush(&mut fields, &mut out);
    out
}

fn parse_one_line_sources(text: &str) -> Vec<AptSource> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        let mut rest = line;
        let Some(kind) = rest.split_whitespace().next() else {
            continue;
        };
        rest = rest[kind.len()..].trim_start();
        let mut signed_by = None;
        if rest.starts_with('[') {
            let Some(end) = rest.find(']') else { continue };
            for option in rest[1..end].split_whitespace() {
                if let Some(value) = option.strip_prefix("signed-by=") {
                    signed_by = Some(value.to_string());
                }
            }
            rest = rest[end + 1..].trim_start();
        }
        let words: Vec<&str> = rest.split_whitespace().collect();
        if words.len() < 2 {
            continue;
        }
        out.push(AptSource {
            uri: words[0].to_string(),
            types: vec![kind.to_string()],
            suites: vec![words[1].to_string()],
            components: words[2..].iter().map(|w| w.to_string()).collect(),
            signed_by,
            enabled: true,
        });
    }
    out
}
