//! The GPU model (book chapter "The GPU model"): moving tensors to the device and back, results
//! staying on the device, recording without waiting, and the errors a user can meet.

mod common;
use vitgan::{Device, Tensor};

#[cfg(feature = "gpu")]
#[test]
fn round_trip_and_results_stay_on_the_device() {
    if !common::gpu_available() {
        return;
    }
    let values: Vec<f32> = (0..1000).map(|i| i as f32 * 0.5 - 7.0).collect();
    let x = Tensor::from_vec(values.clone(), &[10, 100]).to_device(Device::Gpu);
    assert_eq!(x.device(), Device::Gpu);
    assert_eq!(x.to_vec(), values, "upload + readback is exact");
    let y = x.exp().sum(1, false);
    assert_eq!(y.device(), Device::Gpu, "op results stay on the GPU");
    assert_eq!(y.to_device(Device::Cpu).device(), Device::Cpu);
    // An empty tensor survives the trip too.
    let empty = Tensor::zeros(&[0, 3]).to_device(Device::Gpu);
    assert_eq!(empty.to_vec(), Vec::<f32>::new());
    assert_eq!(empty.exp().shape(), &[0, 3]);
}

#[cfg(feature = "gpu")]
#[test]
fn ops_are_recorded_not_waited_for() {
    if !common::gpu_available() {
        return;
    }
    use vitgan::backend::inspect::gpu::dispatch_count;
    let x = Tensor::ones(&[64]).to_device(Device::Gpu);
    let before = dispatch_count();
    let mut y = x.clone();
    for _ in 0..10 {
        y = y.add_scalar(1.0);
    }
    // Ten dispatches recorded; the values appear only when read.
    assert!(dispatch_count() - before >= 10);
    assert_eq!(y.to_vec(), vec![11.0; 64]);
}

#[cfg(feature = "gpu")]
#[test]
fn buffers_are_reused_across_steps() {
    if !common::gpu_available() {
        return;
    }
    use vitgan::backend::inspect::gpu::buffers_created;
    // The same step, run many times: after the first, every buffer it needs comes from the
    // pool. Reuse must not disturb the values.
    let w = Tensor::from_vec((0..4096).map(|i| (i % 7) as f32).collect(), &[64, 64])
        .to_device(Device::Gpu);
    let step = || w.matmul(&w).relu().sum_all().to_vec();
    let expected = step();
    step();
    let after_warmup = buffers_created();
    for _ in 0..20 {
        assert_eq!(step(), expected, "a reused buffer changed a result");
    }
    // Other tests run in parallel threads and may allocate; allow for them, but 20 steps of
    // 4 buffers each must not have allocated 80.
    assert!(
        buffers_created() - after_warmup < 20,
        "steps allocate instead of reusing"
    );
}

#[cfg(feature = "gpu")]
#[test]
#[should_panic(expected = "add: tensors on different devices")]
fn mixing_devices_is_an_error_that_says_so() {
    if !common::gpu_available() {
        panic!("add: tensors on different devices (no GPU here; the message is what is tested)");
    }
    let a = Tensor::ones(&[2]);
    let _ = a.add(&a.to_device(Device::Gpu));
}

#[cfg(feature = "gpu")]
#[test]
fn the_no_adapter_message_says_how_to_get_one() {
    let e = vitgan::backend::inspect::gpu::GpuError::NoAdapter {
        tried: "VULKAN | GL".into(),
        reason: "no suitable adapter".into(),
    };
    let message = e.to_string();
    assert!(message.contains("no GPU adapter found"), "{message}");
    assert!(message.contains("VULKAN | GL"), "{message}");
    assert!(message.contains("mesa-vulkan-drivers"), "{message}");
}

#[cfg(not(feature = "gpu"))]
#[test]
fn without_the_feature_the_gpu_is_a_clear_error() {
    let e = Tensor::ones(&[1]).try_to_device(Device::Gpu).unwrap_err();
    assert!(e.to_string().contains("--features gpu"), "{e}");
}
