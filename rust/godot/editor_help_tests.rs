//! The editor's F1 help, checked on the data Godot receives.
//!
//! With the `register-docs` feature gdext turns every `///` comment on a registered item
//! from Markdown into Godot's BBCode at compile time, and at startup hands one XML
//! document per class to `editor_help_load_xml_from_utf8_chars_and_len`.
//! `godot::docs::__gather_xml_docs()` builds exactly those documents and needs no engine,
//! so these tests read them as the editor would: a brief that is one line, a description
//! whose code examples keep their lines, BBCode whose tags are known and balanced (no
//! literal `[/codeblock]`, no `[url=` inside code), links that point at something that
//! exists, and every registered class, property, method, signal and constant documented.
//!
//! What gdext's conversion implies (checked in gdext 0.5.5's `markdown_converter.rs` and in
//! the XML): the brief is the first paragraph (everything before the first `[br]`), so it
//! is one `///` line followed by a blank `///`; paragraphs are joined by `[br][br]` and a
//! paragraph's line breaks become spaces; a fenced `gdscript` block becomes `[codeblock
//! lang=gdscript]` with its lines kept; backticks become `[code]`; bare URLs outside code
//! become `[url=...]` (GFM autolinks), so example URLs go in code. Godot's own link forms
//! (`[HTTPRequest]`, `[member base_url]`, `[method request]`, `[param id]`) are Markdown
//! shortcut references without a definition, which markdown-rs leaves as literal text, so
//! they reach Godot as links. Examples use spaces: Godot's help strips tabs.

use std::collections::{BTreeMap, BTreeSet};

/// Every `.rs` file of the binding layer (`rust/godot/`, read from disk, subfolders too), so
/// a class or a file added later cannot escape these checks: `(path under rust/godot, text)`.
fn sources() -> Vec<(String, String)> {
    fn walk(dir: &std::path::Path, root: &std::path::Path, out: &mut Vec<(String, String)>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.expect("a readable folder entry").path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(&path, root, out);
            } else if path.extension().is_some_and(|x| x == "rs") {
                let name = path.strip_prefix(root).expect("under root");
                let text = std::fs::read_to_string(&path).expect("readable source");
                out.push((name.display().to_string(), text));
            }
        }
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rust/godot");
    let mut out = Vec::new();
    walk(&root, &root, &mut out);
    out
}

/// Godot class name of every class the sources declare, by Rust struct name: the
/// `rename = ...` of its `#[class(...)]`, else the struct's own name.
fn class_names(sources: &[(String, String)]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (_, source) in sources {
        let mut rename: Option<Option<String>> = None;
        for line in source.lines().map(str::trim) {
            if line.starts_with("#[class(") {
                rename = Some(
                    between(line, 0, "rename = ", ")")
                        .map(|(n, _)| n.split(',').next().unwrap_or(n).trim().to_string()),
                );
            } else if let Some(godot_name) = &rename
                && let Some(rest) = line.strip_prefix("pub struct ")
            {
                let rust: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                out.insert(rust.clone(), godot_name.clone().unwrap_or(rust));
                rename = None;
            }
        }
    }
    out
}

/// Classes a game uses; each must arrive with a brief and a description: every class the
/// sources declare.
fn classes() -> BTreeSet<String> {
    class_names(&sources()).into_values().collect()
}

/// Godot's global `Error` constants the help mentions; `[constant OK]` on a netkit page
/// links to them.
const GLOBAL_CONSTANTS: &[&str] = &[
    "OK",
    "ERR_ALREADY_IN_USE",
    "ERR_BUSY",
    "ERR_CANT_CREATE",
    "ERR_DOES_NOT_EXIST",
    "ERR_INVALID_PARAMETER",
    "ERR_UNAVAILABLE",
    "ERR_UNCONFIGURED",
];

/// A brief is what Godot shows in lists and tooltips: one sentence.
const MAX_BRIEF_CHARS: usize = 160;

/// One documented item of a class, as its XML element carries it.
#[derive(Debug)]
struct Item {
    kind: &'static str,
    name: String,
    /// A constant's value as gdext wrote it.
    value: String,
    params: Vec<String>,
    text: String,
}

#[derive(Debug)]
struct ClassDoc {
    name: String,
    brief: String,
    description: String,
    items: Vec<Item>,
}

