//! CDI device names: the kind `vendor/class` and the qualified name `vendor/class=name`.
//!
//! The character rules are those of the CDI reference implementation (its `pkg/parser`), which
//! is what every runtime that reads CDI specs enforces; the length limits are those of the
//! spec's "Kind" section (a DNS-subdomain-sized vendor, a 63-character class).

use std::fmt;
use std::str::FromStr;

/// Longest vendor (the part before `/`), as for a DNS subdomain (CDI spec, "Kind").
pub const MAX_VENDOR_LEN: usize = 253;
/// Longest class (the part between `/` and `=`) (CDI spec, "Kind").
pub const MAX_CLASS_LEN: usize = 63;
/// Longest device name. The spec sets none; this one keeps error messages and file names sane.
pub const MAX_DEVICE_NAME_LEN: usize = 253;

/// Why a vendor, class, device name or qualified name is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error(
        "{input:?} is not a qualified CDI device name: write it as vendor/class=name, \
         e.g. nvidia.com/gpu=0"
    )]
    Unqualified { input: String },
    #[error("{value:?} is not a kind: write vendor/class, e.g. nvidia.com/gpu")]
    BadKind { value: String },
    #[error("{what} {value:?} is empty")]
    Empty { what: &'static str, value: String },
    #[error("{what} {value:?} is longer than {max} characters")]
    TooLong {
        what: &'static str,
        value: String,
        max: usize,
    },
    #[error("{what} {value:?} must start with {expected}")]
    BadStart {
        what: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("{what} {value:?} must end with a letter or a digit")]
    BadEnd { what: &'static str, value: String },
    #[error("{what} {value:?} contains {found:?}; allowed are letters, digits and {allowed}")]
    BadChar {
        what: &'static str,
        value: String,
        found: char,
        allowed: &'static str,
    },
}

/// A fully qualified CDI device name, `vendor/class=name` (e.g. `nvidia.com/gpu=0`).
///
/// Ordering and equality are those of the string form.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QualifiedName {
    /// e.g. `nvidia.com`.
    pub vendor: String,
    /// e.g. `gpu`.
    pub class: String,
    /// e.g. `0`, `all`, `GPU-<uuid>`, `0:1` (MIG).
    pub name: String,
}

impl QualifiedName {
    /// Parses `vendor/class=name`, checking each part.
    ///
    /// Errors: [`NameError::Unqualified`] when the shape is wrong (no `/`, no `=`, an empty part
    /// or a leading `/` as in a device path); otherwise the first rule a part breaks.
    pub fn parse(input: &str) -> Result<Self, NameError> {
        let unqualified = || NameError::Unqualified {
            input: input.to_owned(),
        };
        if input.starts_with('/') {
            return Err(unqualified());
        }
        let (kind, name) = input.split_once('=').ok_or_else(unqualified)?;
        let (vendor, class) = kind.split_once('/').ok_or_else(unqualified)?;
        if vendor.is_empty() || class.is_empty() || name.is_empty() {
            return Err(unqualified());
        }
        validate_vendor(vendor)?;
        validate_class(class)?;
        validate_device_name(name)?;
        Ok(Self {
            vendor: vendor.to_owned(),
            class: class.to_owned(),
            name: name.to_owned(),
        })
    }

    /// Builds a name from parts already known to be valid (e.g. from a validated spec).
    pub fn new(vendor: &str, class: &str, name: &str) -> Self {
        Self {
            vendor: vendor.to_owned(),
            class: class.to_owned(),
            name: name.to_owned(),
        }
    }

    /// `vendor/class`, the kind of the spec that defines this device.
    pub fn kind(&self) -> String {
        format!("{}/{}", self.vendor, self.class)
    }
}

impl fmt::Display for QualifiedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}={}", self.vendor, self.class, self.name)
    }
}

impl FromStr for QualifiedName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Whether `input` parses as a valid `vendor/class=name`. A runtime uses this to tell a CDI
/// device request from a plain device path or index.
pub fn is_qualified(input: &str) -> bool {
    QualifiedName::parse(input).is_ok()
}

/// Splits a kind `vendor/class` into its two parts, each checked.
///
/// Errors: [`NameError::BadKind`] without a `/`; the rule a part breaks otherwise. Note
/// that a dot in the class is only allowed from CDI 0.6.0 on, which the spec validation checks
/// against the spec's `cdiVersion`, not this function.
pub fn parse_kind(kind: &str) -> Result<(&str, &str), NameError> {
    let Some((vendor, class)) = kind.split_once('/') else {
        return Err(NameError::BadKind {
            value: kind.to_owned(),
        });
    };
    validate_vendor(vendor)?;
    validate_class(class)?;
    Ok((vendor, class))
}

/// Checks a vendor: a letter first, a letter or digit last, and letters, digits, `_`, `-`, `.`
/// between; at most [`MAX_VENDOR_LEN`] characters.
pub fn validate_vendor(vendor: &str) -> Result<(), NameError> {
    check_label(
        "vendor",
        vendor,
        MAX_VENDOR_LEN,
        true,
        "'_', '-', '.'",
        |c| matches!(c, '_' | '-' | '.'),
    )
}

