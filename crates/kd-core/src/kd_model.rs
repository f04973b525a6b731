use burn::module::Module;
use burn::prelude::*;

use std::sync::Arc;

use burn::tensor::FloatDType;

use crate::teacher_cache::Plan;
use crate::{
    Feature, ImageClassifier, InputAdapter, KdError, KdOutput, Precision, TeacherCache, cast_module,
};

/// A module that runs a student and a frozen teacher on the same batch.
///
/// [`KdModel`] is the default implementation. Implement this trait for a custom module to
/// distil intermediate features: return them in [`KdOutput`] and pair the module with a
/// [`crate::Criterion`] that reads them (see `examples/custom-kd-module`).
///
/// Contract: the teacher never receives gradients. Feed it `x.without_autodiff()` and keep its
/// parameters on the plain device (build it with [`Module::valid`]).
pub trait KdModule: Module {
    /// The student's output type (logits, or logits plus features).
    type StudentOutput;
    /// The teacher's output type.
    type TeacherOutput;
    /// The student network, saved alone in `ckpt_best`.
    type Student: ImageClassifier;

    /// Runs both networks on `x`.
    fn forward(&self, x: Tensor<4>) -> KdOutput<Self::StudentOutput, Self::TeacherOutput>;

    /// Runs both networks on a training batch whose dataset indices are `indices` (`[batch]`).
    /// The default ignores them; [`KdModel`] reads its teacher cache with them.
    fn forward_indexed(
        &self,
        x: Tensor<4>,
        indices: &Tensor<1, Int>,
    ) -> KdOutput<Self::StudentOutput, Self::TeacherOutput> {
        let _ = indices;
        self.forward(x)
    }

    /// Runs both networks on a validation batch whose indices in the validation set are
    /// `indices`. The default ignores them; [`KdModel`] reads its validation cache with them.
    fn forward_validation(
        &self,
        x: Tensor<4>,
        indices: &Tensor<1, Int>,
    ) -> KdOutput<Self::StudentOutput, Self::TeacherOutput> {
        let _ = indices;
        self.forward(x)
    }

    /// The logits of a student output, on which metrics are computed.
    fn student_logits(output: &Self::StudentOutput) -> Tensor<2>;

    /// The student.
    fn student(&self) -> &Self::Student;
}

/// SuperGradients' `arch_params` for the default KD module: optional input adapters.
#[derive(Debug, Default)]
pub struct KdArchParams {
    /// Applied to the batch before the teacher sees it (frozen).
    pub teacher_input_adapter: Option<InputAdapter>,
    /// Applied to the batch before the student sees it.
    pub student_input_adapter: Option<InputAdapter>,
}

/// The default KD module (SuperGradients' `KDModule`): a student, a frozen teacher and
/// optional input adapters.
///
/// Its record paths follow SuperGradients' state dict: `student.*`, `teacher.*`,
/// `teacher_input_adapter.*`, `student_input_adapter.*`.
///
/// The teacher is frozen: with `run_teacher_on_eval` (the default in kd and in both of
/// SuperGradients' recipes) it lives on the plain device in eval mode, so it costs no autodiff
/// bookkeeping and its BatchNorm uses running statistics. Without it, the teacher runs in
/// training mode as in SuperGradients: BatchNorm normalises with batch statistics (and updates
/// its running statistics, as PyTorch's train mode does) and dropout is active, but its
/// weights get no gradient.
///
/// [`KdModel::with_teacher_precision`] runs the teacher in bf16 or f16: its weights, its input
/// and its activations; its logits and taps are cast back to the student's float type before
/// any loss sees them.
#[derive(Module, Debug)]
pub struct KdModel<S, T> {
    /// The network being trained.
    pub student: S,
    /// The frozen teacher.
    pub teacher: T,
    /// Adapter applied to the teacher's input.
    pub teacher_input_adapter: Option<InputAdapter>,
    /// Adapter applied to the student's input.
    pub student_input_adapter: Option<InputAdapter>,
    /// Whether the teacher stays in eval mode during training.
    pub run_teacher_on_eval: bool,
    /// The teacher's precision when it is not the student's (see [`Self::with_teacher_precision`]).
    #[module(skip)]
    pub teacher_dtype: Option<FloatDType>,
    /// The teacher's logits per training sample (see [`Self::with_teacher_cache`]); clones
    /// share it.
    #[module(skip)]
    pub teacher_cache: Option<Arc<TeacherCache>>,
    /// The teacher's logits per validation sample (see [`Self::with_validation_cache`]).
    #[module(skip)]
    pub validation_cache: Option<Arc<TeacherCache>>,
}

