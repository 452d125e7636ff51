//! The library crates report through `tracing`, never by printing: no `println!`,
//! `eprintln!`, `print!`, `eprint!` or `dbg!` in their sources. Examples, tests, the CLI and
//! the benchmark binary print; they are not scanned. The one exception is the macros'
//! `DURABLE_MACROS_DEBUG` expansion dump, which prints at compile time on request (marked
//! `// print: allowed` on its line).

use std::path::{Path, PathBuf};

/// The library crates' source folders.
const LIBRARY_SOURCES: &[&str] = &["src", "durable-runtime/src", "durable-http/src", "durable-macros/src"];

const PRINTS: &[&str] = &["println!", "eprintln!", "print!", "eprint!", "dbg!"];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The printing macros used on `line`, outside comments.
fn prints_on(line: &str) -> Vec<&'static str> {
    let code = line.split("//").next().unwrap_or_default();
    PRINTS
        .iter()
        .copied()
        .filter(|m| {
            code.match_indices(m).any(|(i, _)| {
                // `println!` also contains `print!`: count a match only at a word start.
                i == 0 || !code.as_bytes()[i - 1].is_ascii_alphanumeric() && code.as_bytes()[i - 1] != b'_'
            })
        })
        .collect()
}

#[test]
fn the_scan_finds_prints_and_ignores_comments() {
    assert_eq!(prints_on(r#"    eprintln!("x");"#), ["eprintln!"]);
    assert_eq!(prints_on(r#"println!("{}", 1); dbg!(x)"#), ["println!", "dbg!"]);
    assert!(prints_on("/// `vec!`, `println!`, `assert_eq!`").is_empty());
    assert!(prints_on("// println!(\"no\")").is_empty());
    assert!(prints_on("let reprint = 1; my_print!(x);").is_empty());
}

#[test]
fn library_crates_do_not_print() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in LIBRARY_SOURCES {
        rust_files(&root.join(dir), &mut files);
    }
    assert!(files.len() > 50, "the scan sees the sources ({} files)", files.len());
    let mut found = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for (n, line) in text.lines().enumerate() {
            let prints = prints_on(line);
            if !prints.is_empty() && !line.contains("// print: allowed") {
                found.push(format!("{}:{}: {}", f.strip_prefix(root).unwrap().display(), n + 1, line.trim()));
            }
        }
    }
    assert!(found.is_empty(), "library code prints; report through `tracing` instead:\n{}", found.join("\n"));
}
