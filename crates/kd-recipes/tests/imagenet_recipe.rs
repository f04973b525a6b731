//! `recipes/imagenet_resnet50_kd.yaml` (SuperGradients' ResNet-50-from-BEiT recipe) builds and
//! runs end to end at tiny scale: a two-class image folder, a one-block BEiT teacher saved
//! to disk, one epoch of two batches. Everything else (Lamb, EMA, averaging, mixup/cutmix,
//! repeated augmentation, RandAugment, the adapter, the bf16 teacher) is the recipe's own.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use kd_recipes::{check_recipe, load_recipe, registry, run_recipe};

fn recipe_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../recipes/imagenet_resnet50_kd.yaml")
}

/// `split/<wnid>/<i>.jpg` images of varied sizes, brighter for class 1.
fn tiny_imagenet(root: &Path) {
    for (split, per_class) in [("train", 4), ("val", 2)] {
        for (class, wnid) in ["n01440764", "n01443537"].iter().enumerate() {
            let dir = root.join(split).join(wnid);
            std::fs::create_dir_all(&dir).unwrap();
            for i in 0..per_class {
                let (w, h) = (72 + 8 * i as u32, 60 + 4 * class as u32);
                let img = image::RgbImage::from_fn(w, h, |x, y| {
                    let v = (40 + 120 * class as u32 + (x * 7 + y * 3 + i as u32) % 60) as u8;
                    image::Rgb([v, v / 2, 255 - v])
                });
                img.save(dir.join(format!("{i}.jpg"))).unwrap();
            }
        }
    }
}

#[test]
fn imagenet_resnet50_kd_recipe_runs_with_tiny_limits() {
    let dir = std::env::temp_dir().join(format!("kd-imagenet-recipe-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    tiny_imagenet(&dir.join("imagenet"));
    let overrides: Vec<String> = [
        format!(
            "dataset_params.train_dataset_params.root={}",
            dir.join("imagenet/train").display()
        ),
        format!(
            "dataset_params.val_dataset_params.root={}",
            dir.join("imagenet/val").display()
        ),
        format!("ckpt_root_dir={}", dir.join("runs").display()),
        "student_arch_params.num_classes=2".into(),
        "teacher_arch_params.num_classes=2".into(),
        "teacher_arch_params.depth=1".into(),
        "teacher_arch_params.embed_dim=32".into(),
        "teacher_arch_params.num_heads=2".into(),
        "dataset_params.train_dataloader_params.collate_fn.CollateMixup.num_classes=2".into(),
        "dataset_params.train_dataloader_params.batch_size=2".into(),
        "dataset_params.train_dataloader_params.sampler.RepeatAugSampler.selected_round=0".into(),
        "dataset_params.train_dataloader_params.num_workers=2".into(),
        "dataset_params.val_dataloader_params.batch_size=2".into(),
        "dataset_params.val_dataloader_params.num_workers=1".into(),
        "training_hyperparams.max_epochs=1".into(),
        "training_hyperparams.lr_warmup_epochs=0".into(),
        "training_hyperparams.lr_cooldown_epochs=0".into(),
        "training_hyperparams.batch_accumulate=2".into(),
        "training_hyperparams.max_train_batches=2".into(),
        "training_hyperparams.max_valid_batches=1".into(),
        "training_hyperparams.silent_mode=true".into(),
    ]
    .into_iter()
    .collect();
    let mut recipe = load_recipe(&recipe_path(), &overrides).unwrap_or_else(|e| panic!("{e}"));

    // The recipe's own values, as SuperGradients has them.
    let th = &recipe.training_hyperparams;
    assert_eq!(th.optimizer, "Lamb");
    assert!(th.ema && th.mixed_precision && th.zero_weight_decay_on_bias_and_bn);
    assert_eq!(
        recipe.teacher_architecture.as_deref(),
        Some("beit_base_patch16_224")
    );
    assert_eq!(recipe.student_architecture, "resnet50");

    // The teacher's weights, saved where the recipe will read them.
    let device = Device::flex();
    let teacher = registry::get(
        "beit_base_patch16_224",
        &recipe.teacher_arch_params,
        "teacher",
        &device,
    )
    .unwrap();
    let weights = dir.join("beit_tiny.bpk");
    let bytes = kd_trainer::student_bytes(&teacher, &weights).unwrap();
    kd_trainer::write_atomic(&weights, &bytes).unwrap();
    recipe.teacher_checkpoint_params.checkpoint_path = Some(weights);

    check_recipe(&recipe, &device).unwrap_or_else(|e| panic!("{e}"));
    let report = run_recipe(&recipe, &device).unwrap_or_else(|e| panic!("{e}"));
    let roles: Vec<&str> = report.rows.iter().map(|r| r.role.as_str()).collect();
    assert_eq!(roles, ["teacher", "student (KD)"]);
    let kd = &report.rows[1];
    assert!((0.0..=1.0).contains(&kd.accuracy), "{}", kd.accuracy);
    for file in [
        "ckpt_best.bpk",
        "ckpt_latest.kd",
        "metrics.csv",
        "average_model.bpk",
    ] {
        assert!(report.run_dir.join(file).is_file(), "{file} missing");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
