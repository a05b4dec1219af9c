//! The Container Device Interface (CDI), as specified in
//! <https://github.com/cncf-tags/container-device-interface/blob/main/SPEC.md> (versions 0.3.0
//! to 1.1.0): the spec model, its validation rules, the registry of spec dirs, and the
//! container edits a device brings.
//!
//! [`ContainerEdits`] is the one currency of GPU injection: a CDI spec parses into it, the
//! runtime's own planning produces it, and `cdi generate` serialises it.
//!
//! - [`Spec::parse`] reads one spec file (JSON or YAML, at most [`MAX_SPEC_BYTES`]) and checks
//!   every rule of the spec, including that no field is newer than its `cdiVersion`
//!   ([`version`]); [`Spec::to_json`] / [`Spec::to_yaml`] write one, and
//!   [`Spec::set_minimum_version`] picks the lowest `cdiVersion` that fits it.
//! - [`QualifiedName`] is a requested device, `vendor/class=name`.
//! - [`Registry`] reads the spec dirs ([`DEFAULT_SPEC_DIRS`]) and resolves requested names to
//!   their edits ([`Registry::edits_for`]).

pub mod apply;
pub mod cache;
pub mod error;
pub mod name;
pub mod registry;
pub mod spec;
mod validate;
pub mod version;

pub use error::{Format, Problem, SpecError};
pub use name::{is_qualified, NameError, QualifiedName};
pub use registry::{Registry, RegistryError, ResolvedDevice, DEFAULT_SPEC_DIRS};
pub use spec::{
    format_of, ContainerEdits, Device, DeviceNode, Hook, IntelRdt, Mount, NetDevice, Spec,
    MAX_SPEC_BYTES,
};
pub use validate::{HOOK_NAMES, MAX_ANNOTATIONS_BYTES};
pub use version::{minimum_version, Version};
