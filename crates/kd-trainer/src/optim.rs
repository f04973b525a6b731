//! Optimizers with PyTorch's update rules and SuperGradients' defaults.

use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, AdamWConfig, ModuleOptimizer, SgdConfig};

use crate::TrainError;

/// Which optimizer (SuperGradients' `optimizer` names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptimizerKind {
    /// `SGD`: PyTorch's SGD (dampening 0, coupled L2 weight decay).
    Sgd,
    /// `Adam`: PyTorch's Adam (coupled L2 weight decay).
    Adam,
    /// `AdamW`: PyTorch's AdamW (decoupled weight decay).
    AdamW,
}

impl OptimizerKind {
    /// The accepted names, as written in recipes.
    pub const NAMES: [&'static str; 3] = ["SGD", "Adam", "AdamW"];

    /// Parses a recipe name, case-insensitively.
    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "sgd" => Some(Self::Sgd),
            "adam" => Some(Self::Adam),
            "adamw" => Some(Self::AdamW),
            _ => None,
        }
    }
}

/// An optimizer and its hyper-parameters (`optimizer` + `optimizer_params`).
#[derive(Debug, Clone, PartialEq)]
pub struct OptimizerConfig {
    /// The algorithm.
    pub kind: OptimizerKind,
    /// SGD momentum.
    pub momentum: f64,
    /// SGD dampening (PyTorch default 0; Burn's own default is 0.1).
    pub dampening: f64,
    /// SGD Nesterov momentum.
    pub nesterov: bool,
    /// Weight decay.
    pub weight_decay: f64,
    /// Adam betas.
    pub betas: (f64, f64),
    /// Adam epsilon (PyTorch default 1e-8; Burn's own default is 1e-5).
    pub eps: f64,
}

impl OptimizerConfig {
    /// The defaults SuperGradients merges in for `kind`: SGD `{momentum 0.9, weight_decay 1e-4}`,
    /// Adam `{weight_decay 1e-4}`, AdamW PyTorch's `{weight_decay 0.01}`.
    pub fn defaults(kind: OptimizerKind) -> Self {
        Self {
            kind,
            momentum: if kind == OptimizerKind::Sgd { 0.9 } else { 0.0 },
            dampening: 0.0,
            nesterov: false,
            weight_decay: match kind {
                OptimizerKind::Sgd | OptimizerKind::Adam => 1e-4,
                OptimizerKind::AdamW => 1e-2,
            },
            betas: (0.9, 0.999),
            eps: 1e-8,
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
            self.weight_decay >= 0.0,
            "use a value >= 0",
        )?;
        check("eps", self.eps, self.eps > 0.0, "use a value > 0")?;
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

    /// Builds the Burn optimizer.
    pub fn build(&self) -> ModuleOptimizer {
        let decay =
            (self.weight_decay > 0.0).then(|| WeightDecayConfig::new(self.weight_decay as f32));
        match self.kind {
            OptimizerKind::Sgd => {
                let momentum = (self.momentum > 0.0).then(|| {
                    MomentumConfig::new()
                        .with_momentum(self.momentum)
                        .with_dampening(self.dampening)
                        .with_nesterov(self.nesterov)
                });
                SgdConfig::new()
                    .with_weight_decay(decay)
                    .with_momentum(momentum)
                    .init()
            }
            OptimizerKind::Adam => AdamConfig::new()
                .with_beta_1(self.betas.0 as f32)
                .with_beta_2(self.betas.1 as f32)
                .with_epsilon(self.eps as f32)
                .with_weight_decay(decay)
                .init(),
            OptimizerKind::AdamW => AdamWConfig::new()
                .with_beta_1(self.betas.0 as f32)
                .with_beta_2(self.betas.1 as f32)
                .with_epsilon(self.eps as f32)
                .with_weight_decay(self.weight_decay as f32)
                .init(),
        }
    }
}
