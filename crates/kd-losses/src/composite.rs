//! A weighted sum of named distillation terms, each reading the feature taps it names.
//!
//! ```text
//! loss = Σ_i w_i · term_i(student taps_i, teacher taps_i[, targets, sample indices, epoch])
//! ```
//!
//! A [`DistillationLossConfig`] lists [`TermConfig`]s (a method's configuration, a weight and
//! the taps it reads on each network); [`DistillationLossConfig::init`] checks every pairing
//! against the per-sample shapes of the taps (probed once when the run is built) and builds
//! the trainable parts (connectors, embedding heads, memory banks) on the training device.
//! The resulting [`DistillationLoss`] is a Burn module: it belongs to the trained KD module,
//! so the optimizer trains its parameters with the student and `ckpt_latest` saves them.
//!
//! The pseudo-tap [`LOGITS_TAP`] names the network's output.

use burn::module::Module;
use burn::prelude::*;
use kd_core::{Feature, LossOutput, Targets};

use crate::{
    AttentionTransferLoss, AttentionTransferLossConfig, CorrelationCongruenceLoss,
    CorrelationCongruenceLossConfig, CrdLoss, CrdLossConfig, CrossEntropyLoss,
    CrossEntropyLossConfig, DistLoss, DistLossConfig, DkdLoss, DkdLossConfig, FitNetsLoss,
    FitNetsLossConfig, HintonKdLoss, HintonKdLossConfig, LogitStandardizedKdLoss,
    LogitStandardizedKdLossConfig, LossError, NstLoss, NstLossConfig, PktLoss, PktLossConfig,
    ReviewKdLoss, ReviewKdLossConfig, RkdLoss, RkdLossConfig, SimilarityPreservingLoss,
    SimilarityPreservingLossConfig, VidLoss, VidLossConfig,
};

/// The tap name of a network's logits.
pub const LOGITS_TAP: &str = "logits";

/// Every term name, as written in recipes.
pub const TERM_NAMES: [&str; 15] = [
    "cross_entropy",
    "hinton_kd",
    "dkd",
    "dist",
    "logit_standardized_kd",
    "attention_transfer",
    "similarity_preserving",
    "rkd",
    "pkt",
    "nst",
    "correlation_congruence",
    "fitnets",
    "vid",
    "crd",
    "review_kd",
];

/// The configuration of one method.
#[derive(Debug, Clone, PartialEq)]
pub enum MethodConfig {
    /// The task loss on the student's logits.
    CrossEntropy(CrossEntropyLossConfig),
    /// Hinton et al.'s soft-target loss.
    HintonKd(HintonKdLossConfig),
    /// Decoupled KD.
    Dkd(DkdLossConfig),
    /// DIST.
    Dist(DistLossConfig),
    /// Logit-standardised KD.
    LogitStandardizedKd(LogitStandardizedKdLossConfig),
    /// Attention transfer.
    AttentionTransfer(AttentionTransferLossConfig),
    /// Similarity preserving.
    SimilarityPreserving(SimilarityPreservingLossConfig),
    /// Relational KD.
    Rkd(RkdLossConfig),
    /// Probabilistic knowledge transfer.
    Pkt(PktLossConfig),
    /// Neuron selectivity transfer.
    Nst(NstLossConfig),
    /// Correlation congruence.
    CorrelationCongruence(CorrelationCongruenceLossConfig),
    /// FitNets hints.
    FitNets(FitNetsLossConfig),
    /// Variational information distillation.
    Vid(VidLossConfig),
    /// Contrastive representation distillation.
    Crd(CrdLossConfig),
    /// Knowledge review.
    ReviewKd(ReviewKdLossConfig),
}

