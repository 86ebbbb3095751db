//! `tools/setup.sh`'s virtualenv step on the paths a stock Debian takes, run against a temporary
//! folder with a stand-in python3 and apt-get (`VAELAB_SETUP_STEP=venv`, `VAELAB_VENV`,
//! `VAELAB_PYTHON3`, `VAELAB_APT_GET`): nothing on the machine is changed.
//!
//! The stand-in python3 behaves as Debian's: without the python3-venv package (here: the file
//! `root/ensurepip` absent) `import ensurepip` fails, and `-m venv DIR` prints "ensurepip is not
//! available", exits 1 and leaves DIR with a python but no pip. The stand-in apt-get logs its
//! arguments and, for `install python3-venv`, creates `root/ensurepip`.

#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

fn script(path: &Path, body: &str) {
    std::fs::write(path, format!("#!/usr/bin/env bash\n{body}")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A folder with the stand-ins: `python3`, `apt-get`, and the venv pythons they copy.
fn stand_ins() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    // A venv's python whose pip runs, and one without pip.
    script(&root.join("good-python"), "[ \"$1 $2\" = \"-m pip\" ] && { echo 'pip 24.0'; exit 0; }\nexit 0\n");
    script(&root.join("no-pip-python"), "echo '/x/bin/python: No module named pip' >&2\nexit 1\n");
    script(
        &root.join("python3"),
        &format!(
            r#"root={root}
if [ "$1" = -c ]; then [ -e "$root/ensurepip" ]; exit; fi
if [ "$1 $2" = "-m venv" ]; then
  mkdir -p "$3/bin"
  if [ -e "$root/ensurepip" ]; then cp "$root/good-python" "$3/bin/python"; exit 0; fi
  cp "$root/no-pip-python" "$3/bin/python"
  echo "The virtual environment was not created successfully because ensurepip is not available." >&2
  exit 1
fi
exit 2
"#,
            root = root.display()
        ),
    );
    script(
        &root.join("apt-get"),
        &format!(
            "echo \"$*\" >> {root}/apt.log\ncase \"$*\" in *'install'*python3-venv*) touch {root}/ensurepip ;; esac\n",
            root = root.display()
        ),
    );
    (dir, root)
}

fn setup_venv(root: &Path, apt_get: &Path) -> Output {
    std::process::Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/setup.sh"))
        .env("VAELAB_SETUP_STEP", "venv")
        .env("VAELAB_VENV", root.join("venv"))
        .env("VAELAB_PYTHON3", root.join("python3"))
        .env("VAELAB_APT_GET", apt_get)
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn pip_runs(venv: &Path) -> bool {
    std::process::Command::new(venv.join("bin/python"))
        .args(["-m", "pip", "--version"])
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn a_half_made_venv_is_made_again() {
    let (_dir, root) = stand_ins();
    std::fs::write(root.join("ensurepip"), "").unwrap();
    // What Debian's failed `python3 -m venv` leaves: a python without pip.
    let venv = root.join("venv");
    std::fs::create_dir_all(venv.join("bin")).unwrap();
    std::fs::copy(root.join("no-pip-python"), venv.join("bin/python")).unwrap();
    assert!(!pip_runs(&venv));
    let o = setup_venv(&root, &root.join("apt-get"));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(pip_runs(&venv), "{}", stderr(&o));
    assert!(stderr(&o).contains("is broken (its pip does not run): making it again"), "{}", stderr(&o));
    assert!(!root.join("apt.log").exists(), "apt-get ran though python3 had ensurepip");
    // A working venv is left alone, silently.
    let o = setup_venv(&root, &root.join("apt-get"));
    assert!(o.status.success() && o.stderr.is_empty(), "{}", stderr(&o));
}

#[test]
fn without_python3_venv_apt_installs_it_then_the_venv_is_made() {
    let (_dir, root) = stand_ins();
    let o = setup_venv(&root, &root.join("apt-get"));
    assert!(o.status.success(), "{}", stderr(&o));
    let log = std::fs::read_to_string(root.join("apt.log")).unwrap();
    assert_eq!(log, "update -qq\ninstall -y -qq python3-venv\n");
    assert!(pip_runs(&root.join("venv")));
}

#[test]
fn without_python3_venv_or_apt_it_stops_in_one_line_and_leaves_no_venv() {
    let (_dir, root) = stand_ins();
    let o = setup_venv(&root, &root.join("no-such-apt-get"));
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert_eq!(
        err.lines().last().unwrap_or_default(),
        format!(
            "setup: cannot make {}: python3 lacks the venv module (install it, e.g. sudo apt-get install python3-venv, and run again)",
            root.join("venv").display()
        ),
        "{err}"
    );
    assert!(!root.join("venv").exists());
    // apt-get that installs nothing useful: the same refusal, and still no half-made venv.
    script(&root.join("apt-get"), "exit 0\n");
    let o = setup_venv(&root, &root.join("apt-get"));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(!root.join("venv").exists());
}

#[test]
fn a_venv_that_python3_fails_to_make_is_removed() {
    let (_dir, root) = stand_ins();
    // ensurepip imports, but `-m venv` still leaves a python without pip (a broken python3-venv).
    std::fs::write(root.join("ensurepip"), "").unwrap();
    std::fs::copy(root.join("no-pip-python"), root.join("good-python")).unwrap();
    let o = setup_venv(&root, &root.join("apt-get"));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).lines().last().unwrap().ends_with("failed (see above); nothing was left behind"),
        "{}",
        stderr(&o)
    );
    assert!(!root.join("venv").exists());
}

// ---------------------------------------------------------------------------------------------
// Steps 1 and 2 (`VAELAB_SETUP_STEP=rust-src`, `=evcxr`): rust-src, and evcxr_jupyter at the
// pinned version. PATH holds only the stand-ins and links to the few system tools the script and
// the stand-ins use, so no real rustc, rustup or cargo can run; CARGO_HOME is inside the temp dir.
//
// The stand-ins log every call to `calls.log`:
// - `rustc --print sysroot` prints `ROOT/sysroot`;
// - `rustup component add rust-src` creates the sysroot's `lib/rustlib/src/rust/library` when the
//   file `rustup-works` exists (otherwise fails, as offline);
// - `cargo install --list` prints the file `cargo-list` (cargo's record of what it installed);
// - `cargo install ... --version V` does what cargo does: refuses to overwrite a binary it did not
//   install unless `--force`, else writes the binary and records `evcxr_jupyter vV:` in `cargo-list`.

/// The version README.md promises ("`evcxr_jupyter` 0.22.0 with `cargo install --locked`").
const PINNED: &str = "0.22.0";

/// A temp dir with `bin/` (stand-ins + links to system tools) and `cargo-home/`.
fn rust_stand_ins(with_rustup: bool) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let bin = root.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(root.join("cargo-home/bin")).unwrap();
    std::fs::create_dir_all(root.join("sysroot")).unwrap();
    let path = std::env::var_os("PATH").unwrap_or_default();
    for tool in ["bash", "dirname", "grep", "mkdir", "cat", "touch", "chmod", "printf"] {
        let found = std::env::split_paths(&path).map(|d| d.join(tool)).find(|p| p.is_file());
        let found = found.unwrap_or_else(|| panic!("{tool} is not on PATH"));
        std::os::unix::fs::symlink(found, bin.join(tool)).unwrap();
    }
    let r = root.display();
    let log =
        format!("echo \"$(basename \"$0\") $*\" >> {r}/calls.log\n").replace("$(basename \"$0\")", "NAME");
    script(
        &bin.join("rustc"),
        &format!(
            "{}if [ \"$1\" = --version ]; then [ -e {r}/rustc-version ] && cat {r}/rustc-version; exit 0; fi\necho {r}/sysroot\n",
            log.replace("NAME", "rustc")
        ),
    );
    if with_rustup {
        script(
            &bin.join("rustup"),
            &format!(
                "{}[ \"$*\" = 'component add rust-src' ] && [ -e {r}/rustup-works ] || {{ echo 'error: could not download' >&2; exit 1; }}\nmkdir -p {r}/sysroot/lib/rustlib/src/rust/library\n",
                log.replace("NAME", "rustup")
            ),
        );
    }
    script(
        &bin.join("cargo"),
        &format!(
            r#"{log}if [ "$*" = 'install --list' ]; then
  [ -e {r}/cargo-list ] && cat {r}/cargo-list
  exit 0
fi
if [ "$1" = install ]; then
  version=""; force=""; prev=""
  for a in "$@"; do [ "$prev" = --version ] && version=$a; [ "$a" = --force ] && force=1; prev=$a; done
  bin={r}/cargo-home/bin/evcxr_jupyter
  if [ -e "$bin" ] && [ -z "$force" ] && ! grep -q '^evcxr_jupyter ' {r}/cargo-list 2>/dev/null; then
    echo "error: binary \`evcxr_jupyter\` already exists in destination" >&2
    echo "Add --force to overwrite" >&2
    exit 101
  fi
  printf '#!/usr/bin/env bash\necho "evcxr_jupyter $*" >> {r}/calls.log\n' > "$bin"; chmod +x "$bin"
  printf 'evcxr_jupyter v%s:\n    evcxr_jupyter\n' "$version" > {r}/cargo-list
  exit 0
fi
exit 2
"#,
            log = log.replace("NAME", "cargo")
        ),
    );
    (dir, root)
}

