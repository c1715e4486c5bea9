//! Every `{{#include path:anchor}}` in the book names an existing file and a non-empty anchored
//! region. mdBook itself renders a missing anchor as an empty block and exits 0, so without this
//! check a renamed anchor would silently empty a chapter.

use std::fs;
use std::path::{Path, PathBuf};

fn markdown_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            markdown_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "md") {
            found.push(path);
        }
    }
}

/// The `path[:anchor]` parts of every include directive in `text`.
fn includes(text: &str) -> Vec<String> {
    let mut specs = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{#include ") {
        let after = &rest[start + "{{#include ".len()..];
        let end = after.find("}}").expect("unterminated {{#include");
        specs.push(after[..end].trim().to_string());
        rest = &after[end..];
    }
    specs
}

/// The lines between `ANCHOR: name` and `ANCHOR_END: name`, without other anchor markers.
fn anchored_region(source: &str, anchor: &str) -> Option<Vec<String>> {
    let is_marker = |line: &str, kind: &str| {
        line.split_once(kind)
            .is_some_and(|(_, name)| name.trim() == anchor)
    };
    let mut lines = source.lines();
    lines.by_ref().find(|l| is_marker(l, "ANCHOR:"))?;
    let mut region = Vec::new();
    for line in lines {
        if is_marker(line, "ANCHOR_END:") {
            return Some(region);
        }
        if !line.contains("ANCHOR:") && !line.contains("ANCHOR_END:") {
            region.push(line.to_string());
        }
    }
    None
}

#[test]
fn every_book_include_resolves_to_a_non_empty_region() {
    let book = Path::new(env!("CARGO_MANIFEST_DIR")).join("book/src");
    let mut pages = Vec::new();
    markdown_files(&book, &mut pages);
    assert!(
        !pages.is_empty(),
        "no markdown pages under {}",
        book.display()
    );
    let mut problems = Vec::new();
    let mut checked = 0;
    for page in &pages {
        let text = fs::read_to_string(page).unwrap();
        for spec in includes(&text) {
            checked += 1;
            let (file, anchor) = match spec.split_once(':') {
                Some((f, a)) => (f, Some(a)),
                None => (spec.as_str(), None),
            };
            let target = page.parent().unwrap().join(file);
            let Ok(source) = fs::read_to_string(&target) else {
                problems.push(format!(
                    "{}: includes a missing file {file}",
                    page.display()
                ));
                continue;
            };
            // Line ranges (`file:10:20`) are not anchors; we only use anchors.
            let Some(anchor) = anchor.filter(|a| !a.starts_with(|c: char| c.is_ascii_digit()))
            else {
                continue;
            };
            match anchored_region(&source, anchor) {
                None => problems.push(format!(
                    "{}: anchor '{anchor}' is not defined (ANCHOR/ANCHOR_END) in {file}",
                    page.display()
                )),
                Some(lines) if lines.iter().all(|l| l.trim().is_empty()) => problems.push(format!(
                    "{}: anchor '{anchor}' in {file} is empty",
                    page.display()
                )),
                Some(_) => {}
            }
        }
    }
    assert!(
        problems.is_empty(),
        "broken book includes:\n{}",
        problems.join("\n")
    );
    assert!(
        checked > 0,
        "the book includes no code at all; expected anchored includes"
    );
}

#[test]
fn the_checker_sees_a_missing_anchor() {
    let source = "a\n// ANCHOR: here\nlet x = 1;\n// ANCHOR_END: here\n";
    assert_eq!(
        anchored_region(source, "here"),
        Some(vec!["let x = 1;".to_string()])
    );
    assert_eq!(anchored_region(source, "there"), None);
    assert_eq!(
        includes("x {{#include ../../src/a.rs:here}} y"),
        vec!["../../src/a.rs:here"]
    );
}