impl MethodConfig {
    /// The recipe name of the method (one of [`TERM_NAMES`]).
    pub fn name(&self) -> &'static str {
        match self {
            MethodConfig::CrossEntropy(_) => "cross_entropy",
            MethodConfig::HintonKd(_) => "hinton_kd",
            MethodConfig::Dkd(_) => "dkd",
            MethodConfig::Dist(_) => "dist",
            MethodConfig::LogitStandardizedKd(_) => "logit_standardized_kd",
            MethodConfig::AttentionTransfer(_) => "attention_transfer",
            MethodConfig::SimilarityPreserving(_) => "similarity_preserving",
            MethodConfig::Rkd(_) => "rkd",
            MethodConfig::Pkt(_) => "pkt",
            MethodConfig::Nst(_) => "nst",
            MethodConfig::CorrelationCongruence(_) => "correlation_congruence",
            MethodConfig::FitNets(_) => "fitnets",
            MethodConfig::Vid(_) => "vid",
            MethodConfig::Crd(_) => "crd",
            MethodConfig::ReviewKd(_) => "review_kd",
        }
    }

    /// Whether the method reads one tap per network or a list (ReviewKD).
    pub fn takes_tap_lists(&self) -> bool {
        matches!(self, MethodConfig::ReviewKd(_))
    }

    /// Whether the method reads only the student (the task loss).
    pub fn student_only(&self) -> bool {
        matches!(self, MethodConfig::CrossEntropy(_))
    }
}

/// One weighted term of a [`DistillationLossConfig`].
#[derive(Debug, Clone, PartialEq)]
pub struct TermConfig {
    /// The method and its hyper-parameters.
    pub method: MethodConfig,
    /// The weight multiplying the term.
    pub weight: f64,
    /// Student taps read (one, or several for ReviewKD); default `[logits]`.
    pub student_taps: Vec<String>,
    /// Teacher taps read; default `[logits]`.
    pub teacher_taps: Vec<String>,
}

impl TermConfig {
    /// A term reading the logits of both networks.
    pub fn new(method: MethodConfig, weight: f64) -> Self {
        Self {
            method,
            weight,
            student_taps: vec![LOGITS_TAP.into()],
            teacher_taps: vec![LOGITS_TAP.into()],
        }
    }

    /// Sets the taps read on each network.
    pub fn with_taps(mut self, student: Vec<String>, teacher: Vec<String>) -> Self {
        self.student_taps = student;
        self.teacher_taps = teacher;
        self
    }
}

/// A weighted sum of distillation terms. See the module docs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DistillationLossConfig {
    /// The terms, in the order they are logged.
    pub terms: Vec<TermConfig>,
}

/// Per-sample shapes (no batch dimension) of the taps a network offers, by name.
pub type TapShapes = Vec<(String, Vec<usize>)>;

impl DistillationLossConfig {
    /// Every student tap the terms read (without [`LOGITS_TAP`]), first use first.
    pub fn student_taps(&self) -> Vec<String> {
        collect_taps(self.terms.iter().map(|t| &t.student_taps))
    }

    /// Every teacher tap the terms read (without [`LOGITS_TAP`]), first use first.
    pub fn teacher_taps(&self) -> Vec<String> {
        collect_taps(
            self.terms
                .iter()
                .filter(|t| !t.method.student_only())
                .map(|t| &t.teacher_taps),
        )
    }

    /// Checks every term against the tap shapes and builds the loss on `device` (the
    /// training device). `student` and `teacher` must hold the shape of every tap the terms
    /// read, [`LOGITS_TAP`] included. Errors name the term (`terms[2]`).
    pub fn init(
        &self,
        student: &TapShapes,
        teacher: &TapShapes,
        device: &Device,
    ) -> Result<DistillationLoss, LossError> {
        if self.terms.is_empty() {
            return Err(LossError::Missing {
                key: "terms".into(),
                hint: "list at least one term, e.g. `{name: hinton_kd, weight: 0.9}`".into(),
            });
        }
        let student_taps = self.student_taps();
        let teacher_taps = self.teacher_taps();
        let terms =
            self.terms
                .iter()
                .enumerate()
                .map(|(i, term)| {
                    build_term(term, student, teacher, &student_taps, &teacher_taps, device)
                        .map_err(|source| LossError::InTerm {
                            index: i,
                            name: term.method.name(),
                            source: Box::new(source),
                        })
                })
                .collect::<Result<Vec<_>, _>>()?;
        Ok(DistillationLoss {
            terms,
            student_taps,
            teacher_taps,
        })
    }
}

