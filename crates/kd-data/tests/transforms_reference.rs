//! kd-data's transform operations against torchvision, timm and Pillow, with the explicit
//! parameters of `tests/fixtures/transforms.json`.
//!
//! The fixtures come from `tools/reference/export_transforms.py` (torch 2.9.0, torchvision
//! 0.24.0, timm, Pillow), which, for instance, writes
//!
//! ```python
//! add("crop", F.crop(x, 5, 7, 20, 30), {"top": 5, "left": 7, "height": 20, "width": 30}, ...)
//! out = F.resize(x, size, interpolation=mode, antialias=True).clamp(0, 1)
//! add(f"ra_{name}_{arg}_{filt}", pil_out(fn(pil, arg, fillcolor=FILL, resample=resample)), ...)
//! ```
//!
//! on the 3×37×53 image `transform_input.png`. Crops, flips, erasing, normalisation and
//! Pillow's lookup-table operations must match exactly; resizes, colour adjustments, blends and
//! warps within a mean absolute error of 1/255.

use std::collections::BTreeMap;
use std::path::PathBuf;

use kd_data::functional::{self, CropBox, Resample, Scratch};
use kd_data::{
    AugmentOp, CenterCrop, Interpolation, JitterParams, Normalize, RandAugmentOp, Resize, ResizeTo,
    Transforms, sample_rng,
};
use safetensors::{Dtype, SafeTensors};
use serde_json::Value;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The test image as `C×H×W` levels.
fn input() -> (Vec<u8>, [usize; 3]) {
    let img = image::open(fixtures().join("transform_input.png"))
        .expect("fixture image")
        .into_rgb8();
    let (w, h) = (img.width() as usize, img.height() as usize);
    let hwc = img.into_raw();
    let mut chw = vec![0u8; 3 * h * w];
    for (i, px) in hwc.chunks_exact(3).enumerate() {
        for c in 0..3 {
            chw[c * h * w + i] = px[c];
        }
    }
    (chw, [3, h, w])
}

struct Reference {
    shape: Vec<usize>,
    values: Vec<f32>,
}

fn references() -> (Value, BTreeMap<String, Reference>) {
    let json: Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("transforms.json")).expect("fixture json"),
    )
    .expect("valid json");
    let bytes = std::fs::read(fixtures().join("transforms.safetensors")).expect("fixture tensors");
    let st = SafeTensors::deserialize(&bytes).expect("valid safetensors");
    let mut out = BTreeMap::new();
    for (name, view) in st.tensors() {
        let values = match view.dtype() {
            Dtype::F32 => view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Dtype::U8 => view.data().iter().map(|&v| f32::from(v) / 255.0).collect(),
            other => panic!("{name}: unexpected dtype {other:?}"),
        };
        out.insert(
            name,
            Reference {
                shape: view.shape().to_vec(),
                values,
            },
        );
    }
    (json, out)
}

fn filter(p: &Value) -> Resample {
    match p["filter"].as_str().unwrap() {
        "bilinear" => Resample::Bilinear,
        "bicubic" => Resample::Bicubic,
        other => panic!("unknown filter {other}"),
    }
}

fn usize_of(p: &Value, key: &str) -> usize {
    p[key].as_u64().unwrap_or_else(|| panic!("{key}")) as usize
}

fn f64_of(p: &Value, key: &str) -> f64 {
    p[key].as_f64().unwrap_or_else(|| panic!("{key}"))
}

fn pair(p: &Value, key: &str) -> [usize; 2] {
    let v = p[key].as_array().unwrap();
    [
        v[0].as_u64().unwrap() as usize,
        v[1].as_u64().unwrap() as usize,
    ]
}

fn crop_box(p: &Value) -> CropBox {
    CropBox {
        top: p["top"].as_i64().unwrap() as isize,
        left: p["left"].as_i64().unwrap() as isize,
        height: usize_of(p, "height"),
        width: usize_of(p, "width"),
    }
}

