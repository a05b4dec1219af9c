//! What the static musl build needs from the C library that musl does not have.
//!
//! The static build links the distribution's `libseccomp.a` (Debian's, for Docker's seccomp
//! profile), which was compiled against glibc with `_FORTIFY_SOURCE`. One of its objects, the
//! PFC exporter behind `seccomp_export_pfc` (a debugging aid that prints a filter as text),
//! prints through glibc's fortified `__fprintf_chk`, which musl does not provide. Everything
//! else that library calls (`malloc`, `syscall`, `prctl`, `__errno_location`,
//! `__assert_fail`, ...) musl has with the same ABI.
//!
//! libcontainer never exports a filter as PFC, so this function is only there for the link:
//! should anything call it, it prints nothing and fails (`-1`, `errno` = `ENOSYS`) rather than
//! print a format string without its arguments.

use std::ffi::{c_char, c_int, c_void};

/// glibc's `int __fprintf_chk(FILE *stream, int flag, const char *format, ...)`. The variadic
/// arguments are not read: on x86-64 and aarch64 a caller passes them in registers or on its
/// own stack, so a callee that ignores them is called correctly.
#[no_mangle]
pub extern "C" fn __fprintf_chk(
    _stream: *mut c_void,
    _flag: c_int,
    _format: *const c_char,
) -> c_int {
    // SAFETY: __errno_location returns this thread's errno, always valid to write.
    unsafe { *libc::__errno_location() = libc::ENOSYS };
    -1
}
