//! Optimizers with PyTorch's update rules and SuperGradients' defaults.
//!
//! SGD, Adam, AdamW, RMSprop and Lion are Burn's, whose updates equal PyTorch's (and, for Lion,
//! SuperGradients') once Burn's defaults are replaced (momentum dampening 0, epsilon 1e-8);
//! LAMB is [`crate::Lamb`]. `tests/fixtures/optimizers.json` holds five steps of each, computed
//! with `torch.optim` (`tools/reference/optimizers.py`).

use burn::module::{Module, ModuleVisitor, Param, ParamGroup};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{
    AdamConfig, AdamWConfig, GradientsParams, LionConfig, ModuleOptimizer, Optimizer,
    RmsPropConfig, SgdConfig,
};
use burn::prelude::*;
use burn::store::RecordError;
use burn::tensor::Bytes;

use crate::{Lamb, TrainError, grads};

/// Which optimizer (SuperGradients' `optimizer` names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptimizerKind {
    /// `SGD`: PyTorch's SGD (dampening 0, coupled L2 weight decay).
    Sgd,
    /// `Adam`: PyTorch's Adam (coupled L2 weight decay).
    Adam,
    /// `AdamW`: PyTorch's AdamW (decoupled weight decay).
    AdamW,
    /// `RMSprop`: PyTorch's RMSprop (coupled L2 weight decay, optional centring and momentum).
    RmsProp,
    /// `Lamb`: SuperGradients' LAMB ([`crate::Lamb`]), with global gradient-norm clipping.
    Lamb,
    /// `Lion`: SuperGradients' Lion (Chen et al. 2023), decoupled weight decay.
    Lion,
}

impl OptimizerKind {
    /// The accepted names, as written in recipes.
    pub const NAMES: [&'static str; 6] = ["SGD", "Adam", "AdamW", "RMSprop", "Lamb", "Lion"];

    /// Parses a recipe name, case-insensitively.
    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "sgd" => Some(Self::Sgd),
            "adam" => Some(Self::Adam),
            "adamw" => Some(Self::AdamW),
            "rmsprop" => Some(Self::RmsProp),
            "lamb" => Some(Self::Lamb),
            "lion" => Some(Self::Lion),
            _ => None,
        }
    }
}

/// An optimizer and its hyper-parameters (`optimizer` + `optimizer_params`).
#[derive(Debug, Clone, PartialEq)]
pub struct OptimizerConfig {
    /// The algorithm.
    pub kind: OptimizerKind,
    /// SGD and RMSprop momentum.
    pub momentum: f64,
    /// SGD dampening (PyTorch default 0; Burn's own default is 0.1).
    pub dampening: f64,
    /// SGD Nesterov momentum.
    pub nesterov: bool,
    /// Weight decay: coupled L2 for SGD, Adam and RMSprop; decoupled for AdamW and Lion; the
    /// `λ` inside LAMB's trust ratio.
    pub weight_decay: f64,
    /// Adam, AdamW, LAMB and Lion betas.
    pub betas: (f64, f64),
    /// Epsilon of Adam, AdamW, RMSprop and LAMB (PyTorch's 1e-8; LAMB's 1e-6).
    pub eps: f64,
    /// RMSprop smoothing constant `alpha` (PyTorch default 0.99).
    pub alpha: f64,
    /// RMSprop: normalise by the centred second moment.
    pub centered: bool,
    /// LAMB: the global gradient norm is clipped to this before each step (default 1.0).
    pub max_grad_norm: f64,
    /// LAMB: clip the trust ratio at 1.
    pub trust_clip: bool,
    /// LAMB: apply the trust ratio also to parameters without weight decay.
    pub always_adapt: bool,
    /// LAMB: bias-correct the moments (default true).
    pub bias_correction: bool,
    /// LAMB: scale the gradient by `1 − β1` in the first moment (default true).
    pub grad_averaging: bool,
}

