//! Reading a recipe: YAML, command-line overrides, SuperGradients' shortcuts, typed checks.

use std::path::Path;

use serde_yaml::{Mapping, Value};

use crate::error::did_you_mean;
use crate::{Recipe, RecipeError};

/// SuperGradients' recipe shortcuts (`recipes/variable_setup.yaml`) and the keys they set.
pub const SHORTCUTS: [(&str, &[&str]); 6] = [
    ("lr", &["training_hyperparams.initial_lr"]),
    (
        "batch_size",
        &["dataset_params.train_dataloader_params.batch_size"],
    ),
    (
        "val_batch_size",
        &["dataset_params.val_dataloader_params.batch_size"],
    ),
    ("epochs", &["training_hyperparams.max_epochs"]),
    ("resume", &["training_hyperparams.resume"]),
    (
        "num_workers",
        &[
            "dataset_params.train_dataloader_params.num_workers",
            "dataset_params.val_dataloader_params.num_workers",
        ],
    ),
];

/// SuperGradients keys kd knows but does not implement yet, with the value that asks for
/// nothing (accepted and dropped); any other value is an error saying so.
const UNSUPPORTED_TRAINING_KEYS: [(&str, &str); 5] = [
    ("sync_bn", "false"),
    ("precise_bn", "false"),
    ("torch_compile", "false"),
    ("finetune", "false"),
    ("launch_tensorboard", "false"),
];