fn setup_step(root: &Path, step: &str) -> Output {
    std::process::Command::new(root.join("bin/bash"))
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/setup.sh"))
        .env_clear()
        .env("PATH", root.join("bin"))
        .env("HOME", root)
        .env("CARGO_HOME", root.join("cargo-home"))
        .env("VAELAB_SETUP_STEP", step)
        .output()
        .unwrap()
}

fn calls(root: &Path) -> Vec<String> {
    std::fs::read_to_string(root.join("calls.log")).unwrap_or_default().lines().map(String::from).collect()
}

/// The calls other than `rustc --print sysroot`, `rustc --version` and `cargo install --list`
/// (the checks).
fn actions(root: &Path) -> Vec<String> {
    let checks = ["rustc --print sysroot", "rustc --version", "cargo install --list"];
    calls(root).into_iter().filter(|c| !checks.contains(&c.as_str())).collect()
}

#[test]
fn a_rustc_older_than_the_crates_rust_version_stops_in_one_line() {
    let manifest = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    let need =
        manifest.lines().find_map(|l| l.strip_prefix("rust-version = \"")).unwrap().trim_end_matches('"');
    let (major, minor) = need.split_once('.').unwrap();
    let (major, minor): (u32, u32) = (major.parse().unwrap(), minor.parse().unwrap());
    let (_dir, root) = rust_stand_ins(true);
    std::fs::write(root.join("rustup-works"), "").unwrap();
    // One minor version older: refused before anything is installed.
    std::fs::write(root.join("rustc-version"), format!("rustc {major}.{} (abc 2025-01-01)\n", minor - 1))
        .unwrap();
    let o = setup_step(&root, "rust-src");
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(
        stderr(&o),
        format!(
            "setup: rustc {major}.{} is older than the {major}.{minor} this crate needs (Cargo.toml's rust-version): update it (rustup update stable) and run again\n",
            minor - 1
        )
    );
    assert!(actions(&root).is_empty(), "{:?}", calls(&root));
    // Exactly the version, and a newer major: the step goes on (adds rust-src).
    for version in [format!("{major}.{minor}.0"), format!("{}.0.1", major + 1)] {
        std::fs::write(root.join("rustc-version"), format!("rustc {version} (abc 2026-01-01)\n")).unwrap();
        let o = setup_step(&root, "rust-src");
        assert!(o.status.success(), "rustc {version}: {}", stderr(&o));
    }
}

