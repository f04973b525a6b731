//! The kd command: train, distil and benchmark from YAML recipes on any Burn backend