/// Checks a class: same rules as a vendor, at most [`MAX_CLASS_LEN`] characters.
pub fn validate_class(class: &str) -> Result<(), NameError> {
    check_label("class", class, MAX_CLASS_LEN, true, "'_', '-', '.'", |c| {
        matches!(c, '_' | '-' | '.')
    })
}

/// Checks a device name: a letter or digit first and last, and letters, digits, `_`, `-`, `.`,
/// `:` between. (A digit first is only allowed from CDI 0.5.0 on; the spec validation checks
/// that against `cdiVersion`.)
pub fn validate_device_name(name: &str) -> Result<(), NameError> {
    check_label(
        "device name",
        name,
        MAX_DEVICE_NAME_LEN,
        false,
        "'_', '-', '.', ':'",
        |c| matches!(c, '_' | '-' | '.' | ':'),
    )
}

fn check_label(
    what: &'static str,
    value: &str,
    max: usize,
    letter_first: bool,
    allowed: &'static str,
    inner: impl Fn(char) -> bool,
) -> Result<(), NameError> {
    let owned = || value.to_owned();
    let Some(first) = value.chars().next() else {
        return Err(NameError::Empty {
            what,
            value: owned(),
        });
    };
    if value.len() > max {
        return Err(NameError::TooLong {
            what,
            value: owned(),
            max,
        });
    }
    let first_ok = if letter_first {
        first.is_ascii_alphabetic()
    } else {
        first.is_ascii_alphanumeric()
    };
    if !first_ok {
        let expected = if letter_first {
            "a letter"
        } else {
            "a letter or a digit"
        };
        return Err(NameError::BadStart {
            what,
            value: owned(),
            expected,
        });
    }
    if let Some(found) = value
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || inner(c)))
    {
        return Err(NameError::BadChar {
            what,
            value: owned(),
            found,
            allowed,
        });
    }
    if !value.ends_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(NameError::BadEnd {
            what,
            value: owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_displays() {
        for s in [
            "nvidia.com/gpu=0",
            "nvidia.com/gpu=all",
            "vendor.com/mig-1g.5gb=0:1",
            "a/b=c",
        ] {
            let q = QualifiedName::parse(s).unwrap();
            assert_eq!(q.to_string(), s);
            assert!(is_qualified(s));
        }
        let q: QualifiedName = "nvidia.com/gpu=GPU-1234".parse().unwrap();
        assert_eq!(
            (q.vendor.as_str(), q.class.as_str(), q.name.as_str()),
            ("nvidia.com", "gpu", "GPU-1234")
        );
        assert_eq!(q.kind(), "nvidia.com/gpu");
    }

    #[test]
    fn refuses_unqualified_and_bad_parts() {
        for s in [
            "",
            "0",
            "/dev/nvidia0",
            "nvidia.com/gpu",
            "nvidia.com=0",
            "/gpu=0",
            "nvidia.com/=0",
            "nvidia.com/gpu=",
        ] {
            assert!(
                matches!(QualifiedName::parse(s), Err(NameError::Unqualified { .. })),
                "{s} should be unqualified"
            );
        }
        assert!(matches!(
            QualifiedName::parse("1vendor/gpu=0"),
            Err(NameError::BadStart { what: "vendor", .. })
        ));
        assert!(matches!(
            QualifiedName::parse("nvidia.com/gpu-=0"),
            Err(NameError::BadEnd { what: "class", .. })
        ));
        assert!(matches!(
            QualifiedName::parse("nvidia.com/a/b=0"),
            Err(NameError::BadChar {
                what: "class",
                found: '/',
                ..
            })
        ));
        assert!(matches!(
            QualifiedName::parse("nvidia.com/gpu=a=b"),
            Err(NameError::BadChar {
                what: "device name",
                found: '=',
                ..
            })
        ));
        assert!(matches!(
            QualifiedName::parse("nvidia.com/gpu=-0"),
            Err(NameError::BadStart { .. })
        ));
        assert!(matches!(
            QualifiedName::parse("nvidia.com/gpu=0:"),
            Err(NameError::BadEnd { .. })
        ));
        let long = format!("nvidia.com/{}=0", "g".repeat(64));
        assert!(matches!(
            QualifiedName::parse(&long),
            Err(NameError::TooLong { max: 63, .. })
        ));
        let msg = QualifiedName::parse("gpu0").unwrap_err().to_string();
        assert!(msg.contains("vendor/class=name"), "{msg}");
    }

    #[test]
    fn kinds() {
        assert_eq!(parse_kind("nvidia.com/gpu").unwrap(), ("nvidia.com", "gpu"));
        assert_eq!(
            parse_kind("foo.bar.baz/foo-bar123.B_az").unwrap(),
            ("foo.bar.baz", "foo-bar123.B_az")
        );
        for bad in [
            "foo",
            "vendor.com/foo/",
            "vendor.com/foo/bar",
            "/foo",
            "vendor.com/",
        ] {
            assert!(parse_kind(bad).is_err(), "{bad}");
        }
    }
}