/// Runs case `kind` with parameters `p` on the unit-range image `x` (`shape`), returning the
/// output and its shape.
fn run(
    kind: &str,
    p: &Value,
    levels: &[u8],
    x: &[f32],
    shape: [usize; 3],
) -> (Vec<f32>, [usize; 3]) {
    let mut scratch = Scratch::default();
    let mut dst = Vec::new();
    let mut data = x.to_vec();
    let out_shape = match kind {
        "crop" => functional::crop(x, shape, crop_box(p), &mut dst).unwrap(),
        "center_crop" => {
            let c = CenterCrop {
                height: usize_of(p, "height"),
                width: usize_of(p, "width"),
            };
            functional::crop(x, shape, c.window(shape), &mut dst).unwrap()
        }
        "hflip" => {
            functional::hflip(&mut data, shape).unwrap();
            return (data, shape);
        }
        "resize" => {
            functional::resize(x, shape, pair(p, "size"), filter(p), &mut scratch, &mut dst)
                .unwrap()
        }
        "resized_crop" => functional::resized_crop(
            x,
            shape,
            crop_box(p),
            pair(p, "size"),
            filter(p),
            &mut scratch,
            &mut dst,
        )
        .unwrap(),
        "resize_shorter" => {
            let r = Resize {
                size: ResizeTo::Shorter(usize_of(p, "shorter")),
                interpolation: Interpolation::Bilinear,
            };
            let size = r.target(shape[1], shape[2]);
            functional::resize(x, shape, size, filter(p), &mut scratch, &mut dst).unwrap()
        }
        "brightness" => {
            functional::adjust_brightness(&mut data, f64_of(p, "factor") as f32);
            return (data, shape);
        }
        "contrast" => {
            functional::adjust_contrast(&mut data, shape, f64_of(p, "factor") as f32).unwrap();
            return (data, shape);
        }
        "saturation" => {
            functional::adjust_saturation(&mut data, shape, f64_of(p, "factor") as f32).unwrap();
            return (data, shape);
        }
        "hue" => {
            functional::adjust_hue(&mut data, shape, f64_of(p, "factor") as f32).unwrap();
            return (data, shape);
        }
        "color_jitter" => {
            let order = p["order"].as_array().unwrap();
            let params = JitterParams {
                order: std::array::from_fn(|i| order[i].as_u64().unwrap() as usize),
                brightness: Some(f64_of(p, "brightness") as f32),
                contrast: Some(f64_of(p, "contrast") as f32),
                saturation: Some(f64_of(p, "saturation") as f32),
                hue: Some(f64_of(p, "hue") as f32),
            };
            params.apply(&mut data, shape).unwrap();
            return (data, shape);
        }
        "erase" => {
            let values: Vec<f32> = p["value"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
                .collect();
            functional::erase(&mut data, shape, crop_box(p), &values).unwrap();
            return (data, shape);
        }
        "normalize" => {
            let floats = |key: &str| -> Vec<f32> {
                p[key]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().unwrap() as f32)
                    .collect()
            };
            let t = Transforms::new(vec![
                Normalize {
                    mean: floats("mean"),
                    std: floats("std"),
                }
                .into(),
            ])
            .unwrap();
            let out = t.apply(levels, shape, &mut sample_rng(0, 0, 0)).unwrap();
            return (out, shape);
        }
        ra => {
            let op = match ra {
                "ra_auto_contrast" => AugmentOp::AutoContrast,
                "ra_equalize" => AugmentOp::Equalize,
                "ra_invert" => AugmentOp::Invert,
                "ra_posterize" => AugmentOp::Posterize {
                    bits: usize_of(p, "bits") as u8,
                },
                "ra_solarize" => AugmentOp::Solarize {
                    threshold: usize_of(p, "threshold") as u16,
                },
                "ra_solarize_add" => AugmentOp::SolarizeAdd {
                    add: usize_of(p, "add") as u8,
                    threshold: usize_of(p, "threshold") as u8,
                },
                "ra_color" => AugmentOp::Color {
                    factor: f64_of(p, "factor") as f32,
                },
                "ra_contrast" => AugmentOp::Contrast {
                    factor: f64_of(p, "factor") as f32,
                },
                "ra_brightness" => AugmentOp::Brightness {
                    factor: f64_of(p, "factor") as f32,
                },
                "ra_sharpness" => AugmentOp::Sharpness {
                    factor: f64_of(p, "factor") as f32,
                },
                "ra_rotate" => AugmentOp::Rotate {
                    degrees: f64_of(p, "arg"),
                },
                "ra_shear_x" => AugmentOp::ShearX {
                    factor: f64_of(p, "arg"),
                },
                "ra_shear_y" => AugmentOp::ShearY {
                    factor: f64_of(p, "arg"),
                },
                "ra_translate_x_rel" => AugmentOp::TranslateX {
                    pixels: f64_of(p, "arg") * shape[2] as f64,
                },
                "ra_translate_y_rel" => AugmentOp::TranslateY {
                    pixels: f64_of(p, "arg") * shape[1] as f64,
                },
                other => panic!("unknown case kind {other}"),
            };
            let fill: Vec<f32> = match p.get("fill") {
                Some(f) => f
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().unwrap() as f32 / 255.0)
                    .collect(),
                None => vec![0.5; 3],
            };
            let resample = if p.get("filter").is_some() {
                filter(p)
            } else {
                Resample::Bilinear
            };
            op.apply(&mut data, shape, resample, &fill, &mut dst)
                .unwrap();
            return (data, shape);
        }
    };
    (dst, out_shape)
}

