//! Records the git commit the binary is built from, for `claribi --version`.

use std::process::Command;

fn main() {
    // A packager's CLARIBI_COMMIT first: a build inside another repository must not report
    // that repository's commit.
    let commit = std::env::var("CLARIBI_COMMIT")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .or_else(git_head);
    println!(
        "cargo:rustc-env=BUILT_FROM_COMMIT={}",
        commit.unwrap_or_else(|| "unknown".to_string())
    );
    println!("cargo:rerun-if-env-changed=CLARIBI_COMMIT");
    // Rebuilt when HEAD moves: a commit or a checkout.
    if std::path::Path::new(".git/HEAD").exists() {
        println!("cargo:rerun-if-changed=.git/HEAD");
    }
    if std::path::Path::new(".git/packed-refs").exists() {
        println!("cargo:rerun-if-changed=.git/packed-refs");
    }
    if let Ok(head) = std::fs::read_to_string(".git/HEAD") {
        if let Some(reference) = head.strip_prefix("ref: ") {
            let path = format!(".git/{}", reference.trim());
            if std::path::Path::new(&path).exists() {
                println!("cargo:rerun-if-changed={path}");
            }
        }
    }
}

fn git_head() -> Option<String> {
    Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}
