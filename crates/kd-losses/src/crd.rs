use burn::module::{Module, RunningState};
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::{Distribution, IndexingUpdateOp};

use crate::LossError;

/// The `eps` of the paper code's NCE loss (`ContrastLoss`).
const NCE_EPS: f64 = 1e-7;

/// Where a [`CrdLoss`] keeps the embeddings it contrasts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CrdMemory {
    /// The paper's memory banks: one row per training sample and side, `[n_data, feat_dim]`
    /// each, momentum-updated at the batch's sample indices; `nce_k` negatives are drawn
    /// uniformly per sample. Needs `n_data` and the loader's sample indices.
    #[default]
    Bank,
    /// A bounded, MoCo-style memory: a FIFO queue of the last `queue_size` embeddings of each
    /// side, all used as negatives. The positive of a student embedding is the teacher's
    /// embedding of the same sample in the batch (and vice versa); sample indices are not
    /// needed. For datasets too large for two `[n_data, feat_dim]` banks.
    Queue,
}

/// Configuration of a [`CrdLoss`], with the paper's names and defaults (RepDistiller's `opt`).
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CrdLossConfig {
    /// Embedding size of both heads and memory rows. Default: 128.
    pub feat_dim: usize,
    /// Negatives per sample in bank mode. Default: 16384; clipped to `n_data − 1` at
    /// [`init`](Self::init) (a bank of `n_data` rows has no more distinct negatives).
    pub nce_k: usize,
    /// Temperature `τ` of the scores `exp(⟨v, m⟩ / τ)`. Default: 0.07.
    pub nce_t: f64,
    /// Momentum of the bank update, `m ← normalize(nce_m·m + (1 − nce_m)·v)`, in `[0, 1)`.
    /// Default: 0.5.
    pub nce_m: f64,
    /// Number of training samples, the number of bank rows; the loader's sample indices must be
    /// below it. Required in bank mode, unused in queue mode. Default: unset.
    pub n_data: Option<usize>,
    /// Memory banks (the paper) or FIFO queues. Default: [`CrdMemory::Bank`].
    pub memory: CrdMemory,
    /// Rows of each queue in queue mode. Default: 16384 (the paper's `nce_k`).
    pub queue_size: usize,
}

impl Default for CrdLossConfig {
    fn default() -> Self {
        Self {
            feat_dim: 128,
            nce_k: 16384,
            nce_t: 0.07,
            nce_m: 0.5,
            n_data: None,
            memory: CrdMemory::Bank,
            queue_size: 16384,
        }
    }
}

impl CrdLossConfig {
    /// The paper's defaults (`n_data` still has to be set for the memory banks).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the embedding size.
    pub fn with_feat_dim(mut self, feat_dim: usize) -> Self {
        self.feat_dim = feat_dim;
        self
    }

    /// Sets the number of negatives per sample (bank mode).
    pub fn with_nce_k(mut self, nce_k: usize) -> Self {
        self.nce_k = nce_k;
        self
    }

    /// Sets the temperature.
    pub fn with_nce_t(mut self, nce_t: f64) -> Self {
        self.nce_t = nce_t;
        self
    }

    /// Sets the momentum of the bank update.
    pub fn with_nce_m(mut self, nce_m: f64) -> Self {
        self.nce_m = nce_m;
        self
    }

    /// Sets the number of training samples (bank rows).
    pub fn with_n_data(mut self, n_data: Option<usize>) -> Self {
        self.n_data = n_data;
        self
    }

    /// Chooses memory banks or FIFO queues.
    pub fn with_memory(mut self, memory: CrdMemory) -> Self {
        self.memory = memory;
        self
    }

    /// Sets the number of rows of each queue (queue mode).
    pub fn with_queue_size(mut self, queue_size: usize) -> Self {
        self.queue_size = queue_size;
        self
    }

