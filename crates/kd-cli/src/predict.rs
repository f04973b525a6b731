//! `kd predict`: a registry network with loaded weights, run in eval mode on a `.npy` batch or
//! on image files, writing the logits as `.npy` and printing the top-K classes of each row.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use burn::prelude::*;
use kd_core::ImageClassifier;
use kd_data::npy::{NpyArray, read_npy, write_npy};
use kd_recipes::schema::CheckpointParams;
use kd_recipes::{Network, registry};
use serde_yaml::{Mapping, Value};

use crate::device::make_device;
use crate::preprocess::{is_image, load_image};

/// What `kd predict` was asked to do.
#[derive(Debug, Clone)]
pub struct PredictArgs {
    /// Registry architecture name.
    pub arch: String,
    /// `key=value` arch params, values parsed as YAML scalars or flow sequences.
    pub arch_params: Vec<String>,
    /// Weights file (`.pth`, `.pt`, `.safetensors` or kd `.bpk`).
    pub weights: PathBuf,
    /// One `.npy` batch, or image files.
    pub inputs: Vec<PathBuf>,
    /// Where the `[N, num_classes]` float32 logits are written.
    pub output: PathBuf,
    /// Classes printed per row.
    pub topk: usize,
    /// Backend name (flex, tch, wgpu, cuda).
    pub backend: String,
    /// Rows per forward pass.
    pub batch_size: usize,
}

/// Parses `key=value` pairs into arch params; each value is read as YAML (`10`, `0.1`,
/// `true`, `null`, `avg`, `[1, 2, 1, 1]`).
pub fn parse_arch_params(pairs: &[String]) -> Result<Mapping> {
    let mut params = Mapping::new();
    for pair in pairs {
        let Some((key, value)) = pair.split_once('=') else {
            bail!("--arch-params `{pair}` is not key=value: write e.g. num_classes=10");
        };
        let (key, value) = (key.trim(), value.trim());
        if key.is_empty() || value.is_empty() {
            bail!("--arch-params `{pair}` needs both a key and a value: write e.g. num_classes=10");
        }
        let parsed: Value = serde_yaml::from_str(value).map_err(|e| {
            anyhow!("--arch-params `{pair}`: `{value}` is not a YAML value ({e}): quote lists as `layers=[1,2,1,1]`")
        })?;
        if params.insert(Value::from(key), parsed).is_some() {
            bail!("--arch-params gives `{key}` twice: keep one");
        }
    }
    Ok(params)
}

/// The top `k` classes of one row of logits with their softmax probabilities, most likely
/// first (ties by class index).
pub fn top_k(logits: &[f32], k: usize) -> Vec<(usize, f64)> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f64> = logits.iter().map(|&l| f64::from(l - max).exp()).collect();
    let sum: f64 = exps.iter().sum();
    let mut ranked: Vec<(usize, f64)> = exps.iter().map(|e| e / sum).enumerate().collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    ranked.truncate(k);
    ranked
}

/// A batch to classify and a name for each of its rows.
struct Batch {
    shape: [usize; 4],
    data: Vec<f32>,
    labels: Vec<String>,
}

/// Reads the inputs: one `.npy` batch used as is, or image files preprocessed for `net`.
fn read_inputs(inputs: &[PathBuf], net: &Network, arch: &str) -> Result<Batch> {
    let npy = |p: &PathBuf| p.extension().and_then(|e| e.to_str()) == Some("npy");
    if inputs.is_empty() {
        bail!("--input needs a .npy batch or image files");
    }
    let channels = net.in_channels();
    if let [path] = inputs
        && npy(path)
    {
        let array = read_npy(path)?;
        array.check_rank(4, path, "pass a float32 batch of shape [N, C, H, W]")?;
        let shape = [
            array.shape[0],
            array.shape[1],
            array.shape[2],
            array.shape[3],
        ];
        if shape[0] == 0 {
            bail!("`{}` holds no rows (shape {shape:?})", path.display());
        }
        if shape[1] != channels {
            bail!(
                "`{}` has {} channels (shape {shape:?}) but `{arch}` takes {channels}: pass a batch of shape [N, {channels}, H, W] or set in_channels in --arch-params",
                path.display(),
                shape[1]
            );
        }
        if let Network::Beit(m) = net {
            let size = m.config.image_size;
            if shape[2] != size || shape[3] != size {
                bail!(
                    "`{}` holds {}x{} images but `{arch}` takes {size}x{size}: resize the batch or set image_size in --arch-params",
                    path.display(),
                    shape[2],
                    shape[3]
                );
            }
        }
        let labels = (0..shape[0])
            .map(|i| format!("{}[{i}]", path.display()))
            .collect();
        return Ok(Batch {
            shape,
            data: array.data,
            labels,
        });
    }
    if let Some(bad) = inputs.iter().find(|p| !is_image(p)) {
        bail!(
            "--input `{}` is neither an image (.png, .jpg, .jpeg) nor a single .npy batch: pass one .npy file or image files",
            bad.display()
        );
    }
    let config = net.pretrained_config();
    let [c, h, w] = config.input_size;
    let mut data = Vec::with_capacity(inputs.len() * c * h * w);
    for path in inputs {
        data.extend(load_image(path, &config)?);
    }
    Ok(Batch {
        shape: [inputs.len(), c, h, w],
        data,
        labels: inputs.iter().map(|p| p.display().to_string()).collect(),
    })
}

