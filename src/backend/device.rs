//! The seam between the model and the devices: [`on_device!`] runs a kernel on whichever device
//! its inputs live on, so an op or a component names its CPU and GPU kernels side by side and
//! never matches on a [`Storage`] itself.

use super::{Device, Storage};

// ANCHOR: on_device
/// Runs a kernel on the device its input tensors live on:
///
/// ```text
/// let out: Storage = on_device!((x, bias) =>
///     cpu::bias_act::forward(x, bias),
///     gpu::bias_act::forward(x, bias));
/// ```
///
/// In the first expression each named tensor is rebound to its CPU values (`&[f32]`) and
/// `cpu` means `crate::backend::cpu`; in the second to its GPU buffer (`&GpuBuffer`) and `gpu`
/// means `crate::backend::gpu`, and that expression is compiled only with the `gpu` feature.
/// Either returns new values (`Vec<f32>` or `GpuBuffer`, a tuple of them, or `()`), which come
/// back as [`Storage`]. Inputs on different devices panic, naming the devices.
macro_rules! on_device {
    (($($x:ident),+ $(,)?) => $cpu:expr, $gpu:expr $(,)?) => {
        match ($($crate::backend::Stored::stored(&$x),)+) {
            ($($crate::backend::Storage::Cpu($x),)+) => {
                #[allow(unused_imports)]
                use $crate::backend::cpu;
                $(#[allow(unused_variables)] let $x: &[f32] = $x;)+
                $crate::backend::IntoStorage::into_storage($cpu)
            }
            #[cfg(feature = "gpu")]
            ($($crate::backend::Storage::Gpu($x),)+) => {
                #[allow(unused_imports)]
                use $crate::backend::gpu;
                $(#[allow(unused_variables)] let $x: &$crate::backend::gpu::GpuBuffer = $x;)+
                $crate::backend::IntoStorage::into_storage($gpu)
            }
            #[allow(unreachable_patterns)]
            _ => $crate::backend::device_mismatch(&[$($crate::backend::Stored::stored(&$x).device()),+]),
        }
    };
    // A list of tensors, all on one device (the caller checked): `[parts]` is rebound to a
    // `Vec` of their CPU values or GPU buffers.
    ([$parts:ident] => $cpu:expr, $gpu:expr $(,)?) => {
        match $crate::backend::Stored::stored(&$parts[0]) {
            $crate::backend::Storage::Cpu(_) => {
                #[allow(unused_imports)]
                use $crate::backend::cpu;
                let $parts: Vec<&[f32]> = $parts
                    .iter()
                    .map(|p| $crate::backend::Stored::stored(p).cpu_slice())
                    .collect();
                $crate::backend::IntoStorage::into_storage($cpu)
            }
            #[cfg(feature = "gpu")]
            $crate::backend::Storage::Gpu(_) => {
                #[allow(unused_imports)]
                use $crate::backend::gpu;
                let $parts: Vec<&$crate::backend::gpu::GpuBuffer> =
                    $parts.iter().map(|p| $crate::backend::Stored::stored(p).gpu()).collect();
                $crate::backend::IntoStorage::into_storage($gpu)
            }
        }
    };
}
pub(crate) use on_device;
// ANCHOR_END: on_device

/// What holds values: a tensor, or a storage itself. `on_device!` takes either.
pub(crate) trait Stored {
    fn stored(&self) -> &Storage;
}

impl Stored for Storage {
    fn stored(&self) -> &Storage {
        self
    }
}

impl<T: Stored + ?Sized> Stored for &T {
    fn stored(&self) -> &Storage {
        (**self).stored()
    }
}

/// What a kernel returns, turned into storage: new values on either device, several of them, or
/// nothing (a kernel that wrote into an existing buffer).
pub(crate) trait IntoStorage {
    type Output;
    fn into_storage(self) -> Self::Output;
}

impl IntoStorage for Vec<f32> {
    type Output = Storage;
    fn into_storage(self) -> Storage {
        Storage::from(self)
    }
}

#[cfg(feature = "gpu")]
impl IntoStorage for super::gpu::GpuBuffer {
    type Output = Storage;
    fn into_storage(self) -> Storage {
        Storage::from(self)
    }
}

impl<A: IntoStorage> IntoStorage for Option<A> {
    type Output = Option<A::Output>;
    fn into_storage(self) -> Self::Output {
        self.map(A::into_storage)
    }
}

impl IntoStorage for () {
    type Output = ();
    fn into_storage(self) {}
}

impl<A: IntoStorage, B: IntoStorage> IntoStorage for (A, B) {
    type Output = (A::Output, B::Output);
    fn into_storage(self) -> Self::Output {
        (self.0.into_storage(), self.1.into_storage())
    }
}

impl<A: IntoStorage, B: IntoStorage, C: IntoStorage> IntoStorage for (A, B, C) {
    type Output = (A::Output, B::Output, C::Output);
    fn into_storage(self) -> Self::Output {
        (
            self.0.into_storage(),
            self.1.into_storage(),
            self.2.into_storage(),
        )
    }
}

impl<A: IntoStorage, B: IntoStorage, C: IntoStorage, D: IntoStorage> IntoStorage for (A, B, C, D) {
    type Output = (A::Output, B::Output, C::Output, D::Output);
    fn into_storage(self) -> Self::Output {
        let (a, b, c) = (self.0, self.1, self.2).into_storage();
        (a, b, c, self.3.into_storage())
    }
}

/// The panic of an op whose inputs live on different devices.
#[track_caller]
pub(crate) fn device_mismatch(devices: &[Device]) -> ! {
    panic!(
        "inputs on different devices ({devices:?}): move them to one device with `to_device` \
         first"
    )
}