impl<S: ImageClassifier, T: ImageClassifier> KdModel<S, T> {
    /// Assembles a KD module, checking that student and teacher predict the same classes.
    ///
    /// The student should live on an autodiff device; the teacher may live anywhere and is
    /// frozen here.
    pub fn new(
        student: S,
        teacher: T,
        arch_params: KdArchParams,
        run_teacher_on_eval: bool,
    ) -> Result<Self, KdError> {
        let (s, t) = (student.num_classes(), teacher.num_classes());
        if s != t {
            return Err(KdError::ClassCountMismatch {
                student: s,
                teacher: t,
            });
        }
        let teacher = if run_teacher_on_eval {
            teacher.valid()
        } else {
            // Training mode on the autodiff device, but no parameter asks for a gradient.
            teacher.valid().train().no_grad()
        };
        let freeze = |a: Option<InputAdapter>| a.map(|a| a.valid());
        Ok(Self {
            student,
            teacher,
            teacher_input_adapter: freeze(arch_params.teacher_input_adapter),
            student_input_adapter: arch_params.student_input_adapter.map(|a| a.no_grad()),
            run_teacher_on_eval,
            teacher_dtype: None,
            teacher_cache: None,
            validation_cache: None,
        })
    }

    /// Runs the teacher in `precision`: casts its weights and BatchNorm statistics now, and
    /// its input on every batch; logits and taps come back in the input's float type.
    /// Fails when the teacher's backend cannot compute in that precision.
    pub fn with_teacher_precision(mut self, precision: Precision) -> Result<Self, KdError> {
        if precision == Precision::F32 {
            return Ok(self);
        }
        let device = self
            .teacher
            .devices()
            .into_iter()
            .next()
            .unwrap_or_default();
        precision.check(&device)?;
        let dtype = precision.dtype();
        self.teacher = cast_module(self.teacher, dtype);
        self.teacher_dtype = Some(dtype);
        Ok(self)
    }

    /// Serves the teacher's logits on training batches from `cache` once every sample of the
    /// batch has been seen ([`KdModule::forward_indexed`]). Exact only when each sample's image
    /// is the same on every visit; the trainer checks the data. Fails for a teacher in
    /// training mode, whose output is not a function of its input.
    pub fn with_teacher_cache(mut self, cache: TeacherCache) -> Result<Self, KdError> {
        self.teacher_cache = Some(self.eval_cache(cache)?);
        Ok(self)
    }

    /// `cache`, shareable, when the teacher is deterministic (eval mode).
    fn eval_cache(&self, cache: TeacherCache) -> Result<Arc<TeacherCache>, KdError> {
        if self.run_teacher_on_eval {
            Ok(Arc::new(cache))
        } else {
            Err(KdError::CacheNeedsEvalTeacher)
        }
    }

    /// The teacher cache, when one is on.
    pub fn teacher_cache(&self) -> Option<&TeacherCache> {
        self.teacher_cache.as_deref()
    }

    /// Serves the teacher's logits on validation batches from `cache` once every sample of
    /// the batch has been seen ([`KdModule::forward_validation`]): the same contract as
    /// [`Self::with_teacher_cache`], for the validation set, whose inputs rarely vary.
    pub fn with_validation_cache(mut self, cache: TeacherCache) -> Result<Self, KdError> {
        self.validation_cache = Some(self.eval_cache(cache)?);
        Ok(self)
    }

    /// The validation cache, when one is on.
    pub fn validation_cache(&self) -> Option<&TeacherCache> {
        self.validation_cache.as_deref()
    }

    /// The cache for training (`true`) or validation batches.
    fn cache(&self, training: bool) -> Option<&TeacherCache> {
        if training {
            self.teacher_cache.as_deref()
        } else {
            self.validation_cache.as_deref()
        }
    }

    /// Both networks on `x`, the teacher's logits from `cache` when it knows every sample.
    fn forward_cached(
        &self,
        x: Tensor<4>,
        indices: &Tensor<1, Int>,
        cache: Option<&TeacherCache>,
    ) -> KdOutput<Tensor<2>> {
        let Some(cache) = cache else {
            return KdModule::forward(self, x);
        };
        let dtype = x.dtype();
        let (student_x, teacher_x) = self.inputs(x);
        KdOutput {
            student_output: self.student.forward(student_x),
            teacher_output: self.cached_teacher_logits(cache, teacher_x, dtype, indices),
        }
    }

    /// The teacher's logits on `x`, in `dtype`, detached.
    fn teacher_logits(&self, teacher_x: Tensor<4>, dtype: burn::tensor::DType) -> Tensor<2> {
        self.teacher.forward(teacher_x).detach().cast(dtype)
    }

    /// The teacher's logits on `teacher_x` for the samples `indices`, from `cache` when it
    /// knows them all (stored or verified otherwise).
    fn cached_teacher_logits(
        &self,
        cache: &TeacherCache,
        teacher_x: Tensor<4>,
        dtype: burn::tensor::DType,
        indices: &Tensor<1, Int>,
    ) -> Tensor<2> {
        let ids: Vec<usize> = indices
            .clone()
            .into_data()
            .convert::<i64>()
            .iter::<i64>()
            .map(|i| i as usize)
            .collect();
        let classes = self.teacher.num_classes();
        let rows = |t: &Tensor<2>| -> Vec<f32> {
            t.clone()
                .into_data()
                .convert::<f32>()
                .try_into_vec::<f32>()
                .unwrap_or_default()
        };
        match cache.plan(&ids) {
            Plan::Cached(cached) => {
                let device = teacher_x.device();
                Tensor::<2>::from_data(TensorData::new(cached, [ids.len(), classes]), &device)
                    .cast(dtype)
            }
            Plan::Verify(cached) => {
                let fresh = self.teacher_logits(teacher_x, dtype);
                cache.verified(&cached, &rows(&fresh));
                fresh
            }
            Plan::Compute => {
                let fresh = self.teacher_logits(teacher_x, dtype);
                cache.store(&ids, &rows(&fresh), classes);
                fresh
            }
        }
    }

