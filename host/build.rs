//! Builds the strategy guests and embeds the built-ins.
//!
//! Every crate under `strategies/` is compiled for `wasm32-unknown-unknown`
//! by a nested cargo (its own target directory, so it never waits on the
//! outer build's lock), turned into a component with `wit-component`, and
//! embedded with `include_bytes!`: the binary needs no files beside it.
//! The fault-injection guests under `tests/guests/` are built the same way for
//! the test suite, which finds them through `TA_TEST_GUESTS_DIR`, and so are
//! the SDK's example strategies under `sdk/examples/` (the suite runs them
//! through `target-allocator check`).
//!
//! `TA_PREBUILT_GUESTS_DIR` skips the nested build and takes `<package>.wasm`
//! components from that directory instead (for offline or IDE builds).

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const WASM_TARGET: &str = "wasm32-unknown-unknown";
const GUEST_PROFILE: &str = "wasm-guest";

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let workspace = manifest_dir.parent().unwrap().to_path_buf();
    let out_dir = PathBuf::from(env::var("OUT_DIR").unwrap());

    for watched in ["sdk", "wit", "strategies", "tests/guests", "Cargo.lock", "Cargo.toml"] {
        println!("cargo:rerun-if-changed={}", workspace.join(watched).display());
    }
    println!("cargo:rerun-if-env-changed=TA_PREBUILT_GUESTS_DIR");
    println!("cargo:rerun-if-env-changed=TA_GUEST_TARGET_DIR");

    let builtins = packages_under(&workspace.join("strategies"));
    let test_guests = packages_under(&workspace.join("tests/guests"));
    // The SDK's example strategies, so the suite can run them through `check`.
    let examples = packages_under(&workspace.join("sdk/examples"));

    let components_dir = out_dir.join("components");
    fs::create_dir_all(&components_dir).unwrap();
    let all: Vec<&String> = builtins.iter().chain(&test_guests).chain(&examples).collect();
    match env::var_os("TA_PREBUILT_GUESTS_DIR") {
        Some(dir) => {
            for package in &all {
                let file = format!("{package}.wasm");
                fs::copy(Path::new(&dir).join(&file), components_dir.join(&file))
                    .unwrap_or_else(|e| panic!("TA_PREBUILT_GUESTS_DIR lacks {file}: {e}"));
            }
        }
        None => build_guests(&workspace, &all, &components_dir),
    }

    let mut generated = String::from(
        "/// Built-in strategy components: (package name, component bytes).\n\
         pub const BUILTIN_COMPONENTS: &[(&str, &[u8])] = &[\n",
    );
    for package in &builtins {
        let path = components_dir.join(format!("{package}.wasm"));
        writeln!(generated, "    ({package:?}, include_bytes!({:?})),", path.display().to_string()).unwrap();
    }
    generated.push_str("];\n");
    fs::write(out_dir.join("builtin_components.rs"), generated).unwrap();
    println!("cargo:rustc-env=TA_TEST_GUESTS_DIR={}", components_dir.display());
}

/// Package names of the crates directly under `dir` (`<dir>/*/Cargo.toml`).
fn packages_under(dir: &Path) -> Vec<String> {
    let mut packages: Vec<String> = fs::read_dir(dir)
        .map(|entries| entries.filter_map(Result::ok).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|entry| fs::read_to_string(entry.path().join("Cargo.toml")).ok())
        .filter_map(|manifest| {
            manifest
                .lines()
                .find_map(|l| l.trim().strip_prefix("name = ").map(|n| n.trim_matches('"').to_string()))
        })
        .collect();
    packages.sort();
    packages
}

fn build_guests(workspace: &Path, packages: &[&String], components_dir: &Path) {
    let target_dir = env::var_os("TA_GUEST_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target").join("wasm-guests"));
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    for package in packages {
        let mut command = Command::new(&cargo);
        command
            .current_dir(workspace)
            .args(["rustc", "--quiet", "-p", package, "--target", WASM_TARGET, "--profile", GUEST_PROFILE])
            .args(["--crate-type", "cdylib", "--target-dir"])
            .arg(&target_dir);
        // Flags and wrappers meant for the host build must not leak into the guest build.
        for var in [
            "CARGO_ENCODED_RUSTFLAGS",
            "RUSTFLAGS",
            "RUSTC_WRAPPER",
            "RUSTC_WORKSPACE_WRAPPER",
            "CARGO_BUILD_TARGET",
        ] {
            command.env_remove(var);
        }
        let status = command.status().unwrap_or_else(|e| panic!("cannot run {cargo}: {e}"));
        if !status.success() {
            panic!(
                "building the {package} guest for {WASM_TARGET} failed. If the target is missing, \
                 run `rustup target add {WASM_TARGET}` (scripts/setup does it)."
            );
        }
        let module_path = target_dir
            .join(WASM_TARGET)
            .join(GUEST_PROFILE)
            .join(format!("{}.wasm", package.replace('-', "_")));
        let module = fs::read(&module_path).unwrap_or_else(|e| panic!("{}: {e}", module_path.display()));
        let component = wit_component::ComponentEncoder::default()
            .module(&module)
            .and_then(|encoder| encoder.validate(true).encode())
            .unwrap_or_else(|e| panic!("turning {package} into a component failed: {e:#}"));
        fs::write(components_dir.join(format!("{package}.wasm")), component).unwrap();
    }
}
