//! Generic reader for the JSON golden fixtures of the losses with trainable parts (test builds
//! only).
//!
//! `tests/fixtures/{fitnets,vid,crd,review_kd}.json` are written by
//! `tools/reference/loss_learnable.py`. Each tensor is `{"shape": [...], "data": [...]}` (flat,
//! row-major) and module weights are PyTorch state dicts: [`load_state_dict`] puts them into a
//! Burn module by name, transposing `Linear` weights and renaming BatchNorm's `weight`/`bias` to
//! `gamma`/`beta`, as burn-store's PyTorch adapter does.

use std::collections::{BTreeMap, BTreeSet};

use burn::module::{Module, ModuleMapper, Param};
use burn::optim::{GradientsParams, SgdConfig};
use burn::prelude::*;
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// A tensor of the fixture: its shape and its values, flat and row-major.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct TensorJson {
    pub shape: Vec<usize>,
    pub data: Vec<f64>,
}

impl TensorJson {
    /// The values as a float tensor of rank `D` on `device`.
    pub fn float<const D: usize>(&self, device: &Device) -> Tensor<D> {
        assert_eq!(
            self.shape.len(),
            D,
            "fixture tensor of shape {:?}",
            self.shape
        );
        let values: Vec<f32> = self.data.iter().map(|&v| v as f32).collect();
        Tensor::from_data(TensorData::new(values, self.shape.clone()), device)
    }

    /// The values as an integer tensor of rank `D` on `device`.
    pub fn int<const D: usize>(&self, device: &Device) -> Tensor<D, Int> {
        assert_eq!(
            self.shape.len(),
            D,
            "fixture tensor of shape {:?}",
            self.shape
        );
        let values: Vec<i64> = self.data.iter().map(|&v| v as i64).collect();
        Tensor::from_data(TensorData::new(values, self.shape.clone()), device)
    }

    /// The per-sample shape: the shape without its first (batch) dimension.
    pub fn sample_shape(&self) -> Vec<usize> {
        self.shape[1..].to_vec()
    }
}

/// A PyTorch state dict: parameter and buffer names to tensors.
pub(crate) type StateDict = BTreeMap<String, TensorJson>;

/// Parses `tests/fixtures/{name}.json`.
pub(crate) fn load<T: DeserializeOwned>(name: &str) -> T {
    let path = format!("{}/tests/fixtures/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|err| {
        panic!("{path}: {err}; regenerate it with tools/reference/loss_learnable.py")
    });
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("{path} does not parse: {err}"))
}

/// Loads a PyTorch state dict into `module` by name (every float parameter and running state of
/// the module must be in `state`, and every entry of `state` must be used).
///
/// Names are the Burn field paths joined by dots, with BatchNorm's `gamma`/`beta` read from
/// `weight`/`bias`; a `Linear` weight is transposed from PyTorch's `[out, in]` to Burn's
/// `[in, out]`. Loaded parameters keep the gradient requirement of the ones they replace.
pub(crate) fn load_state_dict<M: Module>(module: M, state: &StateDict) -> M {
    let mut loader = StateDictLoader {
        state,
        path: Vec::new(),
        used: BTreeSet::new(),
        missing: Vec::new(),
    };
    let module = module.map(&mut loader);
    assert!(
        loader.missing.is_empty(),
        "parameters missing from the fixture: {:?}",
        loader.missing
    );
    let unused: Vec<&String> = state.keys().filter(|k| !loader.used.contains(*k)).collect();
    assert!(unused.is_empty(), "fixture entries not used: {unused:?}");
    module
}

struct StateDictLoader<'a> {
    state: &'a StateDict,
    path: Vec<(String, String)>,
    used: BTreeSet<String>,
    missing: Vec<String>,
}

impl ModuleMapper for StateDictLoader<'_> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path
            .push((name.to_string(), container_type.to_string()));
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some((name, container)) = self.path.last() else {
            return param;
        };
        let torch_name = match (container.as_str(), name.as_str()) {
            ("Struct:BatchNorm", "gamma") => "weight",
            ("Struct:BatchNorm", "beta") => "bias",
            _ => name.as_str(),
        };
        let transpose = container == "Struct:Linear" && name == "weight";
        let mut names: Vec<&str> = self.path[..self.path.len() - 1]
            .iter()
            .map(|(n, _)| n.as_str())
            .collect();
        names.push(torch_name);
        let key = names.join(".");
        let Some(value) = self.state.get(&key) else {
            self.missing.push(key);
            return param;
        };
        self.used.insert(key.clone());
        let old = param.val();
        let mut new = value.float::<D>(&old.device());
        if transpose {
            new = new.swap_dims(0, 1);
        }
        assert_eq!(new.dims(), old.dims(), "shape of `{key}`");
        let new = new.set_require_grad(old.is_require_grad());
        param.map(|_| new)
    }
}

/// The values of a float tensor.
pub(crate) fn values<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data()
        .try_into_vec::<f32>()
        .expect("a float32 tensor")
        .into_iter()
        .map(f64::from)
        .collect()
}

/// Asserts a scalar is within 1e-5 relative of `want`.
pub(crate) fn assert_scalar_close(got: Tensor<1>, want: f64, what: &str) {
    assert_eq!(got.dims(), [1], "{what}: shape");
    assert_all_close(&values(got), &[want], 0.0, what);
}

/// Asserts a tensor has the fixture tensor's shape and is within 1e-5 relative of it,
/// element-wise; elements near zero get an absolute tolerance of 1e-6 times the largest
/// magnitude of `want` (float32 sums in another order differ by about that much).
pub(crate) fn assert_tensor_close<const D: usize>(got: Tensor<D>, want: &TensorJson, what: &str) {
    assert_eq!(got.dims().to_vec(), want.shape, "{what}: shape");
    let scale = want.data.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert_all_close(&values(got), &want.data, 1e-6 * scale, what);
}

/// Asserts `got` is within 1e-5 relative (`abs` absolute near zero) of `want`, element-wise.
pub(crate) fn assert_all_close(got: &[f64], want: &[f64], abs: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let tol = (1e-5 * w.abs()).max(abs);
        assert!(
            (g - w).abs() <= tol,
            "{what}[{i}]: got {g}, want {w} (diff {:e}, tolerance {tol:e})",
            (g - w).abs()
        );
    }
}

/// One plain SGD step (learning rate 0.1) on `module` from `loss`, as the training loop does
/// for the student; returns the stepped module and how many of its parameters had a gradient.
pub(crate) fn sgd_step<M: Module>(module: M, loss: Tensor<1>) -> (M, usize) {
    let grads = GradientsParams::from_grads(loss.backward(), &module);
    let with_grad = grads.len();
    let mut optim = SgdConfig::new().init();
    (optim.step(0.1, module, grads), with_grad)
}