impl OptimizerConfig {
    /// The defaults SuperGradients uses for `kind`: SG's merged-in defaults for SGD
    /// `{momentum 0.9, weight_decay 1e-4}`, Adam `{weight_decay 1e-4}` and RMSprop
    /// `{momentum 0.9, weight_decay 1e-4}` over PyTorch's; PyTorch's AdamW
    /// `{weight_decay 0.01}`; SG's Lamb `{betas (0.9, 0.999), eps 1e-6, weight_decay 0.01,
    /// max_grad_norm 1.0}` and Lion `{betas (0.9, 0.99), weight_decay 0}`.
    pub fn defaults(kind: OptimizerKind) -> Self {
        use OptimizerKind::*;
        Self {
            kind,
            momentum: if matches!(kind, Sgd | RmsProp) {
                0.9
            } else {
                0.0
            },
            dampening: 0.0,
            nesterov: false,
            weight_decay: match kind {
                Sgd | Adam | RmsProp => 1e-4,
                AdamW | Lamb => 1e-2,
                Lion => 0.0,
            },
            betas: if kind == Lion {
                (0.9, 0.99)
            } else {
                (0.9, 0.999)
            },
            eps: if kind == Lamb { 1e-6 } else { 1e-8 },
            alpha: 0.99,
            centered: false,
            max_grad_norm: 1.0,
            trust_clip: false,
            always_adapt: false,
            bias_correction: true,
            grad_averaging: true,
        }
    }

    /// Checks the values.
    pub fn validate(&self) -> Result<(), TrainError> {
        let check = |key: &str, v: f64, ok: bool, want: &str| {
            if ok {
                Ok(())
            } else {
                Err(TrainError::param(
                    &format!("optimizer_params.{key}"),
                    format!("{v} is invalid: {want}"),
                ))
            }
        };
        check(
            "momentum",
            self.momentum,
            (0.0..1.0).contains(&self.momentum),
            "use a value in [0, 1)",
        )?;
        check(
            "dampening",
            self.dampening,
            (0.0..=1.0).contains(&self.dampening),
            "use a value in [0, 1]",
        )?;
        check(
            "weight_decay",
            self.weight_decay,
            self.weight_decay >= 0.0 && self.weight_decay.is_finite(),
            "use a finite value >= 0",
        )?;
        check(
            "eps",
            self.eps,
            self.eps > 0.0 && self.eps.is_finite(),
            "use a finite value > 0",
        )?;
        check(
            "alpha",
            self.alpha,
            (0.0..1.0).contains(&self.alpha),
            "use a value in [0, 1)",
        )?;
        check(
            "max_grad_norm",
            self.max_grad_norm,
            self.max_grad_norm > 0.0 && self.max_grad_norm.is_finite(),
            "use a finite value > 0",
        )?;
        for (i, b) in [self.betas.0, self.betas.1].into_iter().enumerate() {
            check(
                &format!("betas[{i}]"),
                b,
                (0.0..1.0).contains(&b),
                "use a value in [0, 1)",
            )?;
        }
        if self.nesterov && (self.momentum <= 0.0 || self.dampening != 0.0) {
            return Err(TrainError::param(
                "optimizer_params.nesterov",
                "nesterov momentum requires a momentum > 0 and zero dampening, as in PyTorch",
            ));
        }
        Ok(())
    }

    /// Builds the optimizer with weight decay on every parameter.
    pub fn build(&self) -> TrainOptimizer {
        self.build_with(None)
    }

    /// Builds the optimizer for `module` (the module passed to [`TrainOptimizer::step`]); with
    /// `zero_weight_decay_on_bias_and_bn`, the parameters [`no_weight_decay_paths`] names get
    /// weight decay 0 (and, with LAMB, no trust ratio unless `always_adapt`).
    pub fn build_for<M: Module>(
        &self,
        module: &M,
        zero_weight_decay_on_bias_and_bn: bool,
    ) -> TrainOptimizer {
        let group = zero_weight_decay_on_bias_and_bn
            .then(|| ParamGroup::from_paths(no_weight_decay_paths(module)));
        self.build_with(group)
    }