    /// [`Self::forward_with_taps`] on a training (`training`) or validation batch whose
    /// indices in its dataset are `indices`: when that split's cache is on and no teacher tap
    /// is asked for, the teacher's logits come from the cache (see
    /// [`Self::with_teacher_cache`], [`Self::with_validation_cache`]).
    pub fn forward_with_taps_indexed(
        &self,
        x: Tensor<4>,
        student_taps: &[&str],
        teacher_taps: &[&str],
        indices: &Tensor<1, Int>,
        training: bool,
    ) -> KdOutput<(Tensor<2>, Vec<Feature>)> {
        match self.cache(training) {
            Some(cache) if teacher_taps.is_empty() => {
                let dtype = x.dtype();
                let (student_x, teacher_x) = self.inputs(x);
                let logits = self.cached_teacher_logits(cache, teacher_x, dtype, indices);
                KdOutput {
                    student_output: self.student.forward_with_taps(student_x, student_taps),
                    teacher_output: (logits, Vec::new()),
                }
            }
            _ => self.forward_with_taps(x, student_taps, teacher_taps),
        }
    }

    /// The teacher's precision.
    pub fn teacher_precision(&self) -> Precision {
        match self.teacher_dtype {
            Some(FloatDType::BF16) => Precision::Bf16,
            Some(FloatDType::F16) => Precision::F16,
            _ => Precision::F32,
        }
    }
}

impl<S: ImageClassifier, T: ImageClassifier> KdModule for KdModel<S, T> {
    type StudentOutput = Tensor<2>;
    type TeacherOutput = Tensor<2>;
    type Student = S;

    fn forward(&self, x: Tensor<4>) -> KdOutput<Tensor<2>> {
        let dtype = x.dtype();
        let (student_x, teacher_x) = self.inputs(x);
        let teacher_output = self.teacher_logits(teacher_x, dtype);
        let student_output = self.student.forward(student_x);
        KdOutput {
            student_output,
            teacher_output,
        }
    }

    fn forward_indexed(&self, x: Tensor<4>, indices: &Tensor<1, Int>) -> KdOutput<Tensor<2>> {
        self.forward_cached(x, indices, self.cache(true))
    }

    fn forward_validation(&self, x: Tensor<4>, indices: &Tensor<1, Int>) -> KdOutput<Tensor<2>> {
        self.forward_cached(x, indices, self.cache(false))
    }

    fn student_logits(output: &Tensor<2>) -> Tensor<2> {
        output.clone()
    }

    fn student(&self) -> &S {
        &self.student
    }
}

impl<S: ImageClassifier, T: ImageClassifier> KdModel<S, T> {
    /// The student's and the teacher's inputs, after their adapters. The teacher's input is
    /// untracked, so nothing the teacher computes is recorded.
    fn inputs(&self, x: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let teacher_x = if self.run_teacher_on_eval {
            x.clone().without_autodiff()
        } else {
            // The batch is an untracked leaf: nothing the teacher computes is recorded.
            x.clone().detach()
        };
        let teacher_x = match &self.teacher_input_adapter {
            Some(a) => a.forward(teacher_x),
            None => teacher_x,
        };
        let teacher_x = match self.teacher_dtype {
            Some(dtype) => teacher_x.cast(dtype),
            None => teacher_x,
        };
        let student_x = match &self.student_input_adapter {
            Some(a) => a.forward(x),
            None => x,
        };
        (student_x, teacher_x)
    }

    /// Both networks' logits plus the requested feature taps, from one forward pass each;
    /// the teacher's outputs are detached. Tap names must have been checked with
    /// [`crate::check_taps`] when the run was built.
    pub fn forward_with_taps(
        &self,
        x: Tensor<4>,
        student_taps: &[&str],
        teacher_taps: &[&str],
    ) -> KdOutput<(Tensor<2>, Vec<Feature>)> {
        let dtype = x.dtype();
        let (student_x, teacher_x) = self.inputs(x);
        let (teacher_logits, teacher_features) =
            self.teacher.forward_with_taps(teacher_x, teacher_taps);
        let teacher_features = teacher_features
            .into_iter()
            .map(|f| f.detach().cast(dtype.into()))
            .collect();
        let student_output = self.student.forward_with_taps(student_x, student_taps);
        KdOutput {
            student_output,
            teacher_output: (teacher_logits.detach().cast(dtype), teacher_features),
        }
    }
}