impl ClassDoc {
    fn has(&self, kind: &str, name: &str) -> bool {
        self.items.iter().any(|i| i.kind == kind && i.name == name)
    }
}

fn gathered() -> BTreeMap<String, ClassDoc> {
    godot::docs::__gather_xml_docs()
        .map(|xml| parse_class(&xml))
        .map(|doc| (doc.name.clone(), doc))
        .collect()
}

// --- reading gdext's XML ------------------------------------------------------------------

/// The text between `open` (an exact start such as `<brief_description>`) and `close`,
/// searched from `from`; returns it and the index after `close`.
fn between<'a>(s: &'a str, from: usize, open: &str, close: &str) -> Option<(&'a str, usize)> {
    let start = s[from..].find(open)? + from + open.len();
    let end = s[start..].find(close)? + start;
    Some((&s[start..end], end + close.len()))
}

fn attr(tag: &str, name: &str) -> String {
    between(tag, 0, &format!("{name}=\""), "\"")
        .map(|(v, _)| unescape(v))
        .unwrap_or_default()
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

fn parse_class(xml: &str) -> ClassDoc {
    let (class_tag, _) = between(xml, 0, "<class ", ">").expect("a <class> element");
    let (brief, after_brief) =
        between(xml, 0, "<brief_description>", "</brief_description>").expect("a brief");
    let (description, _) =
        between(xml, after_brief, "<description>", "</description>").expect("a description");
    let mut items = Vec::new();
    for kind in ["method", "signal"] {
        let mut at = 0;
        while let Some((element, next)) =
            between(xml, at, &format!("<{kind} "), &format!("</{kind}>"))
        {
            let head = &element[..element.find('>').unwrap_or(element.len())];
            let params = element
                .split("<param ")
                .skip(1)
                .map(|p| attr(p, "name"))
                .collect();
            let text = between(element, 0, "<description>", "</description>")
                .map(|(t, _)| unescape(t.trim()))
                .unwrap_or_default();
            items.push(Item {
                kind,
                name: attr(head, "name"),
                value: String::new(),
                params,
                text,
            });
            at = next;
        }
    }
    for kind in ["constant", "member"] {
        let mut at = 0;
        while let Some((element, next)) =
            between(xml, at, &format!("<{kind} "), &format!("</{kind}>"))
        {
            let (head, text) = element.split_once('>').unwrap_or((element, ""));
            items.push(Item {
                kind,
                name: attr(head, "name"),
                value: attr(head, "value"),
                params: Vec::new(),
                text: unescape(text.trim()),
            });
            at = next;
        }
    }
    ClassDoc {
        name: attr(class_tag, "name"),
        brief: unescape(brief.trim()),
        description: unescape(description.trim()),
        items,
    }
}

// --- what the sources register ------------------------------------------------------------

/// `(class, kind, name)` for every `#[func]`, `#[signal]`, `#[constant]`, `#[var]` and
/// `#[export]` in the sources, read the simple way: the attribute, then the next line
/// that declares a `fn`, `const` or field.
fn registered() -> BTreeSet<(String, &'static str, String)> {
    let sources = sources();
    let names = class_names(&sources);
    let mut out = BTreeSet::new();
    for (file, source) in &sources {
        // The class of an item is the one of the nearest `impl` or `struct` above it (a
        // `#[godot_api(secondary)]` block in another file included).
        let mut class: Option<String> = None;
        let mut pending: Option<&'static str> = None;
        let mut rename: Option<String> = None;
        for line in source.lines().map(str::trim) {
            let declared_type = line
                .strip_prefix("pub struct ")
                .or_else(|| line.strip_prefix("impl "))
                .map(|rest| {
                    let rest = rest.rsplit(" for ").next().unwrap_or(rest);
                    rest.chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect::<String>()
                });
            if let Some(t) = declared_type
                && let Some(godot) = names.get(&t)
            {
                class = Some(godot.clone());
            }
            let class = || {
                class
                    .clone()
                    .unwrap_or_else(|| panic!("{file}: a registered item outside any class"))
            };
            // `#[func(rename = name)]` registers `name`, not the Rust one.
            let renamed = line
                .starts_with("#[")
                .then(|| between(line, 0, "rename = ", ")"))
                .flatten()
                .map(|(n, _)| n.trim().to_string());
            if line.starts_with("#[func") {
                pending = Some("method");
                rename = renamed;
            } else if line.starts_with("#[signal") {
                pending = Some("signal");
            } else if line.starts_with("#[constant") {
                pending = Some("constant");
            } else if line.starts_with("#[var") || line.starts_with("#[export") {
                pending = Some("member");
            } else if let Some(kind) = pending {
                let declared = line
                    .split_once("fn ")
                    .map(|(_, rest)| rest)
                    .or_else(|| line.strip_prefix("const "))
                    .or_else(|| {
                        let field =
                            kind == "member" && !line.starts_with("#[") && !line.starts_with("//");
                        field.then_some(line)
                    });
                if let Some(rest) = declared {
                    let rest = ["pub(super) ", "pub(crate) ", "pub "]
                        .iter()
                        .find_map(|v| rest.strip_prefix(v))
                        .unwrap_or(rest);
                    let name: String = rest
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    out.insert((class(), kind, rename.take().unwrap_or(name)));
                    pending = None;
                }
            }
        }
    }
    out
}

/// The contents of every ```` ```gdscript ```` fence in the sources' `///` comments,
/// with the comment markers removed: exactly what the editor must show, line by line.
fn gdscript_fences() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (file, source) in sources() {
        let mut current: Option<Vec<String>> = None;
        for line in source.lines().map(str::trim_start) {
            let Some(doc) = line.strip_prefix("///") else {
                continue;
            };
            let doc = doc.strip_prefix(' ').unwrap_or(doc);
            match &mut current {
                None if doc.trim() == "```gdscript" => current = Some(Vec::new()),
                Some(lines) if doc.trim() == "```" => {
                    out.push((file.clone(), lines.join("\n")));
                    current = None;
                }
                Some(lines) => lines.push(doc.to_string()),
                None => {}
            }
        }
    }
    out
}

