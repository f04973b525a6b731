//! A run folder's log, read back: `metrics.jsonl` to [`EpochRecord`]s, `metrics.csv`, and
//! the summary `kd report` prints.

use std::fmt::Write as _;
use std::path::Path;

use crate::checkpoint::write_atomic;
use crate::{EpochRecord, TrainError};

/// Reads `metrics.jsonl` (one JSON object per epoch). A resumed run appends to the same file,
/// so a later line for an epoch replaces an earlier one.
pub fn read_log(path: &Path) -> Result<Vec<EpochRecord>, TrainError> {
    let text = std::fs::read_to_string(path).map_err(|source| TrainError::Io {
        action: "cannot read",
        path: path.to_path_buf(),
        source,
    })?;
    let bad = |line: usize, message: String| TrainError::Checkpoint {
        path: path.to_path_buf(),
        message: format!("line {line}: {message}"),
    };
    let mut records: Vec<EpochRecord> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value =
            serde_json::from_str(line).map_err(|e| bad(i + 1, format!("not JSON ({e})")))?;
        let pairs = |key: &str| -> Vec<(String, f64)> {
            v[key]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, x)| (k.clone(), x.as_f64().unwrap_or(f64::NAN)))
                        .collect()
                })
                .unwrap_or_default()
        };
        let epoch = v["epoch"]
            .as_u64()
            .ok_or_else(|| bad(i + 1, "no `epoch`".into()))? as usize;
        let record = EpochRecord {
            epoch,
            lr: v["lr"].as_f64().unwrap_or(f64::NAN),
            train: pairs("train"),
            valid: pairs("valid"),
            seconds: v["seconds"].as_f64().unwrap_or(f64::NAN),
        };
        records.retain(|r| r.epoch != epoch);
        records.push(record);
    }
    records.sort_by_key(|r| r.epoch);
    Ok(records)
}

/// Every metric name of the records, train and valid, in first-seen order.
fn metric_names(records: &[EpochRecord]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for r in records {
        for (k, _) in r.train.iter().chain(&r.valid) {
            if !names.contains(k) {
                names.push(k.clone());
            }
        }
    }
    names
}

/// The records as CSV: `epoch,lr,seconds,train/<metric>...,valid/<metric>...`.
pub fn to_csv(records: &[EpochRecord]) -> String {
    let names = metric_names(records);
    let mut out = String::from("epoch,lr,seconds");
    for side in ["train", "valid"] {
        for n in &names {
            out.push_str(&format!(",{side}/{}", n.replace(',', ";")));
        }
    }
    out.push('\n');
    for r in records {
        let _ = write!(out, "{},{},{}", r.epoch, r.lr, r.seconds);
        for side in [&r.train, &r.valid] {
            for n in &names {
                match side.iter().find(|(k, _)| k == n) {
                    Some((_, v)) => {
                        let _ = write!(out, ",{v}");
                    }
                    None => out.push(','),
                }
            }
        }
        out.push('\n');
    }
    out
}

/// Rewrites `metrics.csv` and `metrics.png` of `run_dir` from its `metrics.jsonl`.
pub fn refresh_run_files(run_dir: &Path) -> Result<(), TrainError> {
    let records = read_log(&run_dir.join("metrics.jsonl"))?;
    write_atomic(&run_dir.join("metrics.csv"), to_csv(&records).as_bytes())?;
    let png = crate::plot::render_png(&records)?;
    write_atomic(&run_dir.join("metrics.png"), &png)
}