    /// Checks the configuration and the shapes, and builds the loss with its embedding heads and
    /// memories on `device` (the training device, so that the optimizer trains the heads).
    ///
    /// `student` and `teacher` are per-sample shapes `[D_s]` and `[D_t]` (pooled embeddings).
    /// `feat_dim`, `nce_k` and `queue_size` must be positive, `nce_t` positive and finite,
    /// `nce_m` in `[0, 1)`; bank mode needs `n_data ≥ 2`, and clips `nce_k` to `n_data − 1`.
    /// The memories start uniform in `[−stdv, stdv]`, `stdv = 1/sqrt(feat_dim/3)`, drawn with
    /// Burn's RNG on `device` (seed it with `Device::seed` for reproducible runs).
    pub fn init(
        &self,
        student: &[usize],
        teacher: &[usize],
        device: &Device,
    ) -> Result<CrdLoss, LossError> {
        let hyper = |key: &str, value: f64, requirement: &str| LossError::InvalidValue {
            key: key.into(),
            value,
            expected: requirement.into(),
        };
        if self.feat_dim == 0 {
            return Err(hyper("feat_dim", 0.0, "positive: the paper uses 128"));
        }
        if self.nce_k == 0 {
            return Err(hyper("nce_k", 0.0, "positive: the paper uses 16384"));
        }
        if !(self.nce_t > 0.0 && self.nce_t.is_finite()) {
            return Err(hyper(
                "nce_t",
                self.nce_t,
                "positive and finite: the paper uses 0.07",
            ));
        }
        if !(0.0..1.0).contains(&self.nce_m) {
            return Err(hyper("nce_m", self.nce_m, "in [0, 1): the paper uses 0.5"));
        }
        let (rows, nce_k) = match self.memory {
            CrdMemory::Bank => match self.n_data {
                None => {
                    return Err(LossError::Missing {
                        key: "n_data".into(),
                        hint: "set it to the number of training samples (the loader's sample indices must be below it), or use the queue memory".into(),
                    });
                }
                Some(n) if n < 2 => {
                    return Err(hyper(
                        "n_data",
                        n as f64,
                        "at least 2 so that a sample has a negative: set it to the number of training samples",
                    ));
                }
                Some(n) => (n, self.nce_k.min(n - 1)),
            },
            CrdMemory::Queue => {
                if self.queue_size == 0 {
                    return Err(hyper(
                        "queue_size",
                        0.0,
                        "positive: use a value such as 16384",
                    ));
                }
                (self.queue_size, self.nce_k)
            }
        };
        let (d_s, d_t) = match (student, teacher) {
            (&[d_s], &[d_t]) if d_s > 0 && d_t > 0 => (d_s, d_t),
            _ => {
                return Err(LossError::IncompatibleShapes {
                    loss: "crd".into(),
                    key: "features".into(),
                    student: student.to_vec(),
                    teacher: teacher.to_vec(),
                    reason: "CRD embeds pooled feature vectors [D] with positive sizes: tap the pooled features (before the classifier) of both networks".into(),
                });
            }
        };
        let stdv = 1.0 / (self.feat_dim as f64 / 3.0).sqrt();
        let memory = || {
            RunningState::new(Tensor::<2>::random(
                [rows, self.feat_dim],
                Distribution::Uniform(-stdv, stdv),
                device,
            ))
        };
        Ok(CrdLoss {
            embed_s: LinearConfig::new(d_s, self.feat_dim).init(device),
            embed_t: LinearConfig::new(d_t, self.feat_dim).init(device),
            student_memory: memory(),
            teacher_memory: memory(),
            z: RunningState::new(Tensor::from_floats([-1.0, -1.0], device)),
            nce_k,
            nce_t: self.nce_t,
            nce_m: self.nce_m,
            n_data: self.n_data,
            queue: self.memory == CrdMemory::Queue,
        })
    }
}

/// Contrastive Representation Distillation: a noise-contrastive estimate of the mutual
/// information between the student's and the teacher's embeddings, each side contrasted with
/// positives and negatives kept in memory.
///
/// ```text
/// v_s = normalize(W_s f_s + b_s),  v_t = normalize(W_t f_t + b_t)        (L2, feat_dim)
/// out_s[b, j] = exp(⟨M_t[i_bj], v_s[b]⟩ / τ),  out_t[b, j] = exp(⟨M_s[i_bj], v_t[b]⟩ / τ)
///   i_b0 = the sample's own index (positive), i_b1..i_bK = K negatives
/// P = out / Z,  with Z = mean(out)·N set on the first batch and kept (one Z per side)
/// nce(P) = −(1/B)·[ Σ_b log(P_b0 / (P_b0 + K/N + ε)) + Σ_b Σ_j>0 log((K/N) / (P_bj + K/N + ε)) ]
/// loss = nce(P_s) + nce(P_t)          (ε = 1e-7, N = n_data)
/// then, for each side, M[i_b0] ← normalize(nce_m·M[i_b0] + (1 − nce_m)·v[b])
/// ```
///
/// Tian, Krishnan and Isola, "Contrastive Representation Distillation" (ICLR 2020,
/// <https://arxiv.org/abs/1910.10699>). Defaults and conventions of the paper's code
/// (RepDistiller's `CRDLoss`, `ContrastMemory`, `ContrastLoss`): `feat_dim = 128`,
/// `nce_k = 16384`, `τ = 0.07`, momentum 0.5, `Z` estimated once per side from the first
/// batch's scores (positives and negatives) and then kept, memories drawn uniform in
/// `[−1/sqrt(feat_dim/3), 1/sqrt(feat_dim/3)]`. Negatives are drawn uniformly (the memory's own
/// sampler, which may draw the positive itself with probability 1/N); the paper's CIFAR loader
/// instead supplies negatives from other classes, which [`CrdLoss::forward_with_negatives`]
/// accepts. Indices within a batch must be distinct (as any sampler without replacement gives
/// them), since a row is written once per step.
///
/// In [queue mode](CrdMemory::Queue) the memories are FIFO queues of the last `Q` embeddings;
/// the positive of `v_s[b]` is `v_t[b]` (detached) and vice versa, the negatives are the whole
/// other-side queue, `N = Q`, and after the loss each side's embeddings (detached) enter the
/// front of its queue while the oldest rows leave.
///
/// # State
/// The embedding heads are the trainable parts. The memories and `Z` are not optimised but are
/// module state: [`RunningState`]s, recorded by `into_record`, restored by `load_record`, and
/// written by every forward. `RunningState::update` only parks a value for the current thread,
/// and `into_record`'s visitor reads the shared value without folding parked updates in; so
/// each forward calls `update` and then `value_sync`, which folds it in at once: the next
/// forward and the next `into_record` see it (both tested). Clones share the state. With one
/// replica per thread sharing a memory, parked updates of different threads would be averaged;
/// give each data-parallel replica its own loss (its own memory), as the paper's code does.
///
/// The teacher's features are detached; they may live on the plain device. The result is the
/// sum of both directions, without a recipe weight (the paper's CIFAR recipe weights it 0.8).
///
/// # Shapes
/// - student: `[batch, D_s]`; teacher: `[batch, D_t]`, the per-sample shapes given to
///   [`CrdLossConfig::init`]
/// - indices: `[batch]` dataset sample indices (bank mode); negatives: `[batch, K]`
/// - loss: `[1]`
#[derive(Module, Debug)]
pub struct CrdLoss {
    embed_s: Linear,
    embed_t: Linear,
    student_memory: RunningState<Tensor<2>>,
    teacher_memory: RunningState<Tensor<2>>,
    z: RunningState<Tensor<1>>,
    nce_k: usize,
    nce_t: f64,
    nce_m: f64,
    n_data: Option<usize>,
    queue: bool,
}