fn collect_taps<'a>(lists: impl Iterator<Item = &'a Vec<String>>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for tap in lists.flatten() {
        if tap != LOGITS_TAP && !out.contains(tap) {
            out.push(tap.clone());
        }
    }
    out
}

/// Where a term's input comes from: the logits or one of the collected taps.
fn tap_index(tap: &str, collected: &[String]) -> usize {
    if tap == LOGITS_TAP {
        usize::MAX
    } else {
        collected
            .iter()
            .position(|t| t == tap)
            .expect("taps were collected from the same terms")
    }
}

fn shape_of<'a>(shapes: &'a TapShapes, tap: &str, side: &str) -> Result<&'a [usize], LossError> {
    shapes
        .iter()
        .find(|(name, _)| name == tap)
        .map(|(_, s)| s.as_slice())
        .ok_or_else(|| LossError::Missing {
            key: format!("{side}_tap"),
            hint: format!(
                "the {side} has no tap `{tap}`{}; available: {}",
                kd_core::did_you_mean(tap, shapes.iter().map(|(n, _)| n.as_str())),
                shapes
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })
}

fn build_term(
    term: &TermConfig,
    student: &TapShapes,
    teacher: &TapShapes,
    student_taps: &[String],
    teacher_taps: &[String],
    device: &Device,
) -> Result<Term, LossError> {
    if !(term.weight.is_finite() && term.weight >= 0.0) {
        return Err(LossError::InvalidValue {
            key: "weight".into(),
            value: term.weight,
            expected: "non-negative and finite".into(),
        });
    }
    let method = &term.method;
    let lists = method.takes_tap_lists();
    for (side, taps) in [
        ("student", &term.student_taps),
        ("teacher", &term.teacher_taps),
    ] {
        if taps.is_empty() || (!lists && taps.len() != 1) {
            return Err(LossError::InvalidValue {
                key: format!("{side}_tap"),
                value: taps.len() as f64,
                expected: if lists {
                    "a list of at least one tap".into()
                } else {
                    format!("one tap: {} reads a single feature", method.name())
                },
            });
        }
    }
    let s_shapes = term
        .student_taps
        .iter()
        .map(|t| shape_of(student, t, "student").map(<[usize]>::to_vec))
        .collect::<Result<Vec<_>, _>>()?;
    let t_shapes = if method.student_only() {
        Vec::new()
    } else {
        term.teacher_taps
            .iter()
            .map(|t| shape_of(teacher, t, "teacher").map(<[usize]>::to_vec))
            .collect::<Result<Vec<_>, _>>()?
    };
    let (s, t) = (
        s_shapes.first().cloned().unwrap_or_default(),
        t_shapes.first().cloned().unwrap_or_default(),
    );
    let kind = match method {
        MethodConfig::CrossEntropy(c) => TermKind::CrossEntropy(c.init()?),
        MethodConfig::HintonKd(c) => {
            c.check_shapes(&s, &t)?;
            TermKind::HintonKd(c.init()?)
        }
        MethodConfig::Dkd(c) => {
            c.check_shapes(&s, &t)?;
            TermKind::Dkd(c.init()?)
        }
        MethodConfig::Dist(c) => {
            c.check_shapes(&s, &t)?;
            TermKind::Dist(c.init()?)
        }
        MethodConfig::LogitStandardizedKd(c) => {
            c.check_shapes(&s, &t)?;
            TermKind::LogitStandardizedKd(c.init()?)
        }
        MethodConfig::AttentionTransfer(c) => {
            c.check_shapes(&s, &t)?;
            TermKind::AttentionTransfer(c.init()?)
        }
        MethodConfig::SimilarityPreserving(c) => {
            c.check_shapes(&s, &t)?;
            TermKind::SimilarityPreserving(c.init()?)
        }
        MethodConfig::Rkd(c) => {
            c.check_shapes(&s, &t)?;
            TermKind::Rkd(c.init()?)
        }
        MethodConfig::Pkt(c) => {
            c.check_shapes(&s, &t)?;
            TermKind::Pkt(c.init()?)
        }
        MethodConfig::Nst(c) => {
            c.check_shapes(&s, &t)?;
            TermKind::Nst(c.init()?)
        }
        MethodConfig::CorrelationCongruence(c) => {
            c.check_shapes(&s, &t)?;
            TermKind::CorrelationCongruence(c.init()?)
        }
        MethodConfig::FitNets(c) => TermKind::FitNets(c.init(&s, &t, device)?),
        MethodConfig::Vid(c) => TermKind::Vid(c.init(&s, &t, device)?),
        MethodConfig::Crd(c) => TermKind::Crd(c.init(&flat(&s), &flat(&t), device)?),
        MethodConfig::ReviewKd(c) => TermKind::ReviewKd(c.init(&s_shapes, &t_shapes, device)?),
    };
    if matches!(
        method,
        MethodConfig::AttentionTransfer(_)
            | MethodConfig::Nst(_)
            | MethodConfig::Vid(_)
            | MethodConfig::ReviewKd(_)
    ) && s_shapes
        .iter()
        .chain(&t_shapes)
        .any(|shape| shape.len() != 3)
    {
        return Err(LossError::IncompatibleShapes {
            key: String::new(),
            loss: method.name().into(),
            student: s,
            teacher: t,
            reason: "this method reads feature maps [C, H, W]: tap convolutional stages".into(),
        });
    }
    Ok(Term {
        kind,
        weight: term.weight,
        name: method.name().to_string(),
        student_inputs: term
            .student_taps
            .iter()
            .map(|t| tap_index(t, student_taps))
            .collect(),
        teacher_inputs: if method.student_only() {
            Vec::new()
        } else {
            term.teacher_taps
                .iter()
                .map(|t| tap_index(t, teacher_taps))
                .collect()
        },
    })
}