#[test]
fn every_case_matches_its_reference() {
    let (levels, shape) = input();
    let x: Vec<f32> = levels.iter().map(|&v| f32::from(v) / 255.0).collect();
    let (json, refs) = references();
    assert_eq!(
        json["shape"],
        serde_json::json!(shape),
        "fixture image shape"
    );
    let cases = json["cases"].as_object().unwrap();
    assert_eq!(cases.len(), refs.len());
    let mut report = Vec::new();
    let mut failures = Vec::new();
    for (name, case) in cases {
        let kind = case["kind"].as_str().unwrap();
        let (out, out_shape) = run(kind, &case["params"], &levels, &x, shape);
        let reference = &refs[name];
        assert_eq!(out_shape.to_vec(), reference.shape, "{name}: shape");
        assert_eq!(out.len(), reference.values.len(), "{name}: length");
        let diffs: Vec<f32> = out
            .iter()
            .zip(&reference.values)
            .map(|(a, b)| (a - b).abs())
            .collect();
        let max = diffs.iter().copied().fold(0.0f32, f32::max);
        let mae = diffs.iter().sum::<f32>() / diffs.len() as f32;
        report.push(format!(
            "{name}: mae {:.3}/255, max {:.2}/255",
            mae * 255.0,
            max * 255.0
        ));
        let ok = match case["tolerance"].as_str().unwrap() {
            "exact" => max <= 1e-6,
            "mae" => mae <= 1.0 / 255.0,
            other => panic!("{name}: unknown tolerance {other}"),
        };
        if !ok {
            failures.push(name.clone());
        }
    }
    eprintln!("{}", report.join("\n"));
    assert!(
        failures.is_empty(),
        "cases off their reference: {failures:?}"
    );
}

#[test]
fn rand_augment_levels_match_timm() {
    let (json, _) = references();
    let hw = [37usize, 53usize];
    let ops = [
        ("Rotate", RandAugmentOp::Rotate),
        ("Posterize", RandAugmentOp::Posterize),
        ("PosterizeIncreasing", RandAugmentOp::PosterizeIncreasing),
        ("Solarize", RandAugmentOp::Solarize),
        ("SolarizeIncreasing", RandAugmentOp::SolarizeIncreasing),
        ("SolarizeAdd", RandAugmentOp::SolarizeAdd),
        ("Color", RandAugmentOp::Color),
        ("ColorIncreasing", RandAugmentOp::ColorIncreasing),
        ("Contrast", RandAugmentOp::Contrast),
        ("ContrastIncreasing", RandAugmentOp::ContrastIncreasing),
        ("Brightness", RandAugmentOp::Brightness),
        ("BrightnessIncreasing", RandAugmentOp::BrightnessIncreasing),
        ("Sharpness", RandAugmentOp::Sharpness),
        ("SharpnessIncreasing", RandAugmentOp::SharpnessIncreasing),
        ("ShearX", RandAugmentOp::ShearX),
        ("ShearY", RandAugmentOp::ShearY),
        ("TranslateXRel", RandAugmentOp::TranslateXRel),
        ("TranslateYRel", RandAugmentOp::TranslateYRel),
    ];
    let levels = json["rand_augment_levels"].as_object().unwrap();
    assert_eq!(levels.len(), 4);
    for (magnitude, row) in levels {
        let m: f64 = magnitude.parse().unwrap();
        for (name, op) in ops {
            let expected = row[name].as_f64().unwrap_or_else(|| panic!("{name}"));
            let got = match op.at(m, false, hw) {
                AugmentOp::Rotate { degrees } => degrees,
                AugmentOp::Posterize { bits } => f64::from(bits),
                AugmentOp::Solarize { threshold } => f64::from(threshold),
                AugmentOp::SolarizeAdd { add, .. } => f64::from(add),
                AugmentOp::Color { factor }
                | AugmentOp::Contrast { factor }
                | AugmentOp::Brightness { factor }
                | AugmentOp::Sharpness { factor } => f64::from(factor),
                AugmentOp::ShearX { factor } | AugmentOp::ShearY { factor } => factor,
                AugmentOp::TranslateX { pixels } => pixels / hw[1] as f64,
                AugmentOp::TranslateY { pixels } => pixels / hw[0] as f64,
                other => panic!("{other:?}"),
            };
            assert!(
                (got - expected).abs() < 1e-6,
                "{name} at m={m}: {got} vs timm {expected}"
            );
        }
    }
}