    fn build_with(&self, no_decay: Option<ParamGroup>) -> TrainOptimizer {
        let wd = self.weight_decay;
        let (b1, b2) = self.betas;
        let optim = match self.kind {
            OptimizerKind::Sgd => grouped(no_decay, wd, |wd| {
                let momentum = (self.momentum > 0.0).then(|| {
                    MomentumConfig::new()
                        .with_momentum(self.momentum)
                        .with_dampening(self.dampening)
                        .with_nesterov(self.nesterov)
                });
                SgdConfig::new()
                    .with_weight_decay(decay(wd))
                    .with_momentum(momentum)
                    .build()
            }),
            OptimizerKind::Adam => grouped(no_decay, wd, |wd| {
                AdamConfig::new()
                    .with_beta_1(b1 as f32)
                    .with_beta_2(b2 as f32)
                    .with_epsilon(self.eps as f32)
                    .with_weight_decay(decay(wd))
                    .build()
            }),
            OptimizerKind::AdamW => grouped(no_decay, wd, |wd| {
                AdamWConfig::new()
                    .with_beta_1(b1 as f32)
                    .with_beta_2(b2 as f32)
                    .with_epsilon(self.eps as f32)
                    .with_weight_decay(wd as f32)
                    .build()
            }),
            OptimizerKind::RmsProp => grouped(no_decay, wd, |wd| {
                RmsPropConfig::new()
                    .with_alpha(self.alpha as f32)
                    .with_momentum(self.momentum as f32)
                    .with_epsilon(self.eps as f32)
                    .with_centered(self.centered)
                    .with_weight_decay(decay(wd))
                    .build()
            }),
            OptimizerKind::Lamb => grouped(no_decay, wd, |wd| Lamb {
                betas: self.betas,
                eps: self.eps,
                weight_decay: wd,
                bias_correction: self.bias_correction,
                grad_averaging: self.grad_averaging,
                trust_clip: self.trust_clip,
                always_adapt: self.always_adapt,
            }),
            OptimizerKind::Lion => grouped(no_decay, wd, |wd| {
                LionConfig::new()
                    .with_beta_1(b1 as f32)
                    .with_beta_2(b2 as f32)
                    .with_weight_decay(wd as f32)
                    .build()
            }),
        };
        TrainOptimizer {
            optim,
            max_grad_norm: (self.kind == OptimizerKind::Lamb).then_some(self.max_grad_norm),
        }
    }
}

/// Burn's coupled L2 weight decay, absent at 0.
fn decay(wd: f64) -> Option<WeightDecayConfig> {
    (wd > 0.0).then(|| WeightDecayConfig::new(wd as f32))
}

/// One optimizer for all parameters, and a copy without weight decay for `no_decay`.
fn grouped<O: Optimizer>(
    no_decay: Option<ParamGroup>,
    weight_decay: f64,
    make: impl Fn(f64) -> O,
) -> ModuleOptimizer {
    let optim = ModuleOptimizer::from(make(weight_decay));
    match no_decay {
        Some(group) => optim.with_group(group, make(0.0), None),
        None => optim,
    }
}

/// A built optimizer: Burn's [`ModuleOptimizer`] (with its parameter groups), plus LAMB's
/// global gradient-norm clipping.
#[derive(Clone)]
pub struct TrainOptimizer {
    optim: ModuleOptimizer,
    max_grad_norm: Option<f64>,
}

impl TrainOptimizer {
    /// Updates `module` with `grads` at learning rate `lr`.
    pub fn step<M: Module>(&mut self, lr: f64, module: M, grads: GradientsParams) -> M {
        let grads = match self.max_grad_norm {
            Some(max) => {
                // NVLAMB divides every gradient by ‖g‖ / max_grad_norm when ‖g‖ exceeds it.
                let norm = grads::global_norm(&grads, &module);
                if norm > max {
                    grads::scale(grads, &module, max / norm)
                } else {
                    grads
                }
            }
            None => grads,
        };
        self.optim.step(lr, module, grads)
    }

    /// The optimizer state as burnpack bytes.
    pub fn into_bytes(&self) -> Result<Bytes, RecordError> {
        self.optim.into_bytes()
    }

    /// Restores the state [`TrainOptimizer::into_bytes`] wrote.
    pub fn from_bytes(self, bytes: Bytes) -> Result<Self, RecordError> {
        Ok(Self {
            optim: self.optim.from_bytes(bytes)?,
            ..self
        })
    }
}

