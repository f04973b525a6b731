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

// ---------------------------------------------------------------- kd predict

const FIXTURES: &str = "crates/kd-models/tests/fixtures";

/// A fresh folder for one test's files.
fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("kd-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp folder");
    dir
}

/// Tensor `key` of a safetensors fixture (float32) as an npy array.
fn fixture_tensor(file: &str, key: &str) -> kd_data::npy::NpyArray {
    let path = format!("{}/../../{FIXTURES}/{file}", env!("CARGO_MANIFEST_DIR"));
    let bytes = std::fs::read(&path).expect("fixture");
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("safetensors");
    let view = st.tensor(key).expect("key");
    assert_eq!(view.dtype(), safetensors::Dtype::F32);
    let data = view
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    kd_data::npy::NpyArray::new(view.shape().to_vec(), data).expect("shape")
}

/// `max |got - want| / max |want|`.
fn rel_error(got: &[f32], want: &[f32]) -> f32 {
    assert_eq!(got.len(), want.len());
    let scale = want.iter().fold(0.0f32, |m, w| m.max(w.abs()));
    let diff = got
        .iter()
        .zip(want)
        .fold(0.0f32, |m, (g, w)| m.max((g - w).abs()));
    diff / scale
}

/// Runs `kd predict` on the io fixture's input and checks its logits against the fixture's.
fn predict_matches_fixture(arch: &str, params: &[String], weights: &str, io: &str, dir: &str) {
    let dir = scratch(dir);
    let input = dir.join("input.npy");
    let output = dir.join("logits.npy");
    kd_data::npy::write_npy(&input, &fixture_tensor(io, "input")).unwrap();
    let weights = format!("{FIXTURES}/{weights}");
    let mut args = vec!["predict", "--arch", arch, "--arch-params"];
    args.extend(params.iter().map(String::as_str));
    args.extend([
        "--weights",
        &weights,
        "--input",
        input.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
    ]);
    let out = kd(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let got = kd_data::npy::read_npy(&output).unwrap();
    let want = fixture_tensor(io, "logits");
    assert_eq!(got.shape, want.shape);
    let err = rel_error(&got.data, &want.data);
    assert!(err <= 1e-4, "{arch}: max relative error {err}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), want.shape[0], "{stdout}");
    assert!(stdout.contains("input.npy[1]: top-5: "), "{stdout}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// torchvision `ResNet(Bottleneck, [1, 2, 1, 1])` at base width 8 (tools/reference/export_models.py,
/// `resnet_bottleneck_tiny`), through the registry's resnet50 with `layers` and `base_width`.
#[test]
fn predict_matches_torchvision_on_a_tiny_bottleneck_resnet() {
    let params = ["layers=[1,2,1,1]", "base_width=8", "num_classes=10"].map(String::from);
    predict_matches_fixture(
        "resnet50",
        &params,
        "resnet_bottleneck_tiny.pth",
        "resnet_bottleneck_tiny.io.safetensors",
        "resnet",
    );
}

/// timm `Beit` with relative-position bias, layer scale and average pooling
/// (tools/reference/export_beit.py, `rel_ls_avg`), every config field given as an arch param.
#[test]
fn predict_matches_timm_on_a_tiny_beit() {
    let path = format!(
        "{}/../../{FIXTURES}/beit_rel_ls_avg.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let params: Vec<String> = meta["config"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => format!("{k}={s}"),
            other => format!("{k}={other}"),
        })
        .collect();
    assert!(
        params.contains(&"init_values=0.1".to_string()),
        "{params:?}"
    );
    predict_matches_fixture(
        "beit_base_patch16_224",
        &params,
        "beit_rel_ls_avg.safetensors",
        "beit_rel_ls_avg_io.safetensors",
        "beit",
    );
}

#[test]
fn predict_reports_bad_inputs() {
    let dir = scratch("errors");
    let input = dir.join("batch.npy");
    kd_data::npy::write_npy(
        &input,
        &kd_data::npy::NpyArray::new(vec![1, 1, 28, 28], vec![0.0; 784]).unwrap(),
    )
    .unwrap();
    let output = dir.join("out.npy");
    let run = |arch: &str, weights: &str, input: &std::path::Path| {
        kd(&[
            "predict",
            "--arch",
            arch,
            "--weights",
            weights,
            "--input",
            input.to_str().unwrap(),
            "--output",
            output.to_str().unwrap(),
        ])
    };
    let weights = format!("{FIXTURES}/small_cnn_sg.pth");

    let out = run("small_cnn", "nope/missing.pth", &input);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("--weights `nope/missing.pth` does not exist"),
        "{err}"
    );

    let out = run("resnet19", &weights, &input);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("unknown architecture `resnet19`") && err.contains("did you mean `resnet18`"),
        "{err}"
    );

    // numpy.save of numpy.asfortranarray(x): the header says fortran_order True.
    let fortran = dir.join("fortran.npy");
    let mut bytes = kd_data::npy::to_npy_bytes(
        &kd_data::npy::NpyArray::new(vec![1, 1, 28, 28], vec![0.0; 784]).unwrap(),
    );
    let at = bytes
        .windows(5)
        .position(|w| w == b"False")
        .expect("fortran_order");
    bytes.splice(at..at + 5, *b"True ");
    std::fs::write(&fortran, bytes).unwrap();
    let out = run("small_cnn", &weights, &fortran);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("fortran.npy") && err.contains("Fortran order"),
        "{err}"
    );

    let rgb = dir.join("colour.png");
    image::RgbImage::from_pixel(28, 28, image::Rgb([200, 10, 10]))
        .save(&rgb)
        .unwrap();
    let out = run("small_cnn", &weights, &rgb);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("colour.png` is a colour image"), "{err}");

    assert!(!output.exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Two grey PNGs (one square, one that is resized and cropped) through SmallCnn's
/// Fashion-MNIST preprocessing.
#[test]
fn predict_classifies_grey_images() {
    let dir = scratch("images");
    let a = dir.join("shirt.png");
    let b = dir.join("boot.jpg");
    image::GrayImage::from_fn(28, 28, |x, y| image::Luma([((x * 9 + y * 3) % 256) as u8]))
        .save(&a)
        .unwrap();
    image::GrayImage::from_fn(40, 31, |x, y| image::Luma([if x > y { 230 } else { 20 }]))
        .save(&b)
        .unwrap();
    let output = dir.join("logits.npy");
    let weights = format!("{FIXTURES}/small_cnn_sg.pth");
    let out = kd(&[
        "predict",
        "--arch",
        "small_cnn",
        "--weights",
        &weights,
        "--input",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
        "--topk",
        "20",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let logits = kd_data::npy::read_npy(&output).unwrap();
    assert_eq!(logits.shape, [2, 10]);
    assert!(logits.data.iter().all(|v| v.is_finite()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    for (line, name) in lines.iter().zip(["shirt.png", "boot.jpg"]) {
        let (label, ranked) = line.split_once(": top-10: ").expect("top-K clipped to 10");
        assert!(label.ends_with(name), "{line}");
        let probs: Vec<f64> = ranked
            .split(", ")
            .map(|r| {
                r.split_once(" (")
                    .unwrap()
                    .1
                    .trim_end_matches(')')
                    .parse()
                    .unwrap()
            })
            .collect();
        assert_eq!(probs.len(), 10);
        assert!(probs.windows(2).all(|w| w[0] >= w[1]), "{line}");
        let sum: f64 = probs.iter().sum();
        assert!((sum - 1.0).abs() < 1e-3, "{line}: sum {sum}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