/// A per-sample shape flattened to one dimension.
fn flat(shape: &[usize]) -> Vec<usize> {
    vec![shape.iter().product()]
}

/// The built method of a term.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum TermKind {
    /// See [`MethodConfig::CrossEntropy`].
    CrossEntropy(CrossEntropyLoss),
    /// See [`MethodConfig::HintonKd`].
    HintonKd(HintonKdLoss),
    /// See [`MethodConfig::Dkd`].
    Dkd(DkdLoss),
    /// See [`MethodConfig::Dist`].
    Dist(DistLoss),
    /// See [`MethodConfig::LogitStandardizedKd`].
    LogitStandardizedKd(LogitStandardizedKdLoss),
    /// See [`MethodConfig::AttentionTransfer`].
    AttentionTransfer(AttentionTransferLoss),
    /// See [`MethodConfig::SimilarityPreserving`].
    SimilarityPreserving(SimilarityPreservingLoss),
    /// See [`MethodConfig::Rkd`].
    Rkd(RkdLoss),
    /// See [`MethodConfig::Pkt`].
    Pkt(PktLoss),
    /// See [`MethodConfig::Nst`].
    Nst(NstLoss),
    /// See [`MethodConfig::CorrelationCongruence`].
    CorrelationCongruence(CorrelationCongruenceLoss),
    /// See [`MethodConfig::FitNets`].
    FitNets(FitNetsLoss),
    /// See [`MethodConfig::Vid`].
    Vid(VidLoss),
    /// See [`MethodConfig::Crd`].
    Crd(CrdLoss),
    /// See [`MethodConfig::ReviewKd`].
    ReviewKd(ReviewKdLoss),
}

