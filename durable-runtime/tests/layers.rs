//! The runtime's rule: lower layers never import upper ones. Each top-level module of
//! `durable-runtime/src` has a layer; every `crate::…` path in a file must name a module of its
//! own layer or a lower one (README, "Architecture").

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The layer of each top-level module, lowest first.
const LAYERS: &[(u8, &[&str])] = &[
    (
        1,
        &[
            "error",
            "flow",
            "hash",
            "history",
            "ids",
            "instance",
            "messages",
            "metrics",
            "payload",
            "retry",
            "time",
            "trace",
            "transient",
        ],
    ),
    (2, &["state"]),
    (3, &["context", "entity", "orchestrator", "task", "private", "schedule"]),
    (4, &["engine"]),
    (5, &["backend"]),
    (6, &["client", "deploy", "worker"]),
];

fn layer_of(module: &str) -> Option<u8> {
    LAYERS.iter().find(|(_, ms)| ms.contains(&module)).map(|(l, _)| *l)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without comments and without its `#[cfg(test)] mod tests`.
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n")
}

/// The top-level modules a piece of code names with `crate::module` or `crate::{a, b}`.
fn imported_modules(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for part in group[..end].split(',') {
                let name: String = part.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                out.push(name);
            }
        } else {
            out.push(rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect());
        }
    }
    out
}

#[test]
fn lower_layers_never_import_upper_ones() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut violations = BTreeMap::new();
    let mut checked = 0;
    for file in files {
        let rel = file.strip_prefix(&src).unwrap();
        let top = rel.components().next().unwrap().as_os_str().to_string_lossy().trim_end_matches(".rs").to_string();
        if top == "lib" {
            continue;
        }
        let Some(own) = layer_of(&top) else {
            panic!("module `{top}` ({}) has no layer: add it to LAYERS and to the README's diagram", rel.display());
        };
        let text = std::fs::read_to_string(&file).unwrap();
        for m in imported_modules(&code(&text)) {
            let Some(target) = layer_of(&m) else { continue };
            checked += 1;
            if target > own {
                violations.insert(format!("{} (layer {own})", rel.display()), format!("crate::{m} (layer {target})"));
            }
        }
    }
    assert!(checked > 100, "the scan found only {checked} imports: is it reading the sources?");
    assert!(violations.is_empty(), "files importing a layer above their own: {violations:#?}");
}

#[test]
fn the_scan_sees_grouped_and_plain_imports() {
    let found = imported_modules("use crate::{state::Snapshot, time};\nlet x = crate::engine::process(a);");
    assert_eq!(found, ["state", "time", "engine"]);
    assert_eq!(imported_modules(&code("// crate::worker in a comment\nuse crate::ids;")), ["ids"]);
}
