//! claribi: the clariBI on-prem authentication and API server.
//!
//! docs/architecture.md has the map and the invariants. Every module is private: the binary
//! needs only `main`, and the compiler reports whatever nothing uses.
// Audited exceptions: the scheduling-policy system call in `sched`, handing freed memory
// back to the system after argon2 in `auth::password`, and the TIOCOUTQ ioctl that tells
// the SIEM stream what its receiver has acknowledged (`ops::siem::transport`).
#![deny(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod app;
mod auth;
mod cli;
mod config;
mod data_dir;
mod domain;
mod error;
mod http;
mod ops;
mod sched;
mod store;
mod telemetry;

pub use cli::main;

/// The server's own entry points for the fuzz targets of `fuzz/` (feature `fuzzing` only).
#[cfg(feature = "fuzzing")]
pub mod fuzzing {
    pub use crate::auth::{api_key, token};
    pub use crate::http::fuzz::*;
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::Path;

    /// Every `.rs` file under `dir`.
    fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    /// The top-level modules a text names through `crate::` paths (`crate::a::b` and
    /// `crate::{a, b::c}`).
    fn named(text: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
        let ident = |s: &str| -> String {
            s.trim_start()
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        };
        let mut found = BTreeSet::new();
        for (at, _) in text.match_indices("crate::") {
            let rest = &text[at + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let mut depth = 0;
                let mut start = 0;
                for (i, c) in group.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => {
                            found.insert(ident(&group[start..i]));
                            break;
                        }
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            found.insert(ident(&group[start..i]));
                            start = i + 1;
                        }
                        _ => {}
                    }
                }
            } else {
                found.insert(ident(rest));
            }
        }
        found.retain(|m| modules.contains(m));
        found
    }

    /// docs/architecture.md, invariant 22: no top-level module imports one that imports it
    /// back, however indirectly (unit tests inside a file are left out).
    #[test]
    fn top_level_modules_have_no_cycle() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let modules: BTreeSet<String> = std::fs::read_dir(&src)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter_map(|p| Some(p.file_stem()?.to_str()?.to_string()))
            .filter(|m| m != "lib" && m != "main")
            .collect();
        let mut files = Vec::new();
        sources(&src, &mut files);
        let mut uses: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for file in files {
            let relative = file.strip_prefix(&src).unwrap();
            let top = relative.iter().next().unwrap().to_str().unwrap();
            let top = top.trim_end_matches(".rs").to_string();
            if !modules.contains(&top) {
                continue;
            }
            let text = std::fs::read_to_string(&file).unwrap();
            let code = text.split("#[cfg(test)]\nmod tests").next().unwrap();
            let mut used = named(code, &modules);
            used.remove(&top);
            uses.entry(top).or_default().extend(used);
        }
        // A module on a cycle reaches itself.
        for start in uses.keys() {
            let mut seen = BTreeSet::new();
            let mut stack: Vec<(String, Vec<String>)> = vec![(start.clone(), vec![start.clone()])];
            while let Some((at, trail)) = stack.pop() {
                for next in uses.get(&at).into_iter().flatten() {
                    let mut longer = trail.clone();
                    longer.push(next.clone());
                    assert!(next != start, "import cycle: {}", longer.join(" -> "));
                    if seen.insert(next.clone()) {
                        stack.push((next.clone(), longer));
                    }
                }
            }
        }
        // The direction the architecture page states.
        for (from, to) in [
            ("ops", "http"),
            ("ops", "app"),
            ("http", "app"),
            ("store", "ops"),
        ] {
            assert!(
                !uses.get(from).is_some_and(|u| u.contains(to)),
                "{from} imports {to}"
            );
        }
    }
}
