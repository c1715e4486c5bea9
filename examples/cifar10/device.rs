//! Which device the training example runs on, said aloud.

use crate::flags::DeviceChoice;
use vitgan::run::say;
use vitgan::{Device, Error, Tensor};

/// `auto`: the GPU when the build has it and an adapter answers, otherwise the CPU; said aloud.
/// Fails only for `gpu` without a usable GPU.
pub fn choose_device(wanted: DeviceChoice) -> Result<Device, Error> {
    match wanted {
        DeviceChoice::Cpu => Ok(Device::Cpu),
        DeviceChoice::Gpu => {
            Tensor::zeros(&[1]).try_to_device(Device::Gpu)?;
            say(&format!("device: the GPU ({})", gpu_name()));
            Ok(Device::Gpu)
        }
        DeviceChoice::Auto => match Tensor::zeros(&[1]).try_to_device(Device::Gpu) {
            Ok(_) if software_gpu() => {
                say(&format!(
                    "device: the CPU (the GPU adapter, {}, is a software renderer, slower \
                     than the CPU backend; --device gpu uses it anyway)",
                    gpu_name()
                ));
                Ok(Device::Cpu)
            }
            Ok(_) => {
                say(&format!("device: the GPU ({})", gpu_name()));
                Ok(Device::Gpu)
            }
            Err(e) => {
                say(&format!("device: the CPU (no GPU: {e})"));
                Ok(Device::Cpu)
            }
        },
    }
}

fn software_gpu() -> bool {
    #[cfg(feature = "gpu")]
    if let Ok(ctx) = vitgan::backend::inspect::gpu::context() {
        return ctx.is_software();
    }
    false
}

fn gpu_name() -> String {
    #[cfg(feature = "gpu")]
    if let Ok(ctx) = vitgan::backend::inspect::gpu::context() {
        return ctx.adapter_name();
    }
    "unknown".into()
}
