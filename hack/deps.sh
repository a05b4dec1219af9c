#!/usr/bin/env bash
# Installs what building and testing nvidia-runtime needs on a fresh Debian/Ubuntu machine.
# Idempotent: packages already present are skipped. Sourced or run by hack/demo and hack/test.
set -euo pipefail

# Build: libcontainer's libseccomp (Docker's seccomp profile) and cgroupsv2_devices (libbpf,
# built from source: libelf, zlib, pkg-config). Tests: real docker/containerd/runc/podman, busybox,
# protoc for the CRI test client's generated gRPC code (k8s-cri's build script), and strace
# (which of the runtime's processes does what, where no output can tell).
PACKAGES=(gcc make pkg-config libseccomp-dev libelf-dev zlib1g-dev protobuf-compiler
          busybox-static docker.io containerd runc podman python3 procps util-linux strace)

missing=()
for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    echo "installing: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "cargo (rustup) is required" >&2; exit 1; }
