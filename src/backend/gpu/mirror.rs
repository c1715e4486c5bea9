//! The check that keeps a launcher and its kernel reading the same info record: the Rust
//! struct and the WGSL struct must list the same fields, by name, at the same byte offsets and
//! of the same sizes. A field added on one side only, in another order, or aligned differently
//! (WGSL aligns a vec4 to 16 bytes, Rust a `[u32; 8]` to 4) fails here, on any machine, rather
//! than reading the wrong value on the GPU. Each kernel family's unit test calls it.

use super::launch::{Kernel, COMMON};
use wgpu::naga;

/// A field of an info struct: its name, byte offset and size.
pub(super) type Field = (&'static str, usize, usize);

/// The size of the Rust info struct `$t` and the [`Field`]s listed, in the order listed.
macro_rules! fields {
    ($t:ident { $($f:ident),* $(,)? }) => {{
        let zero: $t = bytemuck::Zeroable::zeroed();
        let fields: Vec<$crate::backend::gpu::mirror::Field> = vec![$((
            stringify!($f),
            std::mem::offset_of!($t, $f),
            std::mem::size_of_val(&zero.$f),
        )),*];
        (std::mem::size_of::<$t>(), fields)
    }};
}
pub(super) use fields;

/// Checks that `kernel` declares `wgsl_struct` with exactly the `fields` of its Rust twin (as
/// [`fields!`] lists them, every byte of it), and binds it as the uniform at binding 0.
pub(super) fn assert_record(kernel: Kernel, wgsl_struct: &str, fields: (usize, Vec<Field>)) {
    let module = parse(kernel);
    let bound = module.global_variables.iter().any(|(_, var)| {
        var.space == naga::AddressSpace::Uniform
            && var.binding
                == Some(naga::ResourceBinding {
                    group: 0,
                    binding: 0,
                })
            && module.types[var.ty].name.as_deref() == Some(wgsl_struct)
    });
    assert!(
        bound,
        "{}: no uniform of type {wgsl_struct} at @group(0) @binding(0)",
        kernel.name
    );
    assert_same(kernel, &module, wgsl_struct, fields);
}

/// [`assert_record`] for a struct nested inside a record.
pub(super) fn assert_mirrors(kernel: Kernel, wgsl_struct: &str, fields: (usize, Vec<Field>)) {
    assert_same(kernel, &parse(kernel), wgsl_struct, fields);
}

fn parse(kernel: Kernel) -> naga::Module {
    let source = format!("{COMMON}\n{}", kernel.source);
    naga::front::wgsl::parse_str(&source)
        .unwrap_or_else(|e| panic!("{}: {}", kernel.name, e.emit_to_string(&source)))
}

fn assert_same(
    kernel: Kernel,
    module: &naga::Module,
    wgsl_struct: &str,
    (size, rust): (usize, Vec<Field>),
) {
    let members = module
        .types
        .iter()
        .find_map(|(_, ty)| match &ty.inner {
            naga::TypeInner::Struct { members, .. } if ty.name.as_deref() == Some(wgsl_struct) => {
                Some(members)
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("{} declares no struct {wgsl_struct}", kernel.name));
    let wgsl: Vec<(&str, usize, usize)> = members
        .iter()
        .map(|m| {
            let size = module.types[m.ty].inner.size(module.to_ctx());
            (
                m.name.as_deref().unwrap_or(""),
                m.offset as usize,
                size as usize,
            )
        })
        .collect();
    assert_eq!(
        rust, wgsl,
        "{}: the launcher's record (left) and struct {wgsl_struct} (right) differ; each field is \
         (name, byte offset, size)",
        kernel.name
    );
    let listed: usize = rust.iter().map(|field| field.2).sum();
    assert_eq!(
        listed, size,
        "{}: the fields listed for {wgsl_struct} cover {listed} of its {size} bytes",
        kernel.name
    );
}