/// The summary of a run folder: one line per epoch (lr, train loss, valid accuracy and loss),
/// the best epoch by validation accuracy, and the checkpoints present.
pub fn summary(run_dir: &Path) -> Result<String, TrainError> {
    let records = read_log(&run_dir.join("metrics.jsonl"))?;
    let mut out = String::new();
    let _ = writeln!(out, "run {}", run_dir.display());
    let loss_name = records
        .first()
        .and_then(|r| r.train.iter().find(|(k, _)| k.ends_with("/Loss")))
        .map(|(k, _)| k.clone());
    let _ = writeln!(
        out,
        "{:>5}  {:>9}  {:>10}  {:>10}  {:>9}  {:>7}  {:>6}",
        "epoch", "lr", "train loss", "valid loss", "valid acc", "top5", "sec"
    );
    let get = |v: &[(String, f64)], k: &str| v.iter().find(|(n, _)| n == k).map(|(_, x)| *x);
    let mut best: Option<(usize, f64)> = None;
    for r in &records {
        let acc = get(&r.valid, "Accuracy").unwrap_or(f64::NAN);
        if acc.is_finite() && best.is_none_or(|(_, b)| acc > b) {
            best = Some((r.epoch, acc));
        }
        let loss = |v: &[(String, f64)]| {
            loss_name
                .as_deref()
                .and_then(|n| get(v, n))
                .map_or("-".to_string(), |x| format!("{x:.4}"))
        };
        let _ = writeln!(
            out,
            "{:>5}  {:>9.5}  {:>10}  {:>10}  {:>8.2}%  {:>6.2}%  {:>6.1}",
            r.epoch + 1,
            r.lr,
            loss(&r.train),
            loss(&r.valid),
            100.0 * acc,
            100.0 * get(&r.valid, "Top5").unwrap_or(f64::NAN),
            r.seconds
        );
    }
    match best {
        Some((epoch, acc)) => {
            let _ = writeln!(
                out,
                "best: epoch {} with {:.2}% top-1 ({} of {} epochs logged)",
                epoch + 1,
                100.0 * acc,
                records.len(),
                records.last().map_or(0, |r| r.epoch + 1)
            );
        }
        None => {
            let _ = writeln!(out, "no validated epoch yet");
        }
    }
    for name in [
        crate::LATEST_NAME,
        crate::BEST_NAME,
        "metrics.csv",
        "metrics.png",
    ] {
        let path = run_dir.join(name);
        if path.is_file() {
            let _ = writeln!(out, "  {}", path.display());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("kd-run-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn reads_a_resumed_log_and_writes_csv_png_and_summary() {
        let dir = log_dir();
        let line = |epoch: usize, acc: f64| {
            format!(
                "{{\"epoch\":{epoch},\"lr\":0.1,\"seconds\":2.0,\"train\":{{\"KdLogitsLoss/Loss\":1.5,\"Accuracy\":0.5}},\"valid\":{{\"KdLogitsLoss/Loss\":1.2,\"Accuracy\":{acc},\"Top5\":0.9}}}}"
            )
        };
        // Epoch 1 was logged, interrupted, and logged again after a resume.
        let text = [line(0, 0.4), line(1, 0.45), line(1, 0.6), line(2, 0.55)].join("\n");
        std::fs::write(dir.join("metrics.jsonl"), text).unwrap();
        let records = read_log(&dir.join("metrics.jsonl")).unwrap();
        assert_eq!(records.len(), 3);
        assert_eq!(records[1].valid_metric("Accuracy"), Some(0.6));
        let csv = to_csv(&records);
        let mut lines = csv.lines();
        assert_eq!(
            lines.next().unwrap(),
            "epoch,lr,seconds,train/Accuracy,train/KdLogitsLoss/Loss,train/Top5,valid/Accuracy,valid/KdLogitsLoss/Loss,valid/Top5"
        );
        assert_eq!(lines.next().unwrap(), "0,0.1,2,0.5,1.5,,0.4,1.2,0.9");
        refresh_run_files(&dir).unwrap();
        let png = std::fs::read(dir.join("metrics.png")).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        let summary = summary(&dir).unwrap();
        assert!(
            summary.contains("best: epoch 2 with 60.00% top-1"),
            "{summary}"
        );
        assert!(summary.contains("metrics.png"), "{summary}");
        std::fs::write(dir.join("metrics.jsonl"), "{not json").unwrap();
        let err = read_log(&dir.join("metrics.jsonl"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 1"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
