//! Workspace hygiene that review would otherwise have to catch: every Rust file says what it is for.

use std::path::{Path, PathBuf};

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

#[test]
fn every_rust_file_starts_with_a_module_doc_comment() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    rust_files(&crates, &mut files);
    assert!(files.len() > 20, "found only {} files under {}", files.len(), crates.display());
    let undocumented: Vec<_> = files
        .iter()
        .filter(|f| !std::fs::read_to_string(f).unwrap().trim_start().starts_with("//!"))
        .map(|f| f.strip_prefix(&crates).unwrap_or(f).display().to_string())
        .collect();
    assert!(undocumented.is_empty(), "files without a `//!` line saying what they are for: {undocumented:?}");
}

/// The tables a migration directory creates.
fn tables(dir: &Path) -> std::collections::BTreeSet<String> {
    let mut found = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let sql = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for rest in sql.split("CREATE TABLE ").skip(1) {
            found.insert(rest.split(|c: char| !(c.is_alphanumeric() || c == '_')).next().unwrap().to_owned());
        }
    }
    found
}

#[test]
fn both_databases_create_the_same_tables_and_architecture_names_each() {
    let store = Path::new(env!("CARGO_MANIFEST_DIR")).join("../store");
    let sqlite = tables(&store.join("migrations"));
    let postgres = tables(&store.join("migrations-postgres"));
    assert!(sqlite.len() > 15, "{sqlite:?}");
    assert_eq!(sqlite, postgres, "the two migration directories drifted apart");
    let architecture =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ARCHITECTURE.md")).unwrap();
    let unnamed: Vec<_> = sqlite.iter().filter(|t| !architecture.contains(&format!("`{t}`"))).collect();
    assert!(unnamed.is_empty(), "tables ARCHITECTURE.md does not name: {unnamed:?}");
}