/// Reads, overrides and checks a recipe file.
pub fn load_recipe(path: &Path, overrides: &[String]) -> Result<Recipe, RecipeError> {
    let text = std::fs::read_to_string(path).map_err(|source| RecipeError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_recipe(&text, &path.display().to_string(), overrides)
}

/// Parses recipe text (`file` names it in errors), applies `key.path=value` overrides and
/// shortcuts, and checks every key and type.
pub fn parse_recipe(text: &str, file: &str, overrides: &[String]) -> Result<Recipe, RecipeError> {
    let mut value: Value = serde_yaml::from_str(text).map_err(|e| RecipeError::Syntax {
        file: file.to_string(),
        message: e.to_string(),
    })?;
    if !value.is_mapping() {
        return Err(RecipeError::Schema {
            file: file.to_string(),
            key: "(top level)".into(),
            line: String::new(),
            message:
                "a recipe is a mapping of keys such as `experiment_name` and `training_hyperparams`"
                    .into(),
        });
    }
    for arg in overrides {
        apply_override(&mut value, arg)?;
    }
    strip_neutral_keys(&mut value, text, file)?;
    serde_path_to_error::deserialize::<_, Recipe>(value).map_err(|e| {
        let key = e.path().to_string();
        let message = improve_message(&e.inner().to_string());
        let line = find_line(text, &key)
            .map(|l| format!(" (line {l})"))
            .unwrap_or_default();
        RecipeError::Schema {
            file: file.to_string(),
            key,
            line,
            message,
        }
    })
}

/// Applies one `key.path=value` (or shortcut) override to the recipe tree.
pub fn apply_override(root: &mut Value, arg: &str) -> Result<(), RecipeError> {
    let bad = |message: String| RecipeError::Override {
        arg: arg.to_string(),
        message,
    };
    let (key, raw) = arg.split_once('=').ok_or_else(|| {
        bad(
            "expected `key.path=value`, e.g. `training_hyperparams.max_epochs=3` or `lr=0.1`"
                .into(),
        )
    })?;
    let key = key.trim().trim_start_matches('+');
    if key.is_empty() || key.split('.').any(str::is_empty) {
        return Err(bad("the key is empty or has an empty segment".into()));
    }
    let parsed: Value =
        serde_yaml::from_str(raw).map_err(|e| bad(format!("value is not valid YAML: {e}")))?;
    let targets: Vec<&str> = SHORTCUTS
        .iter()
        .find(|(s, _)| *s == key)
        .map(|(_, t)| t.to_vec())
        .unwrap_or_else(|| vec![key]);
    for target in targets {
        let mut node = &mut *root;
        let segments: Vec<&str> = target.split('.').collect();
        for (i, seg) in segments.iter().enumerate() {
            let map = match node {
                Value::Mapping(m) => m,
                Value::Null => {
                    *node = Value::Mapping(Mapping::new());
                    node.as_mapping_mut().expect("just set")
                }
                _ => {
                    return Err(bad(format!(
                        "`{}` is not a mapping, so it has no key `{seg}`",
                        segments[..i].join(".")
                    )));
                }
            };
            let k = Value::String(seg.to_string());
            if i + 1 == segments.len() {
                map.insert(k, parsed.clone());
                break;
            }
            node = map.entry(k).or_insert(Value::Null);
        }
    }
    Ok(())
}

/// Drops SuperGradients keys that kd does not implement when they ask for nothing, and
/// rejects them otherwise.
fn strip_neutral_keys(root: &mut Value, text: &str, file: &str) -> Result<(), RecipeError> {
    let map = root.as_mapping_mut().expect("checked by the caller");
    if let Some(v) = map.get("checkpoint_params") {
        let _ = v;
        return Err(RecipeError::Schema {
            file: file.to_string(),
            key: "checkpoint_params".into(),
            line: find_line(text, "checkpoint_params").map(|l| format!(" (line {l})")).unwrap_or_default(),
            message: "KD runs do not read the top-level `checkpoint_params` (SuperGradients ignores it too): put teacher weights in `teacher_checkpoint_params`".into(),
        });
    }
    for section in ["training_hyperparams", "teacher_training_hyperparams"] {
        let Some(Value::Mapping(th)) = map.get_mut(section) else {
            continue;
        };
        for (key, neutral) in UNSUPPORTED_TRAINING_KEYS {
            let Some(v) = th.get(key) else { continue };
            let ok = neutral == "false" && v.as_bool() == Some(false);
            if !ok {
                let path = format!("{section}.{key}");
                return Err(RecipeError::Schema {
                    file: file.to_string(),
                    line: find_line(text, &path)
                        .map(|l| format!(" (line {l})"))
                        .unwrap_or_default(),
                    key: path,
                    message: format!(
                        "SuperGradients' `{key}` is not implemented in kd yet: remove it or set it to {neutral}"
                    ),
                });
            }
            th.remove(key);
        }
    }
    Ok(())
}

/// Adds a did-you-mean to serde's unknown-field and unknown-variant messages.
fn improve_message(msg: &str) -> String {
    for what in ["unknown field `", "unknown variant `"] {
        if let Some(rest) = msg.strip_prefix(what)
            && let Some((name, tail)) = rest.split_once('`')
        {
            let expected: Vec<&str> = tail.split('`').skip(1).step_by(2).collect();
            let hint = did_you_mean(name, expected.iter().copied());
            let kind = if what.contains("field") {
                "key"
            } else {
                "name"
            };
            return if hint.is_empty() {
                format!(
                    "unknown {kind} `{name}`; expected one of: {}",
                    expected.join(", ")
                )
            } else {
                format!("unknown {kind} `{name}`{hint}")
            };
        }
    }
    msg.to_string()
}

/// The 1-based line of a dotted key in the recipe text, following indentation.
pub(crate) fn find_line(text: &str, key: &str) -> Option<usize> {
    let mut start = 0usize;
    let mut min_indent: isize = -1;
    let mut found = None;
    let lines: Vec<&str> = text.lines().collect();
    for seg in key.split('.').filter(|s| s.parse::<usize>().is_err()) {
        let mut hit = None;
        for (i, line) in lines.iter().enumerate().skip(start) {
            let trimmed = line.trim_start().trim_start_matches("- ");
            let indent = (line.len() - line.trim_start().len()) as isize;
            if indent > min_indent
                && (trimmed.starts_with(&format!("{seg}:"))
                    || trimmed.starts_with(&format!("\"{seg}\":")))
            {
                hit = Some((i, indent));
                break;
            }
        }
        let (i, indent) = hit?;
        found = Some(i + 1);
        start = i + 1;
        min_indent = indent;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_and_shortcuts() {
        let mut v: Value =
            serde_yaml::from_str("a: {b: 1}\ntraining_hyperparams: {max_epochs: 3}").unwrap();
        apply_override(&mut v, "a.b=2.5").unwrap();
        apply_override(&mut v, "epochs=7").unwrap();
        apply_override(&mut v, "x.y.z=[1, 2]").unwrap();
        assert_eq!(v["a"]["b"].as_f64(), Some(2.5));
        assert_eq!(v["training_hyperparams"]["max_epochs"].as_u64(), Some(7));
        assert_eq!(v["x"]["y"]["z"][1].as_u64(), Some(2));
        let err = apply_override(&mut v, "a.b").unwrap_err().to_string();
        assert!(err.contains("key.path=value"), "{err}");
        let err = apply_override(&mut v, "a.b.c=1").unwrap_err().to_string();
        assert!(err.contains("not a mapping"), "{err}");
    }

    #[test]
    fn line_lookup_follows_nesting() {
        let text = "a: 1\nb:\n  max_epochs: 2\nc:\n  max_epochs: 3\n";
        assert_eq!(find_line(text, "c.max_epochs"), Some(5));
        assert_eq!(find_line(text, "b.max_epochs"), Some(3));
        assert_eq!(find_line(text, "d"), None);
    }

    #[test]
    fn messages_get_suggestions() {
        let m = improve_message(
            "unknown field `max_epocs`, expected one of `max_epochs`, `initial_lr`",
        );
        assert_eq!(m, "unknown key `max_epocs`, did you mean `max_epochs`?");
    }
}
