//! The crate's layers, enforced: each layer uses only those below it.
//!
//! ```text
//! base  →  engine  →  plot  →  lessons  →  exercises  →  cli  (→ main.rs)
//! ```
//! A file under `src/LAYER/` may name `crate::OTHER` in its code only when OTHER is LAYER or below
//! it (and writes one `crate::layer::…` path per item, so no grouped `crate::{…}` hides a layer); `clap`
//! appears only under `src/cli/` and in `main.rs`; and the modules one level down
//! (`engine::vae`, `lessons::prior`, …) import each other without cycles in their non-test code, so
//! a reader can read them in an order. Doc comments may link anywhere (a link is not a dependency); code may not.
//!
//! The test reads the source text, so it needs no build of its own. Each rule has a negative test
//! below that feeds it a violating line and expects it to be caught.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers from the bottom up; a layer may use itself and those before it.
const LAYERS: [&str; 6] = ["base", "engine", "plot", "lessons", "exercises", "cli"];

fn rank(layer: &str) -> Option<usize> {
    LAYERS.iter().position(|l| *l == layer)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a line: empty for comment lines, the part before a trailing `//` otherwise.
fn code_of(line: &str) -> &str {
    let t = line.trim_start();
    if t.starts_with("//") {
        return "";
    }
    match line.find("//") {
        // A `//` inside a string literal (a URL) would cut too much; only cut when no quote precedes it.
        Some(i) if !line[..i].contains('"') => &line[..i],
        _ => line,
    }
}

/// Every `crate::a::b` path in `code`, as (a, b) (b empty when the path stops at a).
fn crate_paths(code: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let before = rest[..i].chars().last();
        rest = &rest[i + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue; // `$crate::` in a macro, or part of a longer name
        }
        let ident = |s: &str| s.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect::<String>();
        let first = ident(rest);
        let after = &rest[first.len()..];
        let second = after.strip_prefix("::").map(ident).unwrap_or_default();
        out.push((first, second));
    }
    out
}

/// The module a file belongs to: (layer, second-level module), e.g. `src/engine/vae/model.rs` →
/// ("engine", "vae"); `src/lib.rs` and `src/main.rs` → ("", "").
fn module_of(src: &Path, file: &Path) -> (String, String) {
    let rel = file.strip_prefix(src).expect("under src");
    let parts: Vec<String> =
        rel.iter().map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string()).collect();
    match parts.as_slice() {
        [one] => (if one == "lib" || one == "main" { String::new() } else { one.clone() }, String::new()),
        [layer, file] => (layer.clone(), if file == "mod" { String::new() } else { file.clone() }),
        [layer, sub, ..] => (layer.clone(), sub.clone()),
        [] => unreachable!(),
    }
}

/// Every violation of the layering rules in the given files (path, text).
fn violations(src: &Path, files: &[(PathBuf, String)]) -> Vec<String> {
    let mut bad = Vec::new();
    // Edges between second-level modules, for the cycle check.
    let mut edges: BTreeMap<(String, String), BTreeSet<(String, String)>> = BTreeMap::new();
    for (path, text) in files {
        let (layer, sub) = module_of(src, path);
        let shown = path.strip_prefix(src).unwrap_or(path).display().to_string();
        let in_cli = layer == "cli" || shown == "main.rs";
        // Test code (a `tests.rs`, or what follows `#[cfg(test)]` + `mod`) may reach sideways for a
        // helper: it counts for the layer rule, not for the cycle rule.
        let mut in_test = path.file_name().is_some_and(|f| f == "tests.rs");
        let mut previous = "";
        for (n, line) in text.lines().enumerate() {
            if previous.trim() == "#[cfg(test)]" && line.trim_start().starts_with("mod ")
                || line.trim_start().starts_with("pub(crate) mod tests")
            {
                in_test = true;
            }
            previous = line;
            let code = code_of(line);
            if !in_cli && (code.contains("clap::") || code.contains("#[arg(") || code.contains("#[command("))
            {
                bad.push(format!("src/{shown}:{}: clap outside src/cli/: {}", n + 1, line.trim()));
            }
            if code.contains("crate::{") {
                // `use crate::{lessons::x, …}` would hide the layer from the check below.
                bad.push(format!("src/{shown}:{}: a grouped `crate::{{…}}` path; write one `crate::layer::…` path per item: {}", n + 1, line.trim()));
            }
            let Some(own) = rank(&layer) else { continue };
            for (first, second) in crate_paths(code) {
                let Some(theirs) = rank(&first) else { continue };
                if theirs > own {
                    bad.push(format!(
                        "src/{shown}:{}: {layer} may not use crate::{first} (above it): {}",
                        n + 1,
                        line.trim()
                    ));
                }
                let to = (first.clone(), second.clone());
                let from = (layer.clone(), sub.clone());
                if !in_test && !second.is_empty() && !sub.is_empty() && to != from {
                    edges.entry(from).or_default().insert(to);
                }
            }
        }
    }
    // A cycle among second-level modules: depth-first search with colours.
    fn visit(
        node: &(String, String),
        edges: &BTreeMap<(String, String), BTreeSet<(String, String)>>,
        state: &mut BTreeMap<(String, String), u8>,
        stack: &mut Vec<(String, String)>,
        bad: &mut Vec<String>,
    ) {
        state.insert(node.clone(), 1);
        stack.push(node.clone());
        for next in edges.get(node).into_iter().flatten() {
            match state.get(next) {
                Some(1) => {
                    let start = stack.iter().position(|n| n == next).expect("on the stack");
                    let cycle: Vec<String> =
                        stack[start..].iter().chain([next]).map(|(a, b)| format!("{a}::{b}")).collect();
                    bad.push(format!("import cycle: {}", cycle.join(" → ")));
                }
                Some(_) => {}
                None => visit(next, edges, state, stack, bad),
            }
        }
        stack.pop();
        state.insert(node.clone(), 2);
    }
    let mut state = BTreeMap::new();
    for node in edges.keys() {
        if !state.contains_key(node) {
            visit(node, &edges, &mut state, &mut Vec::new(), &mut bad);
        }
    }
    bad
}

