//! Which device the training example runs on, said aloud.

use vitgan::{Device, Tensor};

/// `auto`: the GPU when the build has it and an adapter answers, otherwise the CPU; said aloud.
pub fn choose_device(wanted: &str) -> Result<Device, String> {
    match wanted {
        "cpu" => Ok(Device::Cpu),
        "gpu" => {
            Tensor::zeros(&[1])
                .try_to_device(Device::Gpu)
                .map_err(|e| format!("--device gpu: {e}"))?;
            println!("device: the GPU ({})", gpu_name());
            Ok(Device::Gpu)
        }
        "auto" => match Tensor::zeros(&[1]).try_to_device(Device::Gpu) {
            Ok(_) if software_gpu() => {
                println!(
                    "device: the CPU (the GPU adapter, {}, is a software renderer, slower \
                     than the CPU backend; --device gpu uses it anyway)",
                    gpu_name()
                );
                Ok(Device::Cpu)
            }
            Ok(_) => {
                println!("device: the GPU ({})", gpu_name());
                Ok(Device::Gpu)
            }
            Err(e) => {
                println!("device: the CPU (no GPU: {e})");
                Ok(Device::Cpu)
            }
        },
        other => Err(format!(
            "--device expects auto, cpu or gpu, found {other:?}"
        )),
    }
}

fn software_gpu() -> bool {
    #[cfg(feature = "gpu")]
    if let Ok(ctx) = vitgan::backend::gpu::context() {
        return ctx.is_software();
    }
    false
}

fn gpu_name() -> String {
    #[cfg(feature = "gpu")]
    if let Ok(ctx) = vitgan::backend::gpu::context() {
        return ctx.adapter_name();
    }
    "unknown".into()
}
