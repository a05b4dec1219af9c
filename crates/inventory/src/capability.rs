use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A driver capability, as named in `NVIDIA_DRIVER_CAPABILITIES`: which group of driver files a
/// container asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Capability {
    /// CUDA and OpenCL (`libcuda`, `libnvidia-ptxjitcompiler`, MPS binaries, ...).
    Compute,
    /// 32-bit variants of the other capabilities' libraries (never discovered yet: x86-64 only).
    Compat32,
    /// OpenGL, EGL, GLES and Vulkan (`libGLX_nvidia`, `libnvidia-glcore`, ...).
    Graphics,
    /// Management (`nvidia-smi`, `libnvidia-ml`, ...).
    Utility,
    /// Video encode and decode (`libnvcuvid`, `libnvidia-encode`, ...).
    Video,
    /// X11 display (no files discovered: the X server's modules are not searched).
    Display,
    /// NVIDIA NGX (`libnvidia-ngx`).
    Ngx,
}

impl Capability {
    /// Every capability, in the order of this enum; what `NVIDIA_DRIVER_CAPABILITIES=all` means.
    pub const ALL: [Capability; 7] = [
        Capability::Compute,
        Capability::Compat32,
        Capability::Graphics,
        Capability::Utility,
        Capability::Video,
        Capability::Display,
        Capability::Ngx,
    ];

    /// The lowercase name used in `NVIDIA_DRIVER_CAPABILITIES`.
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::Compute => "compute",
            Capability::Compat32 => "compat32",
            Capability::Graphics => "graphics",
            Capability::Utility => "utility",
            Capability::Video => "video",
            Capability::Display => "display",
            Capability::Ngx => "ngx",
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is no capability; holds the name as given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown driver capability {0:?} (known: compute, compat32, graphics, utility, video, display, ngx)")]
pub struct UnknownCapability(pub String);

impl FromStr for Capability {
    type Err = UnknownCapability;

    /// Case-insensitive and trimmed, as NVIDIA's toolkit accepts `NVIDIA_DRIVER_CAPABILITIES`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        Capability::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(t))
            .ok_or_else(|| UnknownCapability(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for c in Capability::ALL {
            assert_eq!(c.to_string().parse::<Capability>().unwrap(), c);
            assert_eq!(
                serde_json::to_string(&c).unwrap(),
                format!("\"{}\"", c.as_str())
            );
        }
        assert_eq!(
            " Compute ".parse::<Capability>().unwrap(),
            Capability::Compute
        );
        let e = "gpu".parse::<Capability>().unwrap_err();
        assert!(e.to_string().contains("\"gpu\""), "{e}");
    }
}