/// One built, weighted term.
#[derive(Module, Debug)]
pub struct Term {
    /// The method.
    pub kind: TermKind,
    /// Its weight.
    pub weight: f64,
    /// Its recipe name, used in logs.
    pub name: String,
    /// Indices into the collected student taps (`usize::MAX` for the logits).
    pub student_inputs: Vec<usize>,
    /// Indices into the collected teacher taps (`usize::MAX` for the logits).
    pub teacher_inputs: Vec<usize>,
}

/// What one network gave for a batch: logits and the collected taps, in the order of
/// [`DistillationLoss::student_taps`] / [`DistillationLoss::teacher_taps`].
#[derive(Debug, Clone)]
pub struct TappedOutput {
    /// Logits `[batch, classes]`.
    pub logits: Tensor<2>,
    /// The collected taps.
    pub features: Vec<Feature>,
}

impl TappedOutput {
    fn get(&self, index: usize) -> Feature {
        if index == usize::MAX {
            Feature::Vector(self.logits.clone())
        } else {
            self.features[index].clone()
        }
    }
}

/// What a batch brings besides the networks' outputs.
#[derive(Debug, Clone)]
pub struct TermContext<'a> {
    /// The targets.
    pub targets: &'a Targets,
    /// Dataset indices of the batch's samples (CRD's memory rows).
    pub indices: Tensor<1, Int>,
    /// The 0-based epoch (DKD's warm-up).
    pub epoch: usize,
    /// Training (true) or validation. Terms indexed by training samples (CRD) contribute 0
    /// in validation, since validation indices do not address their memory.
    pub training: bool,
}

/// A built [`DistillationLossConfig`]: a module holding every term's trainable parts.
#[derive(Module, Debug)]
pub struct DistillationLoss {
    /// The terms.
    pub terms: Vec<Term>,
    /// Student taps to collect.
    pub student_taps: Vec<String>,
    /// Teacher taps to collect.
    pub teacher_taps: Vec<String>,
}

fn as_map(feature: Feature) -> Tensor<4> {
    match feature {
        Feature::Map(t) => t,
        other => panic!(
            "a feature map was checked when the loss was built, got {:?}",
            other.dims()
        ),
    }
}

fn as_vector(feature: Feature) -> Tensor<2> {
    match feature {
        Feature::Map(t) => t.flatten(1, 3),
        Feature::Tokens(t) => t.flatten(1, 2),
        Feature::Vector(t) => t,
    }
}

impl DistillationLoss {
    /// Component names: `Loss` then each term's name (suffixed `_2`, `_3` when repeated).
    pub fn component_names(&self) -> Vec<String> {
        let mut names = vec!["Loss".to_string()];
        for term in &self.terms {
            let count = names
                .iter()
                .filter(|n| *n == &term.name || n.starts_with(&format!("{}_", term.name)))
                .count();
            names.push(if count == 0 {
                term.name.clone()
            } else {
                format!("{}_{}", term.name, count + 1)
            });
        }
        names
    }

    /// The number of trainable values in the terms (connectors, heads), memories excluded.
    pub fn num_trainable_params(&self) -> usize {
        let mut count = 0;
        self.visit(&mut TrainableCounter { count: &mut count });
        count
    }

