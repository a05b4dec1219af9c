//! The CUDA version a driver supports, without loading libcuda.
//!
//! NVIDIA's toolkit asks `cuDriverGetVersion` (through NVML). Loading libcuda here would run the
//! driver's code, start its threads and need the kernel module, all before the container's clone;
//! the real libcuda holds the number only as an immediate in code, so it cannot be read off the
//! file either. The number is a function of the driver branch (its major version) and NVIDIA
//! publishes the pairs: "CUDA Toolkit and Corresponding Driver Versions" in the CUDA release
//! notes, the first driver of each branch being the minimum for that CUDA release (11.x rows and
//! 12.6 -> 560.28.03, 13.0 -> 580.65.06 checked against copies of those notes; R565, which has no
//! toolkit of its own, reports 12.7 in nvidia-smi). A caller that knows better (config, a test)
//! passes the version in [`crate::Options`].

/// Driver branch (major version) -> CUDA (major, minor) reported by `cuDriverGetVersion`.
const TABLE: &[(u32, (u32, u32))] = &[
    (410, (10, 0)),
    (418, (10, 1)),
    (440, (10, 2)),
    (450, (11, 0)),
    (455, (11, 1)),
    (460, (11, 2)),
    (465, (11, 3)),
    (470, (11, 4)),
    (495, (11, 5)),
    (510, (11, 6)),
    (515, (11, 7)),
    (520, (11, 8)),
    (525, (12, 0)),
    (530, (12, 1)),
    (535, (12, 2)),
    (545, (12, 3)),
    (550, (12, 4)),
    (555, (12, 5)),
    (560, (12, 6)),
    (565, (12, 7)),
    (570, (12, 8)),
    (575, (12, 9)),
    (580, (13, 0)),
    (590, (13, 1)),
];

/// The CUDA version of a driver version such as "580.159.04".
///
/// A branch between two rows gets the lower row's version, and one newer than the table gets the
/// newest row's: a driver supports at least what an older one did, so the answer errs towards
/// refusing an image that asks for more, never towards promising what the driver lacks.
pub(crate) fn for_driver(driver_version: &str) -> Option<(u32, u32)> {
    let major: u32 = driver_version.split('.').next()?.parse().ok()?;
    TABLE
        .iter()
        .rev()
        .find(|(branch, _)| *branch <= major)
        .map(|(_, cuda)| *cuda)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branches() {
        assert_eq!(for_driver("580.159.04"), Some((13, 0)));
        assert_eq!(for_driver("580.65.06"), Some((13, 0)));
        assert_eq!(for_driver("575.57.08"), Some((12, 9)));
        assert_eq!(for_driver("570.86.15"), Some((12, 8)));
        assert_eq!(for_driver("565.57.01"), Some((12, 7)));
        assert_eq!(for_driver("560.35.03"), Some((12, 6)));
        assert_eq!(for_driver("555.42.06"), Some((12, 5)));
        assert_eq!(for_driver("550.127.05"), Some((12, 4)));
        assert_eq!(for_driver("545.23.08"), Some((12, 3)));
        assert_eq!(for_driver("535.129.03"), Some((12, 2)));
        assert_eq!(for_driver("530.30.02"), Some((12, 1)));
        assert_eq!(for_driver("525.147.05"), Some((12, 0)));
        assert_eq!(for_driver("520.61.05"), Some((11, 8)));
        assert_eq!(for_driver("515.105.01"), Some((11, 7)));
        assert_eq!(for_driver("510.108.03"), Some((11, 6)));
        assert_eq!(for_driver("470.256.02"), Some((11, 4)));
        // Between rows and past the table: the lower bound.
        assert_eq!(for_driver("540.4.0"), Some((12, 2)));
        assert_eq!(for_driver("610.1"), Some((13, 1)));
        assert_eq!(for_driver("390.157"), None);
        assert_eq!(for_driver("garbage"), None);
    }
}