// --- BBCode as Godot's help reads it -----------------------------------------------------

/// Checks one piece of help text as Godot's help reads it (`_add_text_to_rt` in
/// editor/editor_help.cpp) and returns what is wrong with it, in words. Godot shows
/// `[code]` and `[codeblock]` contents raw up to their closing tag, doubles every newline
/// of ordinary text, and prints an unknown or unmatched tag literally.
fn bbcode_problems(class: &ClassDoc, item: Option<&Item>, text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let mut stack: Vec<&str> = Vec::new();
    let mut rest = text;
    loop {
        let open = rest.find('[').unwrap_or(rest.len());
        let plain = &rest[..open];
        for leftover in ["```", "`", "**"] {
            if plain.contains(leftover) {
                problems.push(format!(
                    "Markdown left unconverted ({leftover}) in: {plain}"
                ));
            }
        }
        if plain.contains('\n') {
            problems.push(format!(
                "a line break in running text (Godot doubles it): {plain:?}"
            ));
        }
        if open == rest.len() {
            break;
        }
        let Some(close) = rest[open..].find(']') else {
            problems.push(format!("an unclosed '[' at: {}", &rest[open..]));
            break;
        };
        let tag = &rest[open + 1..open + close];
        rest = &rest[open + close + 1..];
        let (name, arg) = tag.split_once([' ', '=']).unwrap_or((tag, ""));
        match name {
            "code" | "codeblock" => {
                let end_tag = format!("[/{name}]");
                let Some(end) = rest.find(&end_tag) else {
                    problems.push(format!("[{tag}] is never closed"));
                    break;
                };
                let inside = &rest[..end];
                if inside.contains("[url") || inside.contains("[/url]") {
                    problems.push(format!(
                        "a link inside [{name}] shows as literal BBCode: {inside}"
                    ));
                }
                if name == "code" && inside.contains('\n') {
                    problems.push(format!(
                        "a line break inside [code] (a code span split over two lines): {inside:?}"
                    ));
                }
                if name == "codeblock" {
                    if arg != "lang=gdscript" && arg != "lang=text" {
                        problems.push(format!("[{tag}] names no language (```gdscript)"));
                    }
                    // Examples here have several lines (one line belongs in `code`), so
                    // a one-line block is one whose line breaks were lost.
                    if !inside.trim().contains('\n') {
                        problems.push(format!("a code block lost its line breaks: {inside}"));
                    }
                }
                rest = &rest[end + end_tag.len()..];
            }
            "b" | "i" | "s" => stack.push(name),
            "url" => {
                if !(arg.starts_with("http://") || arg.starts_with("https://")) {
                    problems.push(format!("[{tag}] is not a web link"));
                }
                stack.push(name);
            }
            "br" => {}
            _ if name.starts_with('/') => {
                if stack.last() == Some(&&name[1..]) {
                    stack.pop();
                } else {
                    problems.push(format!("[{tag}] closes nothing open"));
                }
            }
            "member" | "method" | "signal" | "constant" | "enum" | "param" => {
                if let Some(why) = dangling_link(class, item, name, arg) {
                    problems.push(format!("[{tag}] {why}"));
                }
            }
            _ if arg.is_empty() && (is_class_name(name) || BUILTIN_TYPES.contains(&name)) => {}
            _ => problems.push(format!("[{tag}] is no BBCode tag or link Godot knows")),
        }
    }
    if !stack.is_empty() {
        problems.push(format!("[{}] is never closed", stack.join("], [")));
    }
    problems
}