/// The module types whose parameters never decay with `zero_weight_decay_on_bias_and_bn`.
pub const NORM_TYPES: [&str; 5] = [
    "BatchNorm",
    "LayerNorm",
    "GroupNorm",
    "InstanceNorm",
    "RmsNorm",
];

/// Collects the paths of the parameters that `zero_weight_decay_on_bias_and_bn` exempts.
#[derive(Default)]
struct NoDecay {
    path: Vec<String>,
    owners: Vec<String>,
    found: Vec<String>,
}

impl ModuleVisitor for NoDecay {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.push(name.to_string());
        self.owners.push(container_type.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
        self.owners.pop();
    }

    fn visit_float<const D: usize>(&mut self, _param: &Param<Tensor<D>>) {
        let name = self.path.last().map_or("", String::as_str);
        let owner = self.owners.last().map_or("", String::as_str);
        let in_norm = owner
            .strip_prefix("Struct:")
            .is_some_and(|t| NORM_TYPES.contains(&t));
        if in_norm || name == "bias" || name.ends_with("_bias") {
            self.found.push(self.path.join("."));
        }
    }
}

/// The parameters `zero_weight_decay_on_bias_and_bn` exempts from weight decay, by path in
/// `module`: every parameter of a normalisation layer ([`NORM_TYPES`], told by the type of the
/// struct that holds it) and every parameter named `bias` or `*_bias` (BEiT's `q_bias`,
/// `v_bias`).
///
/// SuperGradients exempts the weight and bias of its `_BatchNorm` layers and every `bias`
/// attribute; kd also exempts the weights of the other normalisation layers (LayerNorm's
/// `gamma` decays in SuperGradients). Paths, unlike parameter ids, survive a resume.
pub fn no_weight_decay_paths<M: Module>(module: &M) -> Vec<String> {
    let mut visitor = NoDecay::default();
    module.visit(&mut visitor);
    visitor.found
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use burn::nn::{BatchNorm, BatchNormConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};

    /// `fc(bn(x))`, the network of tools/reference/optimizers.py.
    #[derive(Module, Debug)]
    pub(crate) struct Tiny {
        pub(crate) bn: BatchNorm,
        pub(crate) fc: Linear,
    }

    impl Tiny {
        pub(crate) fn new(device: &Device) -> Self {
            Self {
                bn: BatchNormConfig::new(4).init(device),
                fc: LinearConfig::new(4, 3).init(device),
            }
        }

        fn forward(&self, x: Tensor<2>) -> Tensor<2> {
            self.fc.forward(self.bn.forward(x))
        }
    }

    /// A batch `(x, y)`.
    pub(crate) type Batch = (Tensor<2>, Tensor<2>);

    fn matrix(v: &serde_json::Value, device: &Device) -> Tensor<2> {
        let rows: Vec<Vec<f64>> = serde_json::from_value(v.clone()).unwrap();
        let (r, c) = (rows.len(), rows[0].len());
        let flat: Vec<f32> = rows.into_iter().flatten().map(|x| x as f32).collect();
        Tensor::from_data(TensorData::new(flat, [r, c]), device)
    }

    fn vector(v: &serde_json::Value, device: &Device) -> Param<Tensor<1>> {
        let flat: Vec<f64> = serde_json::from_value(v.clone()).unwrap();
        let flat: Vec<f32> = flat.into_iter().map(|x| x as f32).collect();
        let n = flat.len();
        Param::from_tensor(Tensor::from_data(TensorData::new(flat, [n]), device))
    }

    /// The fixture's network (on the autodiff flex device) and its two batches.
    pub(crate) fn tiny_problem(fixture: &serde_json::Value) -> (Tiny, Batch, Batch) {
        let device = Device::flex().autodiff();
        let init = &fixture["init"];
        let mut tiny = Tiny::new(&device);
        // PyTorch's weight is [out, in]; Burn's Linear holds [in, out].
        tiny.fc.weight = Param::from_tensor(matrix(&init["fc.weight"], &device).transpose());
        tiny.fc.bias = Some(vector(&init["fc.bias"], &device));
        tiny.bn.gamma = vector(&init["bn.weight"], &device);
        tiny.bn.beta = vector(&init["bn.bias"], &device);
        let batch = |x: &str, y: &str| (matrix(&fixture[x], &device), matrix(&fixture[y], &device));
        let (b1, b2) = (batch("x", "y"), batch("x2", "y2"));
        (tiny, b1, b2)
    }

    /// The gradients of `mean((fc(bn(x)) - y)^2)`.
    pub(crate) fn tiny_grads(tiny: &Tiny, (x, y): &Batch) -> GradientsParams {
        let loss = tiny.forward(x.clone()).sub(y.clone()).square().mean();
        GradientsParams::from_grads(loss.backward(), tiny)
    }

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f64> {
        t.into_data()
            .try_to_vec::<f32>()
            .unwrap()
            .into_iter()
            .map(f64::from)
            .collect()
    }

    fn flat(v: &serde_json::Value) -> Vec<f64> {
        match v {
            serde_json::Value::Array(items) => items.iter().flat_map(flat).collect(),
            other => vec![other.as_f64().unwrap()],
        }
    }

    fn config(kind: &str, p: &serde_json::Value) -> (OptimizerConfig, bool) {
        let f = |k: &str| p[k].as_f64().unwrap();
        let b = |k: &str| p[k].as_bool().unwrap();
        let mut c = OptimizerConfig::defaults(OptimizerKind::parse(kind).unwrap());
        c.momentum = f("momentum");
        c.dampening = f("dampening");
        c.nesterov = b("nesterov");
        c.weight_decay = f("weight_decay");
        c.betas = (
            p["betas"][0].as_f64().unwrap(),
            p["betas"][1].as_f64().unwrap(),
        );
        c.eps = f("eps");
        c.alpha = f("alpha");
        c.centered = b("centered");
        c.max_grad_norm = f("max_grad_norm");
        c.trust_clip = b("trust_clip");
        c.always_adapt = b("always_adapt");
        c.bias_correction = b("bias_correction");
        c.grad_averaging = b("grad_averaging");
        c.validate().unwrap();
        (c, b("zero_weight_decay_on_bias_and_bn"))
    }

    // Golden values: tests/fixtures/optimizers.json, written by tools/reference/optimizers.py
    // (PyTorch 2.9.0, float32): five steps of each optimizer on `mean((fc(bn(x)) - y)^2)`:
    //
    // ```python
    // opt = torch.optim.SGD(groups(m, wd, zero_wd), lr=..., momentum=..., dampening=...,
    //                       nesterov=..., foreach=False)       # also Adam, AdamW, RMSprop
    // opt = Lamb(...)  # You et al. 2020 with SuperGradients' options, written in the script
    // opt = Lion(...)  # Chen et al. 2023, written in the script
    // for lr in [0.05, 0.04, 0.03, 0.02, 0.01]:
    //     m.zero_grad(); loss_of(m, batch).backward(); set lr; opt.step()
    //     steps.append({n: p for n, p in m.named_parameters()})
    // ```
    #[test]
    fn five_steps_match_pytorch() {
        let fixture: serde_json::Value =
            serde_json::from_str(include_str!("../tests/fixtures/optimizers.json")).unwrap();
        let lrs: Vec<f64> = serde_json::from_value(fixture["lrs"].clone()).unwrap();
        let cases = fixture["cases"].as_array().unwrap();
        assert_eq!(cases.len(), 15);
        let mut worst = 0.0f64;
        for case in cases {
            let name = case["name"].as_str().unwrap();
            let (config, zero_wd) = config(case["optimizer"].as_str().unwrap(), &case["params"]);
            let (mut tiny, batch, _) = tiny_problem(&fixture);
            let mut optim = config.build_for(&tiny, zero_wd);
            for (i, lr) in lrs.iter().enumerate() {
                let grads = tiny_grads(&tiny, &batch);
                tiny = optim.step(*lr, tiny, grads);
                let want = &case["steps"][i];
                let got = [
                    ("fc.weight", values(tiny.fc.weight.val().transpose())),
                    ("fc.bias", values(tiny.fc.bias.as_ref().unwrap().val())),
                    ("bn.weight", values(tiny.bn.gamma.val())),
                    ("bn.bias", values(tiny.bn.beta.val())),
                ];
                for (param, got) in got {
                    let want = flat(&want[param]);
                    for (g, w) in got.iter().zip(&want) {
                        let err = (g - w).abs();
                        worst = worst.max(err);
                        assert!(err < 1e-5, "{name}, step {}, {param}: {g} vs {w}", i + 1);
                    }
                }
            }
        }
        eprintln!("optimizers: max absolute error {worst:e}");
    }

    #[test]
    fn state_survives_bytes() {
        let fixture: serde_json::Value =
            serde_json::from_str(include_str!("../tests/fixtures/optimizers.json")).unwrap();
        for kind in OptimizerKind::NAMES {
            let config = OptimizerConfig::defaults(OptimizerKind::parse(kind).unwrap());
            let (tiny, batch, _) = tiny_problem(&fixture);
            let mut optim = config.build_for(&tiny, true);
            let tiny = optim.step(0.01, tiny.clone(), tiny_grads(&tiny, &batch));
            let bytes = optim.into_bytes().unwrap();
            let mut restored = config.build_for(&tiny, true).from_bytes(bytes).unwrap();
            let a = optim.step(0.01, tiny.clone(), tiny_grads(&tiny, &batch));
            let b = restored.step(0.01, tiny.clone(), tiny_grads(&tiny, &batch));
            assert_eq!(
                values(a.fc.weight.val()),
                values(b.fc.weight.val()),
                "{kind}"
            );
            assert_eq!(values(a.bn.gamma.val()), values(b.bn.gamma.val()), "{kind}");
        }
    }

    #[derive(Module, Debug)]
    struct Block {
        norm: LayerNorm,
        proj: Linear,
        q_bias: Param<Tensor<1>>,
        layers: Vec<Linear>,
    }

    #[test]
    fn no_decay_names_norm_layers_and_biases() {
        let device = Device::flex();
        let block = Block {
            norm: LayerNormConfig::new(3).init(&device),
            proj: LinearConfig::new(3, 3).init(&device),
            q_bias: Param::from_tensor(Tensor::zeros([3], &device)),
            layers: vec![
                LinearConfig::new(3, 3).init(&device),
                LinearConfig::new(3, 3).with_bias(false).init(&device),
            ],
        };
        assert_eq!(
            no_weight_decay_paths(&block),
            [
                "norm.gamma",
                "norm.beta",
                "proj.bias",
                "q_bias",
                "layers.0.bias"
            ]
        );
        let tiny = Tiny::new(&device);
        assert_eq!(
            no_weight_decay_paths(&tiny),
            [
                "bn.gamma",
                "bn.beta",
                "bn.running_mean",
                "bn.running_var",
                "fc.bias"
            ]
        );
    }

    #[test]
    fn names_and_defaults() {
        for name in OptimizerKind::NAMES {
            let kind = OptimizerKind::parse(&name.to_uppercase()).unwrap();
            OptimizerConfig::defaults(kind).validate().unwrap();
        }
        assert_eq!(OptimizerKind::parse("RMSpropTF"), None);
        let lamb = OptimizerConfig::defaults(OptimizerKind::Lamb);
        assert_eq!(
            (lamb.eps, lamb.weight_decay, lamb.max_grad_norm),
            (1e-6, 1e-2, 1.0)
        );
        let rms = OptimizerConfig::defaults(OptimizerKind::RmsProp);
        assert_eq!(
            (rms.alpha, rms.momentum, rms.weight_decay),
            (0.99, 0.9, 1e-4)
        );
        let lion = OptimizerConfig::defaults(OptimizerKind::Lion);
        assert_eq!((lion.betas, lion.weight_decay), ((0.9, 0.99), 0.0));
        let mut bad = OptimizerConfig::defaults(OptimizerKind::RmsProp);
        bad.alpha = 1.0;
        let err = bad.validate().unwrap_err().to_string();
        assert!(err.contains("optimizer_params.alpha"), "{err}");
    }
}
