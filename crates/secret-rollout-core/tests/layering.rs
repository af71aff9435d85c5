//! The core library stays a library: no command-line parser, no terminal drawing, no
//! emulator among its normal dependencies. The compiler keeps the CLI out of the core
//! only while the core cannot name those crates, so this asks `cargo tree` itself.

use std::process::Command;

/// Every package in the core's normal dependency tree, by name.
fn normal_dependencies() -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "tree",
            "--offline",
            "--package",
            "secret-rollout-core",
            "--edges",
            "normal",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

#[test]
fn core_has_no_cli_terminal_or_sandbox_dependency() {
    let deps = normal_dependencies();
    // The tree is real: the core does depend on the SDK and on itself.
    assert!(deps.iter().any(|d| d == "secret-rollout-core"), "{deps:?}");
    assert!(deps.iter().any(|d| d == "aws-sdk-ecs"), "{deps:?}");
    for banned in [
        "clap",
        "clap_complete",
        "clap_mangen",
        "indicatif",
        "sandbox",
        "secret-rollout",
    ] {
        assert!(
            !deps.iter().any(|d| d == banned),
            "the core depends on {banned}: move that code to the CLI crate"
        );
    }
}