/// Godot's lower-case built-in types, which `[int]` links to like a class.
const BUILTIN_TYPES: &[&str] = &["bool", "int", "float"];

fn is_class_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_uppercase())
        && name.chars().all(|c| c.is_ascii_alphanumeric())
}

/// Why a `[member x]`-style link would lead nowhere, if it would.
fn dangling_link(
    class: &ClassDoc,
    item: Option<&Item>,
    kind: &str,
    target: &str,
) -> Option<String> {
    if kind == "param" {
        return match item {
            Some(item) if item.params.iter().any(|p| p == target) => None,
            Some(item) => Some(format!("is not a parameter of {}", item.name)),
            None => Some("outside a method or signal".into()),
        };
    }
    let (owner, name) = match target.rsplit_once('.') {
        Some((owner, name)) => (owner, name),
        None => (class.name.as_str(), target),
    };
    if owner != class.name {
        // Another class: netkit's own are checked by the caller; Godot's are trusted.
        return None;
    }
    let xml_kind = match kind {
        "member" => "member",
        "method" => "method",
        "signal" => "signal",
        "constant" => "constant",
        _ => return None,
    };
    // Godot resolves an unqualified constant in the class first, then in @GlobalScope.
    let global = kind == "constant" && target == name && GLOBAL_CONSTANTS.contains(&name);
    if class.has(xml_kind, name) || global {
        None
    } else {
        Some(format!("points at no {kind} of {}", class.name))
    }
}

// --- the tests ----------------------------------------------------------------------------

#[test]
fn every_class_has_a_one_line_brief_and_a_description() {
    let docs = gathered();
    let mut problems = Vec::new();
    let classes = classes();
    assert!(
        classes.len() >= 9,
        "the source scan found too few classes: {classes:?}"
    );
    for class in &classes {
        let Some(doc) = docs.get(class) else {
            problems.push(format!("{class}: no documentation reaches the editor"));
            continue;
        };
        if doc.brief.is_empty() {
            problems.push(format!("{class}: empty brief"));
        }
        if doc.brief.chars().count() > MAX_BRIEF_CHARS || doc.brief.contains('\n') {
            problems.push(format!(
                "{class}: the brief is not one short line ({} chars): {}",
                doc.brief.chars().count(),
                doc.brief
            ));
        }
        if doc.brief.contains("[codeblock") || doc.brief.contains("[br]") {
            problems.push(format!(
                "{class}: the brief swallowed the description: {}",
                doc.brief
            ));
        }
        if doc.description.is_empty() {
            problems.push(format!("{class}: no description after the brief"));
        }
    }
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}

