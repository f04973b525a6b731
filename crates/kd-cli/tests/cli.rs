//! The `kd` binary: exit codes, error messages, and one KD step on each compiled-in backend.

use std::process::{Command, Output};

fn kd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kd"))
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .output()
        .expect("kd runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_bad_recipe_key_exits_2_with_the_key_and_a_suggestion() {
    let out = kd(&[
        "check",
        "recipes/fashion_mnist/default.yaml",
        "training_hyperparams.max_epoch=3",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.starts_with("error: "), "{err}");
    assert!(
        err.contains("training_hyperparams.max_epoch") && err.contains("did you mean `max_epochs`"),
        "{err}"
    );
}

#[test]
fn a_missing_recipe_file_is_named() {
    let out = kd(&["check", "recipes/nope.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("recipes/nope.yaml"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_backend_not_compiled_in_names_its_cargo_feature() {
    for (backend, feature) in [("wgpu", "wgpu"), ("tch", "tch"), ("cuda", "cuda")] {
        if cfg!(feature = "wgpu") && backend == "wgpu"
            || cfg!(feature = "tch") && backend == "tch"
            || cfg!(feature = "cuda") && backend == "cuda"
        {
            continue;
        }
        let out = kd(&["bench", "--config", "tiny", "--backend", backend]);
        assert_eq!(out.status.code(), Some(2));
        let err = stderr(&out);
        assert!(err.contains(&format!("--features {feature}")), "{err}");
    }
    let out = kd(&["bench", "--config", "tiny", "--backend", "tpu"]);
    assert!(
        stderr(&out).contains("unknown backend `tpu`"),
        "{}",
        stderr(&out)
    );
}

/// One KD step (teacher forward, student forward and backward, SGD step) on `backend`.
fn one_kd_step(backend: &str) {
    let out = kd(&[
        "bench",
        "--config",
        "tiny",
        "--backend",
        backend,
        "--warmup",
        "0",
        "--steps",
        "1",
        "--runs",
        "1",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("\"config\":\"tiny\""), "{text}");
}

#[cfg(feature = "flex")]
#[test]
fn one_kd_step_on_flex() {
    one_kd_step("flex");
}

#[cfg(feature = "wgpu")]
#[test]
fn one_kd_step_on_wgpu() {
    // Needs a Vulkan driver; on a machine without a GPU, Mesa's lavapipe (mesa-vulkan-drivers).
    let icds = ["/usr/share/vulkan/icd.d", "/etc/vulkan/icd.d"];
    if !icds
        .iter()
        .any(|d| std::fs::read_dir(d).is_ok_and(|mut e| e.next().is_some()))
    {
        eprintln!("no Vulkan driver installed: install mesa-vulkan-drivers to run this test");
        return;
    }
    one_kd_step("wgpu");
}

#[cfg(feature = "tch")]
#[test]
fn one_kd_step_on_tch() {
    one_kd_step("tch");
}