    /// The weighted sum and its components (total, then each weighted term, detached).
    pub fn forward(
        &self,
        student: &TappedOutput,
        teacher: &TappedOutput,
        ctx: &TermContext<'_>,
    ) -> LossOutput {
        let device = student.logits.device();
        let mut total: Option<Tensor<1>> = None;
        let mut parts = Vec::with_capacity(self.terms.len());
        for term in &self.terms {
            let s = |i: usize| student.get(term.student_inputs[i]);
            let t = |i: usize| teacher.get(term.teacher_inputs[i]);
            let value = match &term.kind {
                TermKind::CrossEntropy(l) => l.compute(student.logits.clone(), ctx.targets),
                TermKind::HintonKd(l) => l.forward(as_vector(s(0)), as_vector(t(0))),
                TermKind::Dkd(l) => {
                    l.forward_at_epoch(as_vector(s(0)), as_vector(t(0)), ctx.targets, ctx.epoch)
                }
                TermKind::Dist(l) => l.forward(as_vector(s(0)), as_vector(t(0))),
                TermKind::LogitStandardizedKd(l) => l.forward(as_vector(s(0)), as_vector(t(0))),
                TermKind::AttentionTransfer(l) => l.forward(as_map(s(0)), as_map(t(0))),
                TermKind::SimilarityPreserving(l) => l.forward(as_vector(s(0)), as_vector(t(0))),
                TermKind::Rkd(l) => l.forward(as_vector(s(0)), as_vector(t(0))),
                TermKind::Pkt(l) => l.forward(as_vector(s(0)), as_vector(t(0))),
                TermKind::Nst(l) => l.forward(as_map(s(0)), as_map(t(0))),
                TermKind::CorrelationCongruence(l) => l.forward(as_vector(s(0)), as_vector(t(0))),
                TermKind::FitNets(l) => match (s(0), t(0)) {
                    (Feature::Map(a), Feature::Map(b)) => l.forward(a, b),
                    (a, b) => l.forward(as_vector(a), as_vector(b)),
                },
                TermKind::Vid(l) => l.forward(as_map(s(0)), as_map(t(0))),
                TermKind::Crd(l) if ctx.training => {
                    l.forward(as_vector(s(0)), as_vector(t(0)), ctx.indices.clone())
                }
                TermKind::Crd(_) => Tensor::zeros([1], &device),
                TermKind::ReviewKd(l) => l.forward(
                    (0..term.student_inputs.len())
                        .map(|i| as_map(s(i)))
                        .collect(),
                    (0..term.teacher_inputs.len())
                        .map(|i| as_map(t(i)))
                        .collect(),
                ),
            };
            let weighted = value.mul_scalar(term.weight);
            parts.push(weighted.clone().detach());
            total = Some(match total {
                None => weighted,
                Some(acc) => acc + weighted,
            });
        }
        let total = total.expect("a distillation loss has at least one term");
        let mut components = vec![total.clone().detach()];
        components.extend(parts);
        LossOutput {
            loss: total,
            components: Tensor::cat(components, 0),
        }
    }
}

/// Counts the values of parameters that require a gradient.
struct TrainableCounter<'a> {
    count: &'a mut usize,
}