#[test]
fn help_text_is_well_formed_bbcode_with_working_links() {
    let docs = gathered();
    let mut problems = Vec::new();
    for doc in docs.values() {
        let mut texts: Vec<(String, Option<&Item>, &str)> = vec![
            (format!("{} brief", doc.name), None, &doc.brief),
            (format!("{} description", doc.name), None, &doc.description),
        ];
        for item in &doc.items {
            texts.push((
                format!("{}.{} ({})", doc.name, item.name, item.kind),
                Some(item),
                &item.text,
            ));
        }
        for (place, item, text) in texts {
            for problem in bbcode_problems(doc, item, text) {
                problems.push(format!("{place}: {problem}"));
            }
            // Links into another netkit class must land on something documented there.
            for (kind, target) in links(text) {
                if let Some((owner, name)) = target.rsplit_once('.')
                    && let Some(other) = docs.get(owner)
                    && !other.has(kind, name)
                {
                    problems.push(format!("{place}: [{kind} {target}] points at nothing"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}

/// `(xml kind, target)` of every member/method/signal/constant link in `text`.
fn links(text: &str) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for (kind, prefix) in [
        ("member", "[member "),
        ("method", "[method "),
        ("signal", "[signal "),
        ("constant", "[constant "),
    ] {
        let mut at = 0;
        while let Some((target, next)) = between(text, at, prefix, "]") {
            out.push((kind, target.to_string()));
            at = next;
        }
    }
    out
}

#[test]
fn code_examples_keep_their_lines() {
    let fences = gdscript_fences();
    assert!(
        !fences.is_empty(),
        "the sources should hold ```gdscript examples"
    );
    let docs = gathered();
    let everything: String = docs
        .values()
        .flat_map(|d| {
            [d.brief.clone(), d.description.clone()]
                .into_iter()
                .chain(d.items.iter().map(|i| i.text.clone()))
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut problems = Vec::new();
    for (file, code) in fences {
        let block = format!("[codeblock lang=gdscript]{code}[/codeblock]");
        if !everything.contains(&block) {
            problems.push(format!(
                "{file}: this example does not reach the editor as written:\n{code}"
            ));
        }
    }
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n\n"));
}

#[test]
fn every_registered_item_is_documented() {
    let docs = gathered();
    let mut problems = Vec::new();
    let registered = registered();
    assert!(
        registered.len() > 40,
        "the source scan found too little: {registered:?}"
    );
    // One of each way an item is declared: a plain class, a renamed func, a secondary
    // `#[godot_api]` block in another file, a class in a subfolder's neighbour.
    for (class, kind, name) in [
        ("DTLSMultiplayerPeer", "method", "create_server"),
        ("AgonesSDK", "method", "ready"),
        ("HTTPPool", "method", "request_durable"),
        ("HTTPStream", "signal", "finished"),
    ] {
        assert!(
            registered.contains(&(class.to_string(), kind, name.to_string())),
            "the source scan missed {class}.{name} ({kind})"
        );
    }
    for (class, kind, name) in registered {
        match docs.get(&class) {
            Some(doc)
                if doc
                    .items
                    .iter()
                    .any(|i| i.kind == kind && i.name == name && !i.text.is_empty()) => {}
            _ => problems.push(format!("{class}.{name} ({kind}) has no help text")),
        }
    }
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}

#[test]
fn enum_constants_are_documented_with_their_registered_values() {
    let docs = gathered();
    let mut problems = Vec::new();
    let enums = [
        ("DTLSPeer", super::class_enums::status_constants().to_vec()),
        (
            "HTTPResponse",
            super::class_enums::error_constants().to_vec(),
        ),
        (
            "HTTPStream",
            super::class_enums::stream_mode_constants().to_vec(),
        ),
    ];
    for (class, constants) in enums {
        for (name, value) in constants {
            match docs[class]
                .items
                .iter()
                .find(|i| i.kind == "constant" && i.name == name)
            {
                None => problems.push(format!("{class}.{name} has no help text")),
                Some(item) if item.value != value.to_string() => problems.push(format!(
                    "{class}.{name}: the help says {} but {value} is registered",
                    item.value
                )),
                Some(item) if item.text.is_empty() => {
                    problems.push(format!("{class}.{name} has an empty help text"))
                }
                Some(_) => {}
            }
        }
    }
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}

/// The `[icons]` section of the `netkit.gdextension` that build.rs writes from
/// Cargo.toml: `class -> path under addons/netkit`.
fn gdextension_icons() -> BTreeMap<String, String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("addons/netkit/netkit.gdextension"))
        .expect("build.rs wrote addons/netkit/netkit.gdextension");
    let section = text
        .split("\n[icons]\n")
        .nth(1)
        .expect("netkit.gdextension has an [icons] section");
    section
        .lines()
        .take_while(|l| !l.starts_with('['))
        .filter_map(|l| l.split_once(" = "))
        .map(|(class, path)| (class.trim().to_string(), path.trim_matches('"').to_string()))
        .collect()
}

#[test]
fn every_node_class_has_an_editor_icon() {
    // A node without an icon shows Node's plain circle in the scene tree, the Create
    // dialog and its help page.
    let nodes: BTreeSet<String> = sources()
        .iter()
        .flat_map(|(_, source)| source.lines().map(str::trim))
        .filter(|line| {
            line.starts_with("#[class(")
                && (line.contains("base = Node,") || line.contains("base = Node)"))
        })
        .filter_map(|line| between(line, 0, "rename = ", ")"))
        .map(|(name, _)| name.split(',').next().unwrap_or(name).trim().to_string())
        .collect();
    assert!(
        nodes.contains("AgonesSDK") && nodes.len() >= 3,
        "the source scan found too few node classes: {nodes:?}"
    );
    let icons = gdextension_icons();
    let addon = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("addons/netkit");
    let mut problems = Vec::new();
    for node in &nodes {
        let Some(path) = icons.get(node) else {
            problems.push(format!(
                "{node}: no icon under [icons] in netkit.gdextension"
            ));
            continue;
        };
        match std::fs::read_to_string(addon.join(path)) {
            // Godot's editor icons are 16x16 SVGs; a bigger one is drawn at its own size.
            Ok(svg) if svg.contains(r#"width="16" height="16""#) => {}
            Ok(_) => problems.push(format!("{node}: {path} is not a 16x16 SVG")),
            Err(e) => problems.push(format!("{node}: {path}: {e}")),
        }
    }
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}

#[test]
fn cross_references_are_links_not_code() {
    // `HTTPTask` or `request()` in code font is a dead end; [HTTPTask] and [method request]
    // are links, as on Godot's own pages.
    let docs = gathered();
    let mut problems = Vec::new();
    for doc in docs.values() {
        let texts = [&doc.brief, &doc.description]
            .into_iter()
            .chain(doc.items.iter().map(|i| &i.text));
        for text in texts {
            let mut at = 0;
            while let Some((code, next)) = between(text, at, "[code]", "[/code]") {
                at = next;
                // An unqualified name without `()` may be a key or a field of the same name
                // (an event's `id`), so only calls and qualified names are taken as items.
                let name = code.strip_suffix("()").unwrap_or(code);
                let (owner, item) = match name.split_once('.') {
                    Some((owner, item)) => (docs.get(owner), item),
                    None if name != code => (Some(doc), name),
                    None => (None, name),
                };
                let is_item = owner.is_some_and(|o| {
                    ["method", "signal", "member"]
                        .iter()
                        .any(|kind| o.has(kind, item))
                });
                if docs.contains_key(name) || is_item {
                    problems.push(format!("{}: [code]{code}[/code] is not a link", doc.name));
                }
            }
        }
    }
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}

#[test]
fn property_help_does_not_repeat_its_header() {
    // The help page heads each property with its type and default (`float timeout = 30.0`)
    // from the ClassDB; "(float, default 30.0)" right below it says nothing new. Units,
    // ranges and readable sizes ("16 MiB by default") stay.
    let docs = gathered();
    let mut problems = Vec::new();
    let mut members = 0;
    for doc in docs.values() {
        for item in doc.items.iter().filter(|i| i.kind == "member") {
            members += 1;
            let text = item.text.replace("[code]", "").replace("[/code]", "");
            for ty in ["int", "float", "bool", "String", "Dictionary"] {
                if text.contains(&format!("({ty}, default"))
                    || text.contains(&format!("({ty},[br]"))
                {
                    problems.push(format!(
                        "{}.{}: repeats ({ty}, default ...)",
                        doc.name, item.name
                    ));
                }
            }
            for default in [
                "Default true",
                "Default false",
                "Default 0",
                "Default 1",
                "Default 2",
            ] {
                if text.contains(default) {
                    problems.push(format!(
                        "{}.{}: repeats \"{default}...\"",
                        doc.name, item.name
                    ));
                }
            }
        }
    }
    assert!(members > 40, "too few properties documented: {members}");
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}
