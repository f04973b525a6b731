//! Computes SuperGradients' `KDLogitsLoss` on hand-made logits and prints its components.

use std::error::Error;
use std::process::ExitCode;

use burn::prelude::*;
use kd_losses::{Criterion, CrossEntropyLossConfig, KdLogitsLossConfig, KdOutput, Targets};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<(), Box<dyn Error>> {
    let device = Device::flex();
    let train_device = device.clone().autodiff();

    // Two samples, four classes. The student trains (autodiff device); the frozen teacher
    // lives on the plain device and acts as a constant.
    let student_logits = Tensor::<2>::from_floats(
        [[2.0, -1.0, 0.5, 0.0], [0.1, 0.2, 3.0, -2.0]],
        &train_device,
    )
    .require_grad();
    let teacher_logits =
        Tensor::<2>::from_floats([[3.0, -2.0, 1.0, 0.0], [-1.0, 0.0, 4.0, -1.0]], &device);
    let targets = Targets::Hard(Tensor::<1, Int>::from_ints([0, 2], &device));

    // SuperGradients' defaults (c = 0.5, T = 1) with label smoothing on the task loss.
    let criterion = KdLogitsLossConfig::new()
        .with_distillation_loss_coeff(0.5)
        .with_task_loss(CrossEntropyLossConfig::new().with_label_smoothing(0.1))
        .init()?;

    let output = KdOutput {
        student_output: student_logits.clone(),
        teacher_output: teacher_logits,
    };
    let loss = criterion.forward(&output, &targets);
    let values = loss.components.into_data().try_into_vec::<f32>()?;
    for (name, value) in criterion.component_names().iter().zip(values) {
        println!("{}/{name}: {value:.6}", criterion.name());
    }

    // Only the student receives a gradient.
    let grads = loss.loss.backward();
    let grad = student_logits
        .grad(&grads)
        .ok_or("the student logits received no gradient")?;
    println!("gradient w.r.t. the student logits:\n{grad}");
    Ok(())
}
