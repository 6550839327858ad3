//! Which source files import which (`use` lines at the top level of each file, resolved to the
//! file of the module they name), and the loops among them: the project keeps none, so a
//! module's parent never imports from a child that imports the parent back (the test below).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each crate's name as code spells it, and its source folder.
const CRATES: [(&str, &str); 10] = [
    ("wbc_explorer", "src"),
    ("wbc_core", "crates/core/src"),
    ("wbc_nets", "crates/nets/src"),
    ("wbc_messages", "crates/messages/src"),
    ("wbc_worker", "crates/worker/src"),
    ("wbc_lab", "crates/cli/src"),
    ("wbc_hostile", "crates/hostile/src"),
    ("wbc_serve", "crates/serve/src"),
    ("xtask", "xtask/src"),
    ("wbc_e2e", "tests/e2e/src"),
];

/// The file of the longest module path under `base` that `parts` names.
fn module_file(base: &Path, parts: &[&str]) -> Option<PathBuf> {
    let mut found = None;
    for n in 0..=parts.len() {
        let dir: PathBuf = parts[..n].iter().fold(base.to_path_buf(), |d, p| d.join(p));
        let candidates = if n == 0 {
            vec![base.join("lib.rs"), base.join("main.rs")]
        } else {
            vec![dir.with_extension("rs"), dir.join("mod.rs")]
        };
        if let Some(f) = candidates.into_iter().find(|c| c.is_file()) {
            found = Some(f);
        }
    }
    found
}

/// The module path of a file under its crate's source folder.
fn module_of(file: &Path, base: &Path) -> Vec<String> {
    let rel = file.strip_prefix(base).unwrap_or(file).with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// file → the files it imports from, for every crate under `root`.
pub fn graph(root: &Path) -> BTreeMap<PathBuf, BTreeSet<PathBuf>> {
    let bases: BTreeMap<&str, PathBuf> = CRATES.iter().map(|(n, d)| (*n, root.join(d))).collect();
    let mut edges: BTreeMap<PathBuf, BTreeSet<PathBuf>> = BTreeMap::new();
    for base in bases.values() {
        let mut files = Vec::new();
        rust_files(base, &mut files);
        for file in files {
            let me = module_of(&file, base);
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            for line in text.lines() {
                let Some(rest) = line
                    .strip_prefix("use ")
                    .or_else(|| line.split_once(") use ").map(|(_, r)| r))
                    .or_else(|| line.strip_prefix("pub use "))
                else {
                    continue;
                };
                let path = rest.split(['{', ';']).next().unwrap_or("");
                let parts: Vec<&str> = path.split("::").filter(|p| !p.is_empty()).collect();
                let Some(first) = parts.first() else { continue };
                let target = match *first {
                    "crate" => module_file(base, &parts[1..]),
                    "self" => {
                        let mut p: Vec<&str> = me.iter().map(String::as_str).collect();
                        p.extend(&parts[1..]);
                        module_file(base, &p)
                    }
                    "super" => {
                        let supers = parts.iter().take_while(|p| **p == "super").count();
                        let keep = me.len().saturating_sub(supers);
                        let mut p: Vec<&str> = me[..keep].iter().map(String::as_str).collect();
                        p.extend(&parts[supers..]);
                        module_file(base, &p)
                    }
                    name if bases.contains_key(name) => module_file(&bases[name], &parts[1..]),
                    child => {
                        let dir = me.iter().fold(base.clone(), |d, p| d.join(p)).join(child);
                        if dir.with_extension("rs").is_file() || dir.join("mod.rs").is_file() {
                            let mut p: Vec<&str> = me.iter().map(String::as_str).collect();
                            p.extend(&parts);
                            module_file(base, &p)
                        } else {
                            None
                        }
                    }
                };
                if let Some(t) = target.filter(|t| *t != file) {
                    edges.entry(file.clone()).or_default().insert(t);
                }
            }
        }
    }
    edges
}

/// The loops of the graph (strongly connected groups of more than one file).
pub fn loops(edges: &BTreeMap<PathBuf, BTreeSet<PathBuf>>) -> Vec<Vec<PathBuf>> {
    // Files that reach each other both ways are in one loop.
    let reach = |from: &PathBuf| {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.clone()];
        while let Some(f) = stack.pop() {
            for t in edges.get(&f).into_iter().flatten() {
                if seen.insert(t.clone()) {
                    stack.push(t.clone());
                }
            }
        }
        seen
    };
    let reached: BTreeMap<&PathBuf, BTreeSet<PathBuf>> =
        edges.keys().map(|f| (f, reach(f))).collect();
    let mut loops: Vec<Vec<PathBuf>> = Vec::new();
    let mut placed = BTreeSet::new();
    for (f, r) in &reached {
        if placed.contains(*f) || !r.contains(*f) {
            continue;
        }
        let group: Vec<PathBuf> = r
            .iter()
            .filter(|g| reached.get(g).is_some_and(|back| back.contains(*f)))
            .cloned()
            .collect();
        placed.extend(group.iter().cloned());
        loops.push(group);
    }
    loops
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_two_files_import_each_other() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let edges = graph(&root);
        assert!(
            edges.len() > 50,
            "only {} files import anything",
            edges.len()
        );
        let found = loops(&edges);
        assert!(
            found.is_empty(),
            "files that import each other, round a loop: {found:#?}"
        );
    }

    #[test]
    fn a_loop_is_found() {
        let (a, b, c) = (PathBuf::from("a"), PathBuf::from("b"), PathBuf::from("c"));
        let mut edges = BTreeMap::new();
        edges.insert(a.clone(), BTreeSet::from([b.clone()]));
        edges.insert(b.clone(), BTreeSet::from([c.clone()]));
        edges.insert(c.clone(), BTreeSet::from([a.clone()]));
        assert_eq!(loops(&edges), vec![vec![a, b, c]]);
    }
}
