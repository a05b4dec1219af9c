//! Brand, architecture and compute capability from the marketing name in
//! `/proc/driver/nvidia/gpus/*/information`. NVIDIA's toolkit asks NVML for these; without NVML
//! the name is what the host tells, and for every data-center and workstation part of the last
//! ten years it is enough. An unknown name gives brand "unknown"/"nvidia" and no architecture.

/// The NVML brand, lowercase as `NVIDIA_REQUIRE_*` writes it (`brand=tesla`, `brand=nvidia`, ...).
pub(crate) fn brand(model: &str) -> &'static str {
    let words: Vec<String> = model
        .split(|c: char| c.is_whitespace() || c == '-')
        .map(str::to_ascii_lowercase)
        .collect();
    let has = |w: &str| words.iter().any(|x| x == w);
    if has("tesla") {
        "tesla"
    } else if has("quadro") {
        if has("rtx") {
            "quadrortx"
        } else {
            "quadro"
        }
    } else if has("geforce") {
        "geforce"
    } else if has("titan") {
        "titan"
    } else if has("nvs") {
        "nvs"
    } else if has("grid") {
        "grid"
    } else if has("nvidia") && has("rtx") {
        "nvidiartx"
    } else if has("nvidia") {
        // NVML's NVML_BRAND_NVIDIA: A100, H100, L40, B200, ... all say "NVIDIA <part>".
        "nvidia"
    } else {
        "unknown"
    }
}

/// Architecture name (lowercase) and CUDA compute capability, when the name is one we know.
pub(crate) fn architecture(model: &str) -> Option<(&'static str, (u32, u32))> {
    let words: Vec<String> = model
        .split(|c: char| c.is_whitespace() || c == '-')
        .map(str::to_ascii_uppercase)
        .collect();
    // Whole-word part names first: "A10" must not match "A100".
    for w in &words {
        if let Some(a) = part(w) {
            return Some(a);
        }
    }
    // Workstation names carry the generation as a word ("RTX 6000 Ada Generation").
    for w in &words {
        match w.as_str() {
            "BLACKWELL" => return Some(("blackwell", (12, 0))),
            "ADA" => return Some(("ada", (8, 9))),
            _ => {}
        }
    }
    // Consumer names: the series number after RTX/GTX.
    for pair in words.windows(2) {
        let series: u32 = pair[1]
            .trim_end_matches(|c: char| c.is_ascii_alphabetic())
            .parse()
            .unwrap_or(0);
        match (pair[0].as_str(), series) {
            ("RTX", 5000..=5999) => return Some(("blackwell", (12, 0))),
            ("RTX", 4000..=4999) => return Some(("ada", (8, 9))),
            ("RTX", 3000..=3999) => return Some(("ampere", (8, 6))),
            ("RTX", 2000..=2999) => return Some(("turing", (7, 5))),
            ("GTX", 1600..=1699) => return Some(("turing", (7, 5))),
            ("GTX", 1000..=1099) => return Some(("pascal", (6, 1))),
            ("GTX", 900..=999) => return Some(("maxwell", (5, 2))),
            _ => {}
        }
    }
    if words.iter().any(|w| w == "QUADRO") && words.iter().any(|w| w == "RTX") {
        return Some(("turing", (7, 5)));
    }
    if words.iter().any(|w| w == "TITAN") {
        if words.iter().any(|w| w == "RTX") {
            return Some(("turing", (7, 5)));
        }
        if words.iter().any(|w| w == "V") {
            return Some(("volta", (7, 0)));
        }
    }
    None
}

fn part(w: &str) -> Option<(&'static str, (u32, u32))> {
    Some(match w {
        "B300" | "GB300" => ("blackwell", (10, 3)),
        "B100" | "B200" | "GB200" => ("blackwell", (10, 0)),
        "H100" | "H200" | "H800" | "H20" | "GH200" => ("hopper", (9, 0)),
        "L40" | "L40S" | "L40G" | "L4" | "L20" | "L2" => ("ada", (8, 9)),
        "A100" | "A800" | "A30" => ("ampere", (8, 0)),
        "A10" | "A10G" | "A10M" | "A16" | "A2" | "A40" => ("ampere", (8, 6)),
        "T4" | "T4G" => ("turing", (7, 5)),
        "V100" | "V100S" => ("volta", (7, 0)),
        "P100" => ("pascal", (6, 0)),
        "P40" | "P4" | "P6" => ("pascal", (6, 1)),
        "M60" | "M40" | "M6" | "M4" => ("maxwell", (5, 2)),
        "K80" => ("kepler", (3, 7)),
        // RTX A6000/A5000/A4000/... workstation Ampere.
        _ if w.len() >= 4
            && w.starts_with('A')
            && w[1..].bytes().all(|b| b.is_ascii_digit())
            && w[1..].ends_with("000") =>
        {
            ("ampere", (8, 6))
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let cases = [
            ("NVIDIA H100 80GB HBM3", "nvidia", Some(("hopper", (9, 0)))),
            ("NVIDIA H100 PCIe", "nvidia", Some(("hopper", (9, 0)))),
            ("NVIDIA GH200 480GB", "nvidia", Some(("hopper", (9, 0)))),
            ("NVIDIA A100-SXM4-80GB", "nvidia", Some(("ampere", (8, 0)))),
            ("NVIDIA A10G", "nvidia", Some(("ampere", (8, 6)))),
            ("NVIDIA A10", "nvidia", Some(("ampere", (8, 6)))),
            ("Tesla V100-SXM2-16GB", "tesla", Some(("volta", (7, 0)))),
            ("Tesla T4", "tesla", Some(("turing", (7, 5)))),
            ("NVIDIA L40S", "nvidia", Some(("ada", (8, 9)))),
            ("NVIDIA B200", "nvidia", Some(("blackwell", (10, 0)))),
            ("NVIDIA GeForce RTX 4090", "geforce", Some(("ada", (8, 9)))),
            (
                "NVIDIA GeForce RTX 3080 Ti",
                "geforce",
                Some(("ampere", (8, 6))),
            ),
            (
                "NVIDIA GeForce GTX 1080",
                "geforce",
                Some(("pascal", (6, 1))),
            ),
            ("NVIDIA RTX A6000", "nvidiartx", Some(("ampere", (8, 6)))),
            (
                "NVIDIA RTX 6000 Ada Generation",
                "nvidiartx",
                Some(("ada", (8, 9))),
            ),
            (
                "NVIDIA RTX PRO 6000 Blackwell Server Edition",
                "nvidiartx",
                Some(("blackwell", (12, 0))),
            ),
            ("Quadro RTX 8000", "quadrortx", Some(("turing", (7, 5)))),
            ("Quadro P4000", "quadro", None),
            ("NVIDIA TITAN RTX", "titan", Some(("turing", (7, 5)))),
            ("Graphics Device", "unknown", None),
        ];
        for (model, b, a) in cases {
            assert_eq!(brand(model), b, "{model}");
            assert_eq!(architecture(model), a, "{model}");
        }
    }
}
