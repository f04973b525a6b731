//! Backend selection at run time; cargo features decide what is compiled in.

use anyhow::{Result, bail};
use burn::prelude::*;

/// The backends this binary was built with.
pub fn compiled_backends() -> Vec<&'static str> {
    let mut v = Vec::new();
    if cfg!(feature = "flex") {
        v.push("flex");
    }
    if cfg!(feature = "tch") {
        v.push("tch");
    }
    if cfg!(feature = "wgpu") {
        v.push("wgpu");
    }
    if cfg!(feature = "cuda") {
        v.push("cuda");
    }
    v
}

fn not_compiled(name: &str, feature: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "backend `{name}` is not compiled into this binary (compiled: {}): rebuild with `cargo build -p kd-cli --features {feature}`",
        compiled_backends().join(", ")
    )
}

/// The device for a backend name (`flex`/`cpu`, `tch`, `wgpu`, `cuda`) and an optional index.
pub fn make_device(name: &str, index: Option<usize>) -> Result<Device> {
    let _ = index;
    match name.to_ascii_lowercase().as_str() {
        "flex" | "cpu" => {
            #[cfg(feature = "flex")]
            return Ok(Device::flex());
            #[cfg(not(feature = "flex"))]
            return Err(not_compiled(name, "flex"));
        }
        "tch" | "libtorch" => {
            #[cfg(feature = "tch")]
            #[allow(deprecated)]
            return Ok(match index {
                Some(i) => Device::libtorch_cuda(i),
                None => Device::libtorch(),
            });
            #[cfg(not(feature = "tch"))]
            return Err(not_compiled(name, "tch"));
        }
        "wgpu" | "vulkan" => {
            #[cfg(feature = "wgpu")]
            return Ok(Device::wgpu(DeviceKind::DefaultDevice));
            #[cfg(not(feature = "wgpu"))]
            return Err(not_compiled(name, "wgpu"));
        }
        "cuda" => {
            #[cfg(feature = "cuda")]
            return Ok(Device::cuda(index.unwrap_or(0)));
            #[cfg(not(feature = "cuda"))]
            return Err(not_compiled(name, "cuda"));
        }
        other => bail!("unknown backend `{other}`; known: flex (alias cpu), tch, wgpu, cuda"),
    }
}
