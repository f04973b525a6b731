//! `loss: DistillationLoss`: a weighted sum of named terms read from
//! `criterion_params.terms`, checked and built against the networks' feature taps.
//!
//! ```yaml
//! loss: DistillationLoss
//! criterion_params:
//!   terms:
//!     - {name: cross_entropy, weight: 0.1}
//!     - {name: hinton_kd, weight: 0.9, temperature: 4.0}
//!     - {name: attention_transfer, weight: 1000, student_tap: stage2, teacher_tap: stage2}
//! ```
//!
//! Each term takes `name`, `weight` (default 1), `student_tap` and `teacher_tap` (a tap name
//! or a list; default `logits`), and the fields of that method's configuration. CRD's
//! `n_data` defaults to the size of the training set.

use burn::module::Module;
use burn::prelude::*;
use kd_core::{Feature, ImageClassifier, check_taps};
use kd_losses::{
    CrdLossConfig, CrdMemory, DistillationLoss, DistillationLossConfig, LOGITS_TAP, MethodConfig,
    TERM_NAMES, TapShapes, TermConfig,
};
use serde_yaml::{Mapping, Value};

use crate::error::did_you_mean;
use crate::registry::parse_params;
use crate::schema::TrainingHyperparams;
use crate::{Network, RecipeError};

/// The recipe name of the composed loss.
pub const DISTILLATION_LOSS: &str = "DistillationLoss";

/// Whether `name` names the composed loss.
pub fn is_distillation_loss(name: &str) -> bool {
    matches!(name, "DistillationLoss" | "distillation_loss")
}

/// Reads `criterion_params.terms` into a configuration. `n_data` is the training-set size,
/// CRD's default memory size.
pub fn distillation_config(
    th: &TrainingHyperparams,
    section: &str,
    n_data: usize,
) -> Result<DistillationLossConfig, RecipeError> {
    let key = format!("{section}.criterion_params.terms");
    let Some(terms) = &th.criterion_params.terms else {
        return Err(RecipeError::invalid(
            &key,
            "`loss: DistillationLoss` needs a list of terms, e.g. `terms: [{name: cross_entropy, weight: 0.1}, {name: hinton_kd, weight: 0.9}]`",
        ));
    };
    let terms = terms
        .iter()
        .enumerate()
        .map(|(i, term)| parse_term(term, &format!("{key}[{i}]"), n_data))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(DistillationLossConfig { terms })
}

fn taps_of(value: Option<Value>, key: &str) -> Result<Vec<String>, RecipeError> {
    match value {
        None => Ok(vec![LOGITS_TAP.to_string()]),
        Some(Value::String(s)) => Ok(vec![s]),
        Some(Value::Sequence(items)) => items
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                other => Err(RecipeError::invalid(
                    key,
                    format!("expected tap names, got {other:?}"),
                )),
            })
            .collect(),
        Some(other) => Err(RecipeError::invalid(
            key,
            format!("expected a tap name or a list of tap names, got {other:?}"),
        )),
    }
}

