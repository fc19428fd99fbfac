//! Runs `deploy/build-image.sh` on a real dynamically linked Rust binary (this test's own
//! executable, standing in for `valet`: building `valet --release` takes 10+ minutes here) and
//! checks the OCI image it writes: config (entrypoint, non-root user), every library `ldd`
//! names present in the layer, and, as root, that the binary starts inside the unpacked root
//! filesystem as uid 65532. Skipped when umoci is not installed.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn have(tool: &str) -> bool {
    Command::new(tool).arg("--version").output().is_ok_and(|o| o.status.success())
}

fn blob(layout: &Path, digest: &str) -> Value {
    let hex = digest.strip_prefix("sha256:").unwrap();
    serde_json::from_slice(&std::fs::read(layout.join("blobs/sha256").join(hex)).unwrap()).unwrap()
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn build_image_script_makes_a_runnable_non_root_image() {
    if !have("umoci") {
        println!("skipped: umoci is not installed (apt-get install umoci)");
        return;
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("build-image.sh");
    let binary = std::env::current_exe().unwrap();
    let work = std::env::temp_dir().join(format!("valet-image-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    run(Command::new("bash").arg(&script).arg(&binary).arg(&work).arg("test"));

    let layout = work.join("oci");
    let index: Value = serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let manifest_ref = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == "test")
        .expect("tag test in index.json");
    let manifest = blob(&layout, manifest_ref["digest"].as_str().unwrap());
    let config = blob(&layout, manifest["config"]["digest"].as_str().unwrap());
    assert_eq!(config["config"]["User"], "65532:65532");
    assert_eq!(config["config"]["Entrypoint"], serde_json::json!(["/usr/local/bin/valet", "serve"]));
    assert_eq!(config["os"], "linux");
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 1, "one layer, no base image");

    let is_root = run(Command::new("id").arg("-u")).trim() == "0";
    let bundle = work.join("unpacked");
    let rootless: &[&str] = if is_root { &[] } else { &["--rootless"] };
    run(Command::new("umoci")
        .arg("unpack")
        .args(rootless)
        .arg("--image")
        .arg(format!("{}:test", layout.display()))
        .arg(&bundle));
    let rootfs = bundle.join("rootfs");
    assert!(rootfs.join("usr/local/bin/valet").is_file());
    let ldd = run(Command::new("ldd").arg(&binary));
    for lib in ldd.split_whitespace().filter(|w| w.starts_with('/')) {
        assert!(rootfs.join(lib.trim_start_matches('/')).is_file(), "{lib} is missing from the image");
    }

    if is_root && have("chroot") {
        // The entrypoint's own argument ("serve") becomes a test-name filter for this harness.
        let listed = run(Command::new("chroot").arg("--userspec=65532:65532").arg(&rootfs).args([
            "/usr/local/bin/valet",
            "serve",
            "--list",
        ]));
        println!("ran in the image as 65532: {}", listed.trim());
    } else {
        println!("not root: the image was checked, not run");
    }
    let _ = std::fs::remove_dir_all(&work);
}
