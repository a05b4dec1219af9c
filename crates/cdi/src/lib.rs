//! The Container Device Interface (CDI), as specified in
//! <https://github.com/cncf-tags/container-device-interface/blob/main/SPEC.md> (versions 0.3.0
//! to 1.1.0): the spec model, its validation rules, the registry of spec dirs, and the
//! container edits a device brings.
//!
//! [`ContainerEdits`] is the one currency of GPU injection: a CDI spec parses into it, the
//! runtime's own planning produces it, and `cdi generate` serialises it.

pub mod apply;
pub mod spec;

pub use spec::{ContainerEdits, Device, DeviceNode, Hook, IntelRdt, Mount, NetDevice, Spec};