/// The parts of a CRD loss, each of shape `[1]` except `z`.
#[derive(Debug, Clone)]
pub struct CrdParts {
    /// `student + teacher`, with the gradient.
    pub loss: Tensor<1>,
    /// The NCE loss of the student's embeddings against the teacher's memory.
    pub student: Tensor<1>,
    /// The NCE loss of the teacher's embeddings against the student's memory.
    pub teacher: Tensor<1>,
    /// The normalisation constants used, `[Z_s, Z_t]` (`[2]`, detached).
    pub z: Tensor<1>,
}

impl CrdLoss {
    /// The memory mode.
    pub fn memory(&self) -> CrdMemory {
        if self.queue {
            CrdMemory::Queue
        } else {
            CrdMemory::Bank
        }
    }

    /// Negatives per sample in bank mode, after clipping to `n_data − 1`.
    pub fn nce_k(&self) -> usize {
        self.nce_k
    }

    /// `N` of the noise distribution: `n_data` in bank mode, the queue size in queue mode.
    pub fn n_noise(&self) -> usize {
        self.student_memory.value().dims()[0]
    }

    /// The student's memory (bank or queue), `[N, feat_dim]`.
    pub fn student_memory(&self) -> Tensor<2> {
        self.student_memory.value_sync()
    }

    /// The teacher's memory (bank or queue), `[N, feat_dim]`.
    pub fn teacher_memory(&self) -> Tensor<2> {
        self.teacher_memory.value_sync()
    }

    /// The normalisation constants `[Z_s, Z_t]`; negative until the first forward sets them.
    pub fn normalization(&self) -> Tensor<1> {
        self.z.value_sync()
    }

    /// The L2-normalised embeddings `(v_s, v_t)`, `[batch, feat_dim]` each; the teacher's
    /// features are detached first.
    pub fn embed(&self, student: Tensor<2>, teacher: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        (
            l2_normalize(self.embed_s.forward(student)),
            l2_normalize(self.embed_t.forward(teacher.detach())),
        )
    }

    /// `nce_k` negative indices per sample, uniform over the bank rows `[0, N)`, drawn with
    /// Burn's RNG on `device` (deterministic under `Device::seed`).
    pub fn sample_negatives(&self, batch: usize, device: &Device) -> Tensor<2, Int> {
        let n = self.n_noise();
        Tensor::<2, Int>::random(
            [batch, self.nce_k],
            Distribution::Uniform(0.0, n as f64),
            device,
        )
        // A float-based sampler may round up to the excluded bound.
        .clamp(0, n as i64 - 1)
    }

    /// The loss, updating the memories (and `Z` on the first batch).
    ///
    /// Bank mode draws `nce_k` negatives per sample ([`sample_negatives`](Self::sample_negatives))
    /// and contrasts against the rows of `indices` (the dataset sample indices of the batch,
    /// distinct and below `n_data`). Queue mode contrasts against the whole queues and ignores
    /// `indices`.
    pub fn forward(
        &self,
        student: Tensor<2>,
        teacher: Tensor<2>,
        indices: Tensor<1, Int>,
    ) -> Tensor<1> {
        let (v_s, v_t) = self.embed(student, teacher);
        let z = self.z.value_sync();
        let parts = if self.queue {
            crd_queue_loss(
                v_s.clone(),
                v_t.clone(),
                self.student_memory.value_sync(),
                self.teacher_memory.value_sync(),
                z,
                self.nce_t,
            )
        } else {
            let [batch, _] = v_s.dims();
            let negatives = self.sample_negatives(batch, &indices.device());
            self.bank_parts(v_s.clone(), v_t.clone(), indices.clone(), negatives, z)
        };
        self.update(v_s, v_t, indices, parts.z);
        parts.loss
    }