#[test]
fn missing_rust_src_is_added_with_rustup_then_left_alone() {
    let (_dir, root) = rust_stand_ins(true);
    std::fs::write(root.join("rustup-works"), "").unwrap();
    let o = setup_step(&root, "rust-src");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(actions(&root), ["rustup component add rust-src"]);
    assert_eq!(stderr(&o), "setup: adding the rust-src component\n");
    assert!(root.join("sysroot/lib/rustlib/src/rust/library").is_dir());
    // Present now: nothing runs but the check, nothing is printed.
    let o = setup_step(&root, "rust-src");
    assert!(o.status.success() && o.stderr.is_empty(), "{}", stderr(&o));
    assert_eq!(actions(&root), ["rustup component add rust-src"]);
}

#[test]
fn missing_rust_src_without_rustup_says_in_one_line_how_to_add_it() {
    let how = |root: &Path| {
        format!(
            "setup: cannot find the standard library's source (rust-src) under {}, which evcxr needs: add it (rustup component add rust-src, or with Debian's Rust sudo apt-get install rust-src) and run again\n",
            root.join("sysroot").display()
        )
    };
    // A distribution's Rust: no rustup at all (before: "rustup: command not found", exit 127).
    let (_dir, root) = rust_stand_ins(false);
    let o = setup_step(&root, "rust-src");
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(stderr(&o), how(&root));
    assert!(actions(&root).is_empty(), "{:?}", calls(&root));
    // rustup there but failing (offline): rustup's own message, then the same one line.
    let (_dir, root) = rust_stand_ins(true);
    let o = setup_step(&root, "rust-src");
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(actions(&root), ["rustup component add rust-src"]);
    assert_eq!(
        stderr(&o),
        format!("setup: adding the rust-src component\nerror: could not download\n{}", how(&root))
    );
}