fn parse_term(term: &Mapping, key: &str, n_data: usize) -> Result<TermConfig, RecipeError> {
    let mut rest = term.clone();
    let name = match rest.remove("name") {
        Some(Value::String(s)) => s,
        _ => {
            return Err(RecipeError::invalid(
                key,
                format!(
                    "each term needs a `name`, one of: {}",
                    TERM_NAMES.join(", ")
                ),
            ));
        }
    };
    let weight = match rest.remove("weight") {
        None => 1.0,
        Some(v) => v.as_f64().ok_or_else(|| {
            RecipeError::invalid(
                &format!("{key}.weight"),
                format!("expected a number, got {v:?}"),
            )
        })?,
    };
    let student_taps = taps_of(rest.remove("student_tap"), &format!("{key}.student_tap"))?;
    let teacher_taps = taps_of(rest.remove("teacher_tap"), &format!("{key}.teacher_tap"))?;
    let method = match name.as_str() {
        "cross_entropy" => MethodConfig::CrossEntropy(parse_params(&rest, key)?),
        "hinton_kd" => MethodConfig::HintonKd(parse_params(&rest, key)?),
        "dkd" => MethodConfig::Dkd(parse_params(&rest, key)?),
        "dist" => MethodConfig::Dist(parse_params(&rest, key)?),
        "logit_standardized_kd" => MethodConfig::LogitStandardizedKd(parse_params(&rest, key)?),
        "attention_transfer" => MethodConfig::AttentionTransfer(parse_params(&rest, key)?),
        "similarity_preserving" => {
            if let Some((k, _)) = rest.iter().next() {
                return Err(RecipeError::invalid(
                    key,
                    format!("similarity_preserving has no parameters, got {k:?}"),
                ));
            }
            MethodConfig::SimilarityPreserving(Default::default())
        }
        "rkd" => MethodConfig::Rkd(parse_params(&rest, key)?),
        "pkt" => MethodConfig::Pkt(parse_params(&rest, key)?),
        "nst" => MethodConfig::Nst(parse_params(&rest, key)?),
        "correlation_congruence" => MethodConfig::CorrelationCongruence(parse_params(&rest, key)?),
        "fitnets" => MethodConfig::FitNets(parse_params(&rest, key)?),
        "vid" => MethodConfig::Vid(parse_params(&rest, key)?),
        "crd" => {
            let mut config: CrdLossConfig = parse_params(&rest, key)?;
            if config.n_data.is_none() && config.memory == CrdMemory::Bank {
                config.n_data = Some(n_data);
            }
            MethodConfig::Crd(config)
        }
        "review_kd" => MethodConfig::ReviewKd(parse_params(&rest, key)?),
        other => {
            return Err(RecipeError::invalid(
                &format!("{key}.name"),
                format!(
                    "unknown term `{other}`{}; known: {}",
                    did_you_mean(other, TERM_NAMES),
                    TERM_NAMES.join(", ")
                ),
            ));
        }
    };
    Ok(TermConfig {
        method,
        weight,
        student_taps,
        teacher_taps,
    })
}

/// Per-sample shapes of `taps` (and of the logits), from one eval forward pass on zeros.
pub fn tap_shapes(
    net: &Network,
    taps: &[String],
    input: [usize; 3],
    key: &str,
    device: &Device,
) -> Result<TapShapes, RecipeError> {
    let available = net.tap_names();
    let wanted: Vec<&str> = taps.iter().map(String::as_str).collect();
    let mut with_logits = available.clone();
    with_logits.push(LOGITS_TAP);
    check_taps(&with_logits, &wanted).map_err(|e| RecipeError::invalid(key, e.to_string()))?;
    let [c, h, w] = input;
    let probe = net.valid();
    let (logits, features) =
        probe.forward_with_taps(Tensor::<4>::zeros([2, c, h, w], device), &wanted);
    let mut shapes: TapShapes = taps
        .iter()
        .zip(features)
        .map(|(name, f)| (name.clone(), Feature::dims(&f)[1..].to_vec()))
        .collect();
    shapes.push((LOGITS_TAP.to_string(), logits.dims()[1..].to_vec()));
    Ok(shapes)
}

/// Checks the terms against both networks and builds the loss on `device`.
pub fn build_distillation_loss(
    config: &DistillationLossConfig,
    student: &Network,
    teacher: &Network,
    input: [usize; 3],
    section: &str,
    device: &Device,
) -> Result<DistillationLoss, RecipeError> {
    let key = format!("{section}.criterion_params.terms");
    let student_shapes = tap_shapes(
        student,
        &config.student_taps(),
        input,
        &format!("{key} (student_tap)"),
        device,
    )?;
    let teacher_shapes = tap_shapes(
        teacher,
        &config.teacher_taps(),
        input,
        &format!("{key} (teacher_tap)"),
        device,
    )?;
    config
        .init(&student_shapes, &teacher_shapes, device)
        .map_err(|e| RecipeError::invalid(&format!("{section}.criterion_params"), e.to_string()))
}