    /// The loss with given negatives, updating the memories (and `Z` on the first batch): for
    /// loaders that supply them (the paper's CIFAR loader draws them from other classes) and for
    /// tests.
    ///
    /// `negatives` `[batch, K]` index rows of the memories: bank rows below `n_data`, or queue
    /// rows below `queue_size` in queue mode (whose positives are still the batch's other-side
    /// embeddings and which then ignores `indices`).
    pub fn forward_with_negatives(
        &self,
        student: Tensor<2>,
        teacher: Tensor<2>,
        indices: Tensor<1, Int>,
        negatives: Tensor<2, Int>,
    ) -> Tensor<1> {
        let (v_s, v_t) = self.embed(student, teacher);
        let z = self.z.value_sync();
        let parts = if self.queue {
            let [batch, k] = negatives.dims();
            let [_, dim] = v_s.dims();
            let flat = negatives.reshape([batch * k]);
            let keys = |positive: Tensor<2>, queue: Tensor<2>| {
                let negatives = queue.detach().select(0, flat.clone());
                Tensor::cat(
                    vec![
                        positive.detach().unsqueeze_dim(1),
                        negatives.reshape([batch, k, dim]),
                    ],
                    1,
                )
            };
            let keys_t = keys(v_t.clone(), self.teacher_memory.value_sync());
            let keys_s = keys(v_s.clone(), self.student_memory.value_sync());
            crd_nce_loss(
                key_logits(v_s.clone(), keys_t),
                key_logits(v_t.clone(), keys_s),
                z,
                self.nce_t,
                self.n_noise(),
            )
        } else {
            self.bank_parts(v_s.clone(), v_t.clone(), indices.clone(), negatives, z)
        };
        self.update(v_s, v_t, indices, parts.z);
        parts.loss
    }

    fn bank_parts(
        &self,
        v_s: Tensor<2>,
        v_t: Tensor<2>,
        indices: Tensor<1, Int>,
        negatives: Tensor<2, Int>,
        z: Tensor<1>,
    ) -> CrdParts {
        crd_bank_loss(
            v_s,
            v_t,
            self.student_memory.value_sync(),
            self.teacher_memory.value_sync(),
            indices,
            negatives,
            z,
            self.nce_t,
        )
    }

    /// Writes the step's memories and `Z` into the running states.
    fn update(&self, v_s: Tensor<2>, v_t: Tensor<2>, indices: Tensor<1, Int>, z: Tensor<1>) {
        let (student_memory, teacher_memory) = if self.queue {
            (
                crd_queue_update(self.student_memory.value_sync(), v_s),
                crd_queue_update(self.teacher_memory.value_sync(), v_t),
            )
        } else {
            (
                crd_memory_update(
                    self.student_memory.value_sync(),
                    indices.clone(),
                    v_s,
                    self.nce_m,
                ),
                crd_memory_update(self.teacher_memory.value_sync(), indices, v_t, self.nce_m),
            )
        };
        store(&self.student_memory, student_memory);
        store(&self.teacher_memory, teacher_memory);
        store(&self.z, z);
    }
}

/// Replaces a running state's value so that the next read and the next record see it.
///
/// `update` parks the value for this thread; `value_sync` folds the parked value into the shared
/// one (see `burn-core`'s `RunningState`).
fn store<const D: usize>(state: &RunningState<Tensor<D>>, value: Tensor<D>) {
    state.update(value.detach());
    let _ = state.value_sync();
}

/// Row-wise L2 normalisation `x / ‖x‖₂` (no epsilon, as the paper's `Normalize`).
fn l2_normalize(x: Tensor<2>) -> Tensor<2> {
    let norm = x.clone().square().sum_dim(1).sqrt();
    x.div(norm)
}

/// `⟨keys[b, j], v[b]⟩`, `[batch, M]`, for keys `[batch, M, F]` and embeddings `[batch, F]`.
fn key_logits(v: Tensor<2>, keys: Tensor<3>) -> Tensor<2> {
    let [batch, dim] = v.dims();
    let [_, m, _] = keys.dims();
    keys.matmul(v.reshape([batch, dim, 1])).reshape([batch, m])
}

/// CRD's bank-mode loss as a function: gathers the positive (`indices`) and negative rows of the
/// memories, scores both directions and applies [`crd_nce_loss`] with `N = n_data` (the rows of
/// the memories).
///
/// `student` and `teacher` are the L2-normalised embeddings (the memories are constants);
/// `z = [Z_s, Z_t]`, where a negative entry is estimated from this batch.
///
/// # Shapes
/// - student, teacher: `[batch, F]`; memories: `[n_data, F]`
/// - indices: `[batch]`; negatives: `[batch, K]`; z: `[2]`
#[allow(clippy::too_many_arguments)]
pub fn crd_bank_loss(
    student: Tensor<2>,
    teacher: Tensor<2>,
    student_memory: Tensor<2>,
    teacher_memory: Tensor<2>,
    indices: Tensor<1, Int>,
    negatives: Tensor<2, Int>,
    z: Tensor<1>,
    nce_t: f64,
) -> CrdParts {
    let [n_data, dim] = student_memory.dims();
    let [batch, k] = negatives.dims();
    let rows = Tensor::cat(vec![indices.unsqueeze_dim(1), negatives], 1).reshape([batch * (k + 1)]);
    let gather = |memory: Tensor<2>| {
        memory
            .detach()
            .select(0, rows.clone())
            .reshape([batch, k + 1, dim])
    };
    crd_nce_loss(
        key_logits(student, gather(teacher_memory)),
        key_logits(teacher, gather(student_memory)),
        z,
        nce_t,
        n_data,
    )
}