impl burn::module::ModuleVisitor for TrainableCounter<'_> {
    fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
        if param.val().is_require_grad() {
            *self.count += param.shape().num_elements();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shapes(list: &[(&str, &[usize])]) -> TapShapes {
        list.iter()
            .map(|(n, s)| (n.to_string(), s.to_vec()))
            .collect()
    }

    fn config() -> DistillationLossConfig {
        DistillationLossConfig {
            terms: vec![
                TermConfig::new(
                    MethodConfig::CrossEntropy(CrossEntropyLossConfig::new()),
                    0.1,
                ),
                TermConfig::new(MethodConfig::HintonKd(HintonKdLossConfig::default()), 0.9),
                TermConfig::new(
                    MethodConfig::AttentionTransfer(AttentionTransferLossConfig::default()),
                    1000.0,
                )
                .with_taps(vec!["stage2".into()], vec!["stage2".into()]),
                TermConfig::new(MethodConfig::FitNets(FitNetsLossConfig::default()), 1.0)
                    .with_taps(vec!["stage2".into()], vec!["stage2".into()]),
            ],
        }
    }

    fn student_shapes() -> TapShapes {
        shapes(&[
            ("logits", &[5]),
            ("stage2", &[4, 6, 6]),
            ("pre_logits", &[4]),
        ])
    }

    fn teacher_shapes() -> TapShapes {
        shapes(&[
            ("logits", &[5]),
            ("stage2", &[8, 6, 6]),
            ("pre_logits", &[8]),
        ])
    }

    /// The weighted sum equals the terms computed one by one, and gradients reach the
    /// connector.
    #[test]
    fn sums_weighted_terms_and_trains_connectors() {
        let _rng = crate::test_rng::lock();
        let device = Device::flex().autodiff();
        Device::flex().seed(7);
        let loss = config()
            .init(&student_shapes(), &teacher_shapes(), &device)
            .unwrap();
        assert_eq!(loss.student_taps, ["stage2"]);
        assert_eq!(
            loss.component_names(),
            [
                "Loss",
                "cross_entropy",
                "hinton_kd",
                "attention_transfer",
                "fitnets"
            ]
        );
        // The FitNets connector: a 1x1 conv 4 -> 8 with bias, and a batch norm.
        assert!(loss.num_trainable_params() > 0);
        let s_logits = Tensor::<2>::random([3, 5], burn::tensor::Distribution::Default, &device)
            .require_grad();
        let s_map = Tensor::<4>::random([3, 4, 6, 6], burn::tensor::Distribution::Default, &device)
            .require_grad();
        let t_logits = Tensor::<2>::random([3, 5], burn::tensor::Distribution::Default, &device);
        let t_map = Tensor::<4>::random([3, 8, 6, 6], burn::tensor::Distribution::Default, &device);
        let targets = Targets::Hard(Tensor::<1, Int>::from_ints([0, 3, 4], &device));
        let ctx = TermContext {
            targets: &targets,
            indices: Tensor::<1, Int>::from_ints([0, 1, 2], &device),
            epoch: 0,
            training: true,
        };
        let out = loss.forward(
            &TappedOutput {
                logits: s_logits.clone(),
                features: vec![Feature::Map(s_map.clone())],
            },
            &TappedOutput {
                logits: t_logits.clone(),
                features: vec![Feature::Map(t_map.clone())],
            },
            &ctx,
        );
        let c = out
            .components
            .clone()
            .into_data()
            .try_into_vec::<f32>()
            .unwrap();
        assert!((c[0] - (c[1] + c[2] + c[3] + c[4])).abs() < 1e-4 * c[0].abs().max(1.0));
        let ce = crate::cross_entropy(s_logits.clone(), &targets, 0.0)
            .into_data()
            .try_into_vec::<f32>()
            .unwrap()[0];
        assert!((c[1] - 0.1 * ce).abs() < 1e-6);
        let at = crate::attention_transfer_loss(
            s_map.clone(),
            t_map.clone(),
            &AttentionTransferLossConfig::default(),
        )
        .into_data()
        .try_into_vec::<f32>()
        .unwrap()[0];
        assert!((c[3] - 1000.0 * at).abs() < 1e-3 * c[3].abs().max(1.0));
        let grads = out.loss.backward();
        assert!(s_map.grad(&grads).is_some());
        let TermKind::FitNets(fitnets) = &loss.terms[3].kind else {
            panic!("term 3 is FitNets")
        };
        let connector_grads = burn::optim::GradientsParams::from_grads(grads, fitnets);
        assert!(!connector_grads.is_empty(), "the connector gets a gradient");
    }

    #[test]
    fn bad_pairings_and_taps_are_named() {
        let _rng = crate::test_rng::lock();
        let device = Device::flex().autodiff();
        let mut config = config();
        config.terms[2].teacher_taps = vec!["stage3".into()];
        let err = config
            .init(&student_shapes(), &teacher_shapes(), &device)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("terms[2]") && err.contains("teacher_tap") && err.contains("stage2"),
            "{err}"
        );
        let mut config = self::config();
        config.terms[2].teacher_taps = vec!["pre_logits".into()];
        let err = config
            .init(&student_shapes(), &teacher_shapes(), &device)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("terms[2]") && err.contains("[4, 6, 6]"),
            "{err}"
        );
        let mut config = self::config();
        config.terms[1].weight = -1.0;
        let err = config
            .init(&student_shapes(), &teacher_shapes(), &device)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("terms[1]") && err.contains("`weight`"),
            "{err}"
        );
        let err = DistillationLossConfig::default()
            .init(&student_shapes(), &teacher_shapes(), &device)
            .unwrap_err()
            .to_string();
        assert!(err.contains("terms"), "{err}");
    }
}