fn crate_sources() -> (PathBuf, Vec<(PathBuf, String)>) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut paths = Vec::new();
    rust_files(&src, &mut paths);
    paths.sort();
    let files = paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("read a source file");
            (p, text)
        })
        .collect();
    (src, files)
}

#[test]
fn every_layer_uses_only_the_layers_below_it_and_nothing_imports_in_a_cycle() {
    let (src, files) = crate_sources();
    assert!(files.len() > 50, "found only {} source files under {}", files.len(), src.display());
    let bad = violations(&src, &files);
    assert!(bad.is_empty(), "{} layering violation(s):\n{}", bad.len(), bad.join("\n"));
}

#[test]
fn the_top_level_of_src_shows_the_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut entries: Vec<String> = std::fs::read_dir(&src)
        .expect("read src")
        .map(|e| e.expect("entry").file_name().to_string_lossy().to_string())
        .filter(|n| n != "lib.rs" && n != "main.rs")
        .collect();
    entries.sort();
    let mut expected: Vec<String> = LAYERS.iter().map(|l| l.to_string()).collect();
    expected.sort();
    assert_eq!(entries, expected, "src/ should hold lib.rs, main.rs and one folder per layer");
}

#[test]
fn no_folder_holds_only_a_tests_file() {
    let (src, files) = crate_sources();
    let mut per_dir: BTreeMap<PathBuf, Vec<String>> = BTreeMap::new();
    for (p, _) in &files {
        let name = p.file_name().expect("file").to_string_lossy().to_string();
        per_dir.entry(p.parent().expect("dir").to_path_buf()).or_default().push(name);
    }
    let lonely: Vec<String> = per_dir
        .iter()
        .filter(|(_, names)| names.len() == 1 && names[0] == "tests.rs")
        .map(|(d, _)| d.strip_prefix(&src).unwrap_or(d).display().to_string())
        .collect();
    assert!(lonely.is_empty(), "folders holding only tests.rs: {lonely:?}");
}

// The rules catch what they should: each negative case is one violating file.

fn check_one(path: &str, text: &str) -> Vec<String> {
    let src = PathBuf::from("/src");
    violations(&src, &[(src.join(path), text.to_string())])
}

#[test]
fn the_engine_naming_a_lesson_is_caught() {
    let bad = check_one("engine/vae/model.rs", "use crate::lessons::prior::elbo_surgery;\n");
    assert_eq!(bad.len(), 1, "{bad:?}");
    assert!(bad[0].contains("engine may not use crate::lessons"), "{bad:?}");
    // The same words in a doc comment are a link, not a dependency.
    assert!(check_one("engine/vae/model.rs", "/// See [`crate::lessons::prior`].\n").is_empty());
}

#[test]
fn a_lesson_naming_the_cli_or_base_naming_the_engine_is_caught() {
    assert_eq!(check_one("lessons/prior/mod.rs", "    let a = crate::cli::bench::x();\n").len(), 1);
    assert_eq!(check_one("base/stats/mod.rs", "use crate::engine::vae::Vae;\n").len(), 1);
    assert_eq!(check_one("engine/eval/mod.rs", "use crate::plot::Figure;\n").len(), 1);
    assert!(
        check_one("lessons/prior/mod.rs", "use crate::plot::Figure; use crate::engine::vae::Vae;\n")
            .is_empty()
    );
}

#[test]
fn a_grouped_crate_path_is_caught() {
    // It could hide an upward import: `use crate::{base::x, lessons::y}` inside the engine.
    let bad = check_one("engine/vae/model.rs", "use crate::{base::error::Result, lessons::prior::x};\n");
    assert!(bad.iter().any(|b| b.contains("grouped")), "{bad:?}");
}

#[test]
fn clap_outside_the_cli_is_caught() {
    assert_eq!(check_one("lessons/channel/mod.rs", "#[derive(clap::Args)]\n").len(), 1);
    assert!(check_one("cli/bench.rs", "#[derive(clap::Args)]\n").is_empty());
}

#[test]
fn a_cycle_between_modules_is_caught() {
    let src = PathBuf::from("/src");
    let files = vec![
        (src.join("engine/vae/model.rs"), "use crate::engine::eval::x;\n".to_string()),
        (src.join("engine/eval/mod.rs"), "use crate::engine::train::y;\n".to_string()),
        (src.join("engine/train/mod.rs"), "use crate::engine::vae::z;\n".to_string()),
    ];
    let bad = violations(&src, &files);
    assert_eq!(bad.len(), 1, "{bad:?}");
    assert!(bad[0].starts_with("import cycle: engine::"), "{bad:?}");
}