/// CRD's queue-mode loss as a function: the positive of `student[b]` is `teacher[b]` (detached)
/// and vice versa, the negatives are all rows of the other side's queue, and `N = Q`.
///
/// # Shapes
/// - student, teacher: `[batch, F]` (L2-normalised); queues: `[Q, F]`; z: `[2]`
pub fn crd_queue_loss(
    student: Tensor<2>,
    teacher: Tensor<2>,
    student_queue: Tensor<2>,
    teacher_queue: Tensor<2>,
    z: Tensor<1>,
    nce_t: f64,
) -> CrdParts {
    let [q, _] = student_queue.dims();
    let logits = |v: Tensor<2>, positive: Tensor<2>, queue: Tensor<2>| {
        let pos = v.clone().mul(positive.detach()).sum_dim(1);
        let neg = v.matmul(queue.detach().transpose());
        Tensor::cat(vec![pos, neg], 1)
    };
    crd_nce_loss(
        logits(student.clone(), teacher.clone(), teacher_queue),
        logits(teacher, student, student_queue),
        z,
        nce_t,
        q,
    )
}

/// The NCE loss of CRD from the dot products of each side's embeddings with its keys (column 0
/// the positive, the rest `K` negatives), as the paper's `ContrastMemory` and `ContrastLoss`.
///
/// `out = exp(logits / τ)`; each entry of `z = [Z_s, Z_t]` that is negative is replaced by
/// `mean(out)·n_noise` of its side (the paper's first-batch estimate); `P = out / Z` and the loss
/// of a side is `−(1/B)·[Σ log(P₀/(P₀ + K/N + ε)) + Σ log((K/N)/(P_j + K/N + ε))]` with
/// `N = n_noise`, `ε = 1e-7`. `Z` carries no gradient.
///
/// # Shapes
/// - student and teacher logits: `[batch, 1 + K]`; z: `[2]`
pub fn crd_nce_loss(
    student_logits: Tensor<2>,
    teacher_logits: Tensor<2>,
    z: Tensor<1>,
    nce_t: f64,
    n_noise: usize,
) -> CrdParts {
    let out_s = student_logits.div_scalar(nce_t).exp();
    let out_t = teacher_logits.div_scalar(nce_t).exp();
    let estimate = Tensor::cat(vec![out_s.clone().mean(), out_t.clone().mean()], 0)
        .mul_scalar(n_noise as f64)
        .detach();
    let z = z.detach();
    let z = z.clone().mask_where(z.lower_elem(0.0), estimate);
    let z_side = |i: usize| z.clone().narrow(0, i, 1).reshape([1, 1]);
    let student = nce(out_s.div(z_side(0)), n_noise);
    let teacher = nce(out_t.div(z_side(1)), n_noise);
    CrdParts {
        loss: student.clone().add(teacher.clone()),
        student,
        teacher,
        z,
    }
}

/// The paper's `ContrastLoss` on normalised scores `P` `[batch, 1 + K]`.
fn nce(p: Tensor<2>, n_noise: usize) -> Tensor<1> {
    let [batch, cols] = p.dims();
    let m_pn = (cols - 1) as f64 / n_noise as f64;
    let pos = p.clone().narrow(1, 0, 1);
    let neg = p.narrow(1, 1, cols - 1);
    let log_d1 = pos.clone().div(pos.add_scalar(m_pn + NCE_EPS)).log();
    let log_d0 = neg
        .add_scalar(m_pn + NCE_EPS)
        .recip()
        .mul_scalar(m_pn)
        .log();
    log_d1
        .sum()
        .add(log_d0.sum())
        .div_scalar(batch as f64)
        .neg()
}

/// The bank update of the paper's `ContrastMemory`: the rows of `indices` become
/// `normalize(momentum·row + (1 − momentum)·embedding)`; the other rows are kept.
///
/// `indices` must be distinct. The embeddings are detached.
///
/// # Shapes
/// - memory: `[N, F]`; indices: `[batch]`; embeddings: `[batch, F]`; output: `[N, F]`
pub fn crd_memory_update(
    memory: Tensor<2>,
    indices: Tensor<1, Int>,
    embeddings: Tensor<2>,
    momentum: f64,
) -> Tensor<2> {
    let memory = memory.detach();
    let rows = memory.clone().select(0, indices.clone());
    let mixed = rows
        .mul_scalar(momentum)
        .add(embeddings.detach().mul_scalar(1.0 - momentum));
    memory.select_assign(0, indices, l2_normalize(mixed), IndexingUpdateOp::Assign)
}