#[test]
fn evcxr_at_another_version_is_reinstalled_at_the_pinned_one() {
    let (_dir, root) = rust_stand_ins(true);
    let bin = root.join("cargo-home/bin/evcxr_jupyter");
    script(&bin, "exit 0\n");
    std::fs::write(root.join("cargo-list"), "evcxr_jupyter v0.21.0:\n    evcxr_jupyter\n").unwrap();
    let o = setup_step(&root, "evcxr");
    assert!(o.status.success(), "{}", stderr(&o));
    let install = format!("cargo install --locked --force evcxr_jupyter --version {PINNED}");
    assert_eq!(actions(&root), std::slice::from_ref(&install));
    assert_eq!(
        stderr(&o),
        format!(
            "setup: installing evcxr_jupyter {PINNED} (cargo install --locked; about 6 minutes on 2 cores)\n"
        )
    );
    assert_eq!(
        std::fs::read_to_string(root.join("cargo-list")).unwrap(),
        format!("evcxr_jupyter v{PINNED}:\n    evcxr_jupyter\n")
    );
    // At the pinned version now: left alone, silently.
    let o = setup_step(&root, "evcxr");
    assert!(o.status.success() && o.stderr.is_empty(), "{}", stderr(&o));
    assert_eq!(actions(&root), [install]);
}

#[test]
fn evcxr_not_installed_by_cargo_is_overwritten_at_the_pinned_version() {
    // A binary cargo has no record of (copied in, or from another CARGO_HOME): cargo refuses to
    // overwrite it without --force, and setup stopped there.
    let (_dir, root) = rust_stand_ins(true);
    script(&root.join("cargo-home/bin/evcxr_jupyter"), "exit 0\n");
    let o = setup_step(&root, "evcxr");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(actions(&root), [format!("cargo install --locked --force evcxr_jupyter --version {PINNED}")]);
    // Missing altogether: installed.
    let (_dir, root) = rust_stand_ins(true);
    let o = setup_step(&root, "evcxr");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(actions(&root), [format!("cargo install --locked --force evcxr_jupyter --version {PINNED}")]);
    assert!(root.join("cargo-home/bin/evcxr_jupyter").is_file());
}

#[test]
fn evcxr_that_cannot_be_installed_stops_in_one_line() {
    let (_dir, root) = rust_stand_ins(true);
    script(
        &root.join("bin/cargo"),
        "[ \"$*\" = 'install --list' ] && exit 0\necho 'error: failed to download' >&2\nexit 101\n",
    );
    let o = setup_step(&root, "evcxr");
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(
        stderr(&o).lines().last().unwrap_or_default(),
        format!(
            "setup: cannot install evcxr_jupyter {PINNED} (see above): run cargo install --locked --force evcxr_jupyter --version {PINNED}, then this again"
        )
    );
}
