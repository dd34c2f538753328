//! Every relative link in `README.md`, `docs/` and the test suites' READMEs
//! points at a file that exists and, with a `#fragment`, at a heading that
//! exists there (GitHub's heading ids: lower case, punctuation dropped,
//! spaces as `-`, `-1`, `-2` for repeats). Links to other sites are not
//! fetched. Code (fenced blocks and `inline code`) is skipped.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Markdown files checked.
fn documents() -> Vec<PathBuf> {
    let root = root();
    let mut files = vec![root.join("README.md")];
    let mut dirs = vec![root.join("docs")];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                files.push(path);
            }
        }
    }
    for suite in ["e2e", "browser", "cluster", "fault"] {
        let readme = root.join("tests").join(suite).join("README.md");
        if readme.exists() {
            files.push(readme);
        }
    }
    files.sort();
    files
}

/// The text of a Markdown file without fenced code blocks and inline code.
fn prose(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut fenced = false;
    for (n, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        let mut kept = String::new();
        let mut in_code = false;
        for c in line.chars() {
            if c == '`' {
                in_code = !in_code;
            } else if !in_code {
                kept.push(c);
            }
        }
        out.push((n + 1, kept));
    }
    out
}

/// GitHub's id of a heading's text.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The ids of a file's headings.
fn anchors(text: &str) -> HashSet<String> {
    let mut seen = HashSet::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced || !line.starts_with('#') {
            continue;
        }
        let heading = line.trim_start_matches('#');
        if !heading.starts_with(' ') {
            continue;
        }
        let base = slug(&heading.replace('`', ""));
        let mut id = base.clone();
        let mut n = 1;
        while seen.contains(&id) {
            id = format!("{base}-{n}");
            n += 1;
        }
        seen.insert(id);
    }
    seen
}

/// The targets of the inline links `[text](target)` of a line.
fn targets(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find("](") {
        let after = &rest[i + 2..];
        let Some(end) = after.find(')') else {
            break;
        };
        let target = after[..end].split_whitespace().next().unwrap_or("");
        out.push(target.trim_matches(['<', '>']).to_string());
        rest = &after[end..];
    }
    out
}

fn check(file: &Path, problems: &mut Vec<String>) {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let shown = file
        .strip_prefix(root())
        .unwrap_or(file)
        .display()
        .to_string();
    for (n, line) in prose(&text) {
        for target in targets(&line) {
            if target.is_empty()
                || target.contains("://")
                || target.starts_with("mailto:")
                || target.starts_with('<')
            {
                continue;
            }
            let (path, fragment) = match target.split_once('#') {
                Some((p, f)) => (p, Some(f)),
                None => (target.as_str(), None),
            };
            let resolved = if path.is_empty() {
                file.to_path_buf()
            } else {
                file.parent().unwrap_or(Path::new(".")).join(path)
            };
            if !resolved.exists() {
                problems.push(format!("{shown}:{n}: {target}: no such file"));
                continue;
            }
            let Some(fragment) = fragment else {
                continue;
            };
            if resolved.extension().is_none_or(|e| e != "md") {
                continue;
            }
            let linked = std::fs::read_to_string(&resolved).unwrap_or_default();
            if !anchors(&linked).contains(fragment) {
                problems.push(format!("{shown}:{n}: {target}: no heading with that id"));
            }
        }
    }
}

#[test]
fn relative_links_in_the_docs_resolve() {
    let files = documents();
    assert!(files.len() > 5, "the docs were not found: {files:?}");
    let mut problems = Vec::new();
    for file in &files {
        check(file, &mut problems);
    }
    assert!(
        problems.is_empty(),
        "broken links:\n{}",
        problems.join("\n")
    );
}

#[test]
fn heading_ids_follow_github() {
    assert_eq!(
        slug("Which revision features work through the gateway"),
        "which-revision-features-work-through-the-gateway"
    );
    assert_eq!(slug("1. Requirements"), "1-requirements");
    assert_eq!(slug("Tasks (SEP-2663)"), "tasks-sep-2663");
    let ids = anchors("# A\n## A\n```\n# not a heading\n```\n## `code` B\n");
    assert!(ids.contains("a") && ids.contains("a-1") && ids.contains("code-b"));
    assert!(!ids.contains("not-a-heading"));
}

#[test]
fn a_broken_link_is_found() {
    let dir = std::env::temp_dir().join(format!("mcpgate-doc-links-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("a.md");
    std::fs::write(
        &file,
        "# Top\n[ok](#top) [bad](#nowhere) [gone](missing.md) `[code](skipped.md)` [web](https://x.y/z)\n",
    )
    .unwrap();
    let mut problems = Vec::new();
    check(&file, &mut problems);
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].ends_with("#nowhere: no heading with that id"));
    assert!(problems[1].ends_with("missing.md: no such file"));
}