/// The FIFO queue update: the embeddings (detached; the last `Q` of them if the batch is larger
/// than the queue) enter at the front, the oldest rows leave at the end.
///
/// # Shapes
/// - queue: `[Q, F]`; embeddings: `[batch, F]`; output: `[Q, F]`
pub fn crd_queue_update(queue: Tensor<2>, embeddings: Tensor<2>) -> Tensor<2> {
    let [q, _] = queue.dims();
    let [batch, _] = embeddings.dims();
    let keep = batch.min(q);
    let newest = embeddings.detach().narrow(0, batch - keep, keep);
    if keep == q {
        newest
    } else {
        Tensor::cat(vec![newest, queue.detach().narrow(0, 0, q - keep)], 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::golden::{
        self, StateDict, TensorJson, assert_scalar_close, assert_tensor_close, values,
    };
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct Fixture {
        feat_dim: usize,
        n_data: usize,
        nce_k: usize,
        nce_t: f64,
        nce_m: f64,
        queue_size: usize,
        student_dim: usize,
        teacher_dim: usize,
        modes: Vec<Mode>,
    }

    #[derive(Deserialize)]
    struct Mode {
        memory: String,
        weights: StateDict,
        steps: Vec<Step>,
    }

    #[derive(Deserialize)]
    struct Step {
        student: TensorJson,
        teacher: TensorJson,
        indices: TensorJson,
        negatives: TensorJson,
        loss: f64,
        grad: TensorJson,
        z: TensorJson,
        student_memory: TensorJson,
        teacher_memory: TensorJson,
    }

    impl Fixture {
        fn config(&self, memory: CrdMemory) -> CrdLossConfig {
            CrdLossConfig::new()
                .with_feat_dim(self.feat_dim)
                .with_nce_k(self.nce_k)
                .with_nce_t(self.nce_t)
                .with_nce_m(self.nce_m)
                .with_n_data(Some(self.n_data))
                .with_memory(memory)
                .with_queue_size(self.queue_size)
        }

        /// The fixture's loss for one mode, with the reference weights and memories.
        fn loss(&self, mode: &Mode, device: &Device) -> CrdLoss {
            let memory = match mode.memory.as_str() {
                "bank" => CrdMemory::Bank,
                _ => CrdMemory::Queue,
            };
            let loss = self
                .config(memory)
                .init(&[self.student_dim], &[self.teacher_dim], device)
                .unwrap();
            golden::load_state_dict(loss, &mode.weights)
        }
    }

    // Golden values: tests/fixtures/crd.json, written by tools/reference/loss_learnable.py
    // (PyTorch 2.9.0, float32; feat_dim 16, n_data 24, nce_k 5, queue 8, batch 6, D_s 10,
    // D_t 12), from RepDistiller's CRDLoss / ContrastMemory / ContrastLoss:
    //
    // ```python
    // def l2norm(x): return x / x.pow(2).sum(1, keepdim=True).pow(0.5)
    // def nce(p, n_noise):
    //     batch, k1 = p.shape; m_pn = (k1 - 1) / float(n_noise)
    //     log_d1 = torch.log(p[:, 0] / (p[:, 0] + m_pn + 1e-7))
    //     log_d0 = torch.log(m_pn / (p[:, 1:] + m_pn + 1e-7))
    //     return -(log_d1.sum() + log_d0.sum()) / batch
    // # forward(f_s, f_t, idx, neg):
    // v_s = l2norm(self.embed_s(f_s)); v_t = l2norm(self.embed_t(f_t.detach()))
    // if self.queue:   # positives: the other side's batch embedding; negatives: whole queue
    //     logit_s = cat([(v_s * v_t.detach()).sum(1, keepdim=True), v_s @ queue_t.t()], 1)
    //     logit_t = cat([(v_t * v_s.detach()).sum(1, keepdim=True), v_t @ queue_s.t()], 1)
    // else:
    //     rows = torch.cat([idx.view(-1, 1), neg], 1)
    //     w_t = index_select(self.teacher_memory, 0, rows.view(-1)).view(batch, k1, dim)
    //     logit_s = torch.bmm(w_t, v_s.view(batch, dim, 1)).squeeze(2)   # and logit_t
    // out_s = torch.exp(logit_s / self.nce_t); out_t = torch.exp(logit_t / self.nce_t)
    // if self.z[0] < 0: self.z[0] = out_s.mean() * n_noise        # and z[1] from out_t
    // loss = nce(out_s / self.z[0].item(), n_noise) + nce(out_t / self.z[1].item(), n_noise)
    // # no grad: queue: memory = cat([v[-keep:], memory[:n_noise - keep]]);
    // # bank: memory.index_copy_(0, idx, l2norm(memory[idx] * 0.5 + v * 0.5))
    // ```
    //
    // Two steps per mode from the same module: the second uses the memories the first wrote
    // and the Z it set.
    #[test]
    fn matches_pytorch_crd_over_two_steps_in_both_memory_modes() {
        let _rng = crate::test_rng::lock();
        let fixture: Fixture = golden::load("crd");
        let device = Device::flex();
        let train_device = device.clone().autodiff();
        let names: Vec<&str> = fixture.modes.iter().map(|m| m.memory.as_str()).collect();
        assert_eq!(names, ["bank", "queue"]);
        for mode in &fixture.modes {
            let loss = fixture.loss(mode, &train_device);
            assert_eq!(loss.nce_k(), fixture.nce_k);
            for (i, step) in mode.steps.iter().enumerate() {
                let what = format!("{} step {i}", mode.memory);
                let student = step.student.float::<2>(&train_device).require_grad();
                let teacher = step.teacher.float::<2>(&device);
                let indices = step.indices.int::<1>(&device);
                let value = match loss.memory() {
                    CrdMemory::Bank => loss.forward_with_negatives(
                        student.clone(),
                        teacher,
                        indices,
                        step.negatives.int(&device),
                    ),
                    CrdMemory::Queue => loss.forward(student.clone(), teacher, indices),
                };
                assert_scalar_close(value.clone(), step.loss, &format!("{what}: loss"));
                let grads = value.backward();
                let grad = student
                    .grad(&grads)
                    .expect("the student receives a gradient");
                assert_tensor_close(grad, &step.grad, &format!("{what}: gradient"));
                assert_tensor_close(loss.normalization(), &step.z, &format!("{what}: Z"));
                assert_tensor_close(
                    loss.student_memory(),
                    &step.student_memory,
                    &format!("{what}: student memory"),
                );
                assert_tensor_close(
                    loss.teacher_memory(),
                    &step.teacher_memory,
                    &format!("{what}: teacher memory"),
                );
            }
        }
    }

    #[test]
    fn memory_update_matches_pytorch_after_one_step() {
        let _rng = crate::test_rng::lock();
        let fixture: Fixture = golden::load("crd");
        let device = Device::flex();
        let mode = &fixture.modes[0];
        let step = &mode.steps[0];
        let loss = fixture.loss(mode, &device);
        let (v_s, v_t) = loss.embed(step.student.float(&device), step.teacher.float(&device));
        let indices = step.indices.int::<1>(&device);
        let updated_s =
            crd_memory_update(loss.student_memory(), indices.clone(), v_s, fixture.nce_m);
        let updated_t = crd_memory_update(loss.teacher_memory(), indices, v_t, fixture.nce_m);
        assert_tensor_close(updated_s, &step.student_memory, "student memory");
        assert_tensor_close(updated_t, &step.teacher_memory, "teacher memory");
    }

    #[test]
    fn pure_bank_loss_with_a_known_z_matches_the_first_step() {
        let _rng = crate::test_rng::lock();
        let fixture: Fixture = golden::load("crd");
        let device = Device::flex();
        let mode = &fixture.modes[0];
        let step = &mode.steps[0];
        let loss = fixture.loss(mode, &device);
        let (v_s, v_t) = loss.embed(step.student.float(&device), step.teacher.float(&device));
        let parts = crd_bank_loss(
            v_s,
            v_t,
            loss.student_memory(),
            loss.teacher_memory(),
            step.indices.int(&device),
            step.negatives.int(&device),
            step.z.float(&device),
            fixture.nce_t,
        );
        assert_scalar_close(parts.loss.clone(), step.loss, "loss with the known Z");
        let sum = values(parts.student)[0] + values(parts.teacher)[0];
        golden::assert_all_close(&[sum], &[step.loss], 0.0, "student + teacher");
        assert_tensor_close(parts.z, &step.z, "Z is kept");
    }

    #[test]
    fn updates_in_forward_reach_the_next_forward_and_the_record() {
        let _rng = crate::test_rng::lock();
        let device = Device::flex().autodiff();
        device.seed(11);
        let config = CrdLossConfig::new()
            .with_feat_dim(8)
            .with_nce_k(4)
            .with_n_data(Some(10));
        let loss = config.init(&[5], &[7], &device).unwrap();
        let before = values(loss.student_memory());
        let z_before = values(loss.normalization());
        assert_eq!(z_before, [-1.0, -1.0]);

        let student = Tensor::<2>::random([3, 5], Distribution::Default, &device).require_grad();
        let teacher = Tensor::<2>::random([3, 7], Distribution::Default, &device.clone().inner());
        let indices = Tensor::<1, Int>::from_ints([2, 5, 9], &device);
        let value = loss.forward(student, teacher, indices);
        let _ = value.backward();
        // The record is taken first, before any accessor could fold a parked update in.
        let record = loss.clone().into_record();

        // Rows 2, 5 and 9 changed (now unit vectors); the others did not; Z is set.
        let after = values(loss.student_memory());
        for row in 0..10 {
            let (old, new) = (&before[row * 8..row * 8 + 8], &after[row * 8..row * 8 + 8]);
            if [2, 5, 9].contains(&row) {
                assert_ne!(old, new, "row {row}");
                let norm: f64 = new.iter().map(|v| v * v).sum::<f64>().sqrt();
                assert!((norm - 1.0).abs() < 1e-5, "row {row}: norm {norm}");
            } else {
                assert_eq!(old, new, "row {row}");
            }
        }
        let z = values(loss.normalization());
        assert!(z.iter().all(|&v| v > 0.0), "{z:?}");

        // The record holds the updated state: a differently seeded loss loads it.
        device.seed(12);
        let other = config.init(&[5], &[7], &device).unwrap();
        assert_ne!(values(other.student_memory()), after);
        let other = other.load_record(record);
        assert_eq!(values(other.student_memory()), after);
        assert_eq!(
            values(other.teacher_memory()),
            values(loss.teacher_memory())
        );
        assert_eq!(values(other.normalization()), z);
        // And so does the eval copy.
        assert_eq!(values(loss.valid().student_memory()), after);
    }

    #[test]
    fn an_sgd_step_trains_the_heads_but_not_the_memories() {
        let _rng = crate::test_rng::lock();
        let device = Device::flex().autodiff();
        device.seed(6);
        let loss = CrdLossConfig::new()
            .with_feat_dim(8)
            .with_memory(CrdMemory::Queue)
            .with_queue_size(5)
            .init(&[5], &[7], &device)
            .unwrap();
        let student = Tensor::<2>::random([3, 5], Distribution::Default, &device);
        let teacher = Tensor::<2>::random([3, 7], Distribution::Default, &device.clone().inner());
        let head = values(loss.embed_s.weight.val());
        let value = loss.forward(student, teacher, Tensor::from_ints([0, 1, 2], &device));
        let memory = values(loss.student_memory());
        let (loss, with_grad) = golden::sgd_step(loss, value);
        // The weights and biases of both heads; the memories and Z are state, not parameters.
        assert_eq!(with_grad, 4);
        assert_ne!(values(loss.embed_s.weight.val()), head);
        assert_eq!(values(loss.student_memory()), memory);
    }

    #[test]
    fn negatives_are_drawn_in_range_and_reproducibly() {
        let _rng = crate::test_rng::lock();
        let device = Device::flex().autodiff();
        let config = CrdLossConfig::new().with_feat_dim(4).with_n_data(Some(7));
        let loss = config.init(&[3], &[3], &device).unwrap();
        // nce_k is clipped to n_data - 1.
        assert_eq!(loss.nce_k(), 6);
        assert_eq!(loss.n_noise(), 7);
        device.seed(5);
        let a = loss.sample_negatives(50, &device);
        assert_eq!(a.dims(), [50, 6]);
        let a = a
            .into_data()
            .convert::<i64>()
            .try_into_vec::<i64>()
            .unwrap();
        assert!(a.iter().all(|&i| (0..7).contains(&i)), "{a:?}");
        assert!((0..7).all(|i| a.contains(&i)), "every row is drawn");
        device.seed(5);
        let b = loss.sample_negatives(50, &device);
        assert_eq!(
            b.into_data()
                .convert::<i64>()
                .try_into_vec::<i64>()
                .unwrap(),
            a
        );

        // The whole loss is reproducible under a seed.
        let run = || {
            device.seed(9);
            let loss = config.init(&[3], &[3], &device).unwrap();
            let s = Tensor::<2>::random([4, 3], Distribution::Default, &device);
            let t = Tensor::<2>::random([4, 3], Distribution::Default, &device);
            values(loss.forward(s, t, Tensor::from_ints([0, 1, 2, 3], &device)))[0]
        };
        assert_eq!(run(), run());
    }

    #[test]
    fn queue_keeps_the_newest_rows() {
        let _rng = crate::test_rng::lock();
        let device = Device::flex();
        let queue = Tensor::<2>::from_floats([[1.0], [2.0], [3.0], [4.0]], &device);
        let batch = Tensor::<2>::from_floats([[10.0], [11.0]], &device);
        let q = crd_queue_update(queue, batch);
        assert_eq!(values(q.clone()), [10.0, 11.0, 1.0, 2.0]);
        let big = Tensor::<2>::from_floats([[20.0], [21.0], [22.0], [23.0], [24.0]], &device);
        assert_eq!(values(crd_queue_update(q, big)), [21.0, 22.0, 23.0, 24.0]);
    }

    #[test]
    fn rejects_bad_configurations_and_shapes() {
        let _rng = crate::test_rng::lock();
        let device = Device::flex().autodiff();
        let bank = CrdLossConfig::new().with_n_data(Some(100));
        let cases = [
            (bank.with_feat_dim(0), "feat_dim"),
            (bank.with_nce_k(0), "nce_k"),
            (bank.with_nce_t(0.0), "nce_t"),
            (bank.with_nce_t(f64::NAN), "nce_t"),
            (bank.with_nce_m(1.0), "nce_m"),
            (bank.with_nce_m(-0.1), "nce_m"),
            (bank.with_n_data(Some(1)), "n_data"),
            (bank.with_n_data(None), "n_data"),
            (
                CrdLossConfig::new()
                    .with_memory(CrdMemory::Queue)
                    .with_queue_size(0),
                "queue_size",
            ),
        ];
        for (config, key) in cases {
            let err = config.init(&[4], &[4], &device).unwrap_err();
            assert_eq!(err.key(), key, "{config:?}");
            let msg = err.to_string();
            assert!(msg.starts_with(&format!("`{key}` is ")), "{msg}");
            assert!(!msg.ends_with('.'), "{msg}");
        }
        // Queue mode needs no n_data.
        assert!(
            CrdLossConfig::new()
                .with_memory(CrdMemory::Queue)
                .init(&[4], &[4], &device)
                .is_ok()
        );
        let err = bank.init(&[4, 2, 2], &[4], &device).unwrap_err();
        assert_eq!(err.key(), "features");
        let msg = err.to_string();
        assert!(msg.contains("[4, 2, 2]") && msg.contains("pooled"), "{msg}");
    }
}