/// Runs `net` over `batch` in chunks of `batch_size` rows; returns the logits, row-major.
fn forward(net: &Network, batch: &Batch, batch_size: usize, device: &Device) -> Result<Vec<f32>> {
    let [n, c, h, w] = batch.shape;
    let row = c * h * w;
    let mut logits = Vec::with_capacity(n * net.num_classes());
    for start in (0..n).step_by(batch_size) {
        let rows = batch_size.min(n - start);
        let chunk = batch.data[start * row..(start + rows) * row].to_vec();
        let x = Tensor::<4>::from_data(TensorData::new(chunk, [rows, c, h, w]), device);
        let out = net
            .forward(x)
            .try_into_vec_as::<f32>()
            .map_err(|e| anyhow!("cannot read the logits back from the device: {e:?}"))?;
        logits.extend(out);
    }
    Ok(logits)
}

/// Runs `kd predict` (see the module docs).
pub fn run(args: &PredictArgs) -> Result<()> {
    if args.topk == 0 {
        bail!("--topk must be at least 1");
    }
    if args.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    registry::lookup(&args.arch, "--arch")?;
    if !args.weights.is_file() {
        bail!(
            "--weights `{}` does not exist: check the path (relative paths start at the working folder)",
            args.weights.display()
        );
    }
    let params = parse_arch_params(&args.arch_params)?;
    let device = make_device(&args.backend, None)?;
    let checkpoint = CheckpointParams {
        checkpoint_path: Some(args.weights.clone()),
        ..CheckpointParams::default()
    };
    let net = kd_recipes::build_network(&args.arch, &params, &checkpoint, "model", &device)
        .with_context(|| {
            format!(
                "cannot build `{}` from --arch-params and --weights `{}`",
                args.arch,
                args.weights.display()
            )
        })?
        .valid();
    let batch = read_inputs(&args.inputs, &net, &args.arch)?;
    let start = Instant::now();
    let logits = forward(&net, &batch, args.batch_size, &device)?;
    let seconds = start.elapsed().as_secs_f64();
    let n = batch.shape[0];
    let classes = net.num_classes();
    eprintln!(
        "kd predict: forward of {n} rows on {} in {seconds:.3} s",
        args.backend
    );
    write_output(&args.output, n, classes, logits.clone())?;
    let k = args.topk.min(classes);
    for (label, row) in batch.labels.iter().zip(logits.chunks_exact(classes)) {
        let ranked = top_k(row, k)
            .iter()
            .map(|(class, p)| format!("{class} ({p:.4})"))
            .collect::<Vec<_>>()
            .join(", ");
        println!("{label}: top-{k}: {ranked}");
    }
    Ok(())
}

fn write_output(path: &Path, rows: usize, classes: usize, logits: Vec<f32>) -> Result<()> {
    let array = NpyArray::new(vec![rows, classes], logits)?;
    write_npy(path, &array)?;
    eprintln!(
        "kd predict: wrote logits [{rows}, {classes}] to {}",
        path.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arch_params_are_yaml_values() {
        let pairs: Vec<String> = [
            "num_classes=10",
            "layers=[1, 2, 1, 1]",
            "init_values=0.1",
            "layer_norm_eps=1e-06",
            "global_pool=avg",
            "qkv_bias=true",
            "init_values_off=null",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let p = parse_arch_params(&pairs).unwrap();
        assert_eq!(p["num_classes"], Value::from(10));
        assert_eq!(
            p["layers"],
            serde_yaml::from_str::<Value>("[1, 2, 1, 1]").unwrap()
        );
        assert_eq!(p["init_values"].as_f64(), Some(0.1));
        assert_eq!(p["layer_norm_eps"].as_f64(), Some(1e-6));
        assert_eq!(p["global_pool"], Value::from("avg"));
        assert_eq!(p["qkv_bias"], Value::from(true));
        assert!(p["init_values_off"].is_null());
        for (bad, want) in [
            ("num_classes", "is not key=value"),
            ("=3", "needs both"),
            ("a=[1, 2", "is not a YAML value"),
        ] {
            let e = parse_arch_params(&[bad.to_string()])
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{bad}: {e}");
        }
        let e = parse_arch_params(&["a=1".into(), "a=2".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("`a` twice"), "{e}");
    }

    /// `torch.softmax(torch.tensor([1.0, 3.0, 2.0, 3.0]), 0)` is
    /// `tensor([0.0541, 0.3995, 0.1470, 0.3995])` (torch 2.9.0; ties order by class).
    #[test]
    fn top_k_is_softmax_ranked() {
        let ranked = top_k(&[1.0, 3.0, 2.0, 3.0], 3);
        let classes: Vec<usize> = ranked.iter().map(|r| r.0).collect();
        assert_eq!(classes, [1, 3, 2]);
        for ((_, p), want) in ranked.iter().zip([0.3995, 0.3995, 0.1470]) {
            assert!((p - want).abs() < 1e-4, "{p} vs {want}");
        }
        let all: f64 = top_k(&[1.0, 3.0, 2.0, 3.0], 4).iter().map(|r| r.1).sum();
        assert!((all - 1.0).abs() < 1e-12);
    }
}
