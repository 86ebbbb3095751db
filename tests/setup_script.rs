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
