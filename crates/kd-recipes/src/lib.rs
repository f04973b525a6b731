//! YAML recipes with SuperGradients' keys, the model registry and recipe-to-trainer wiring
