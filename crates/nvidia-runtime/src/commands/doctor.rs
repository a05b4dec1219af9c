//! `doctor`: what is wrong with this GPU host for GPU containers, and how to fix it. The checks
//! live in the `doctor` crate; this file reads the runtime's config for the roots, prints the
//! report and turns it into the exit code. It changes nothing on the host.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};

/// Check this host for GPU containers: driver, device nodes, libraries, cgroups, engines, CDI
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Each finding has a stable id (e.g. devices.uvm-missing), a severity (error, warning, info, ok) \
and a fix. The driver is looked for where the runtime looks (its config.toml: driver root, \
dev root, proc root). Nothing on the host is changed.

Exit status: 0 when no finding is an error (warnings alone pass), 1 otherwise.

Examples:
  nvidia-runtime doctor
  nvidia-runtime doctor --json | jq '.findings[] | select(.severity == \"error\")'
  nvidia-runtime doctor --trial")]
pub struct Doctor {
    /// print {"findings": [{"id", "severity", "message", "fix"}], "summary": {...}} instead of text
    #[arg(long)]
    pub json: bool,
    /// also start a trial GPU container (`run` of a busybox bundle with NVIDIA_VISIBLE_DEVICES=all)
    #[arg(long)]
    pub trial: bool,
    /// Docker's config file
    #[arg(long, value_name = "FILE", default_value = doctor::DOCKER_CONFIG)]
    pub docker_config: PathBuf,
    /// containerd's main config file (the files its `imports` name are read too)
    #[arg(long, value_name = "FILE", default_value = doctor::CONTAINERD_CONFIG)]
    pub containerd_config: PathBuf,
    /// CRI-O's config directory (crio.conf and crio.conf.d/)
    #[arg(long, value_name = "DIR", default_value = doctor::CRIO_DIR)]
    pub crio_dir: PathBuf,
    /// a CDI spec directory; repeat for several [default: /etc/cdi and /var/run/cdi]
    #[arg(long = "cdi-dir", value_name = "DIR")]
    pub cdi_dirs: Vec<PathBuf>,
    /// where the cgroup hierarchies are mounted
    #[arg(long, value_name = "DIR", default_value = doctor::CGROUP_ROOT, hide = true)]
    pub cgroup_root: PathBuf,
    /// the static busybox the trial container runs [default: the host's]
    #[arg(long, value_name = "FILE", requires = "trial")]
    pub busybox: Option<PathBuf>,
}

/// How long the trial container may take, start to exit.
const TRIAL_TIMEOUT: Duration = Duration::from_secs(60);

pub fn doctor(args: Doctor) -> Result<u8> {
    let runtime = std::env::current_exe().context("cannot tell where this binary is")?;
    let mut findings = Vec::new();
    let roots = match inject::Config::load() {
        Ok(config) => {
            let file = std::env::var_os(inject::config::PATH_ENV)
                .filter(|p| !p.is_empty())
                .map(PathBuf::from)
                .or_else(|| Some(PathBuf::from(inject::config::DEFAULT_PATH)))
                .filter(|p| p.exists());
            let roots = config.roots();
            findings.extend(doctor::config_loaded(
                file.as_deref(),
                &roots,
                &config.warnings,
            ));
            Some(roots)
        }
        Err(err) => {
            findings.push(doctor::config_invalid(&err.to_string()));
            None
        }
    };
    let host = doctor::Host {
        roots,
        runtime: runtime.clone(),
        docker_config: args.docker_config,
        containerd_config: args.containerd_config,
        crio_dir: args.crio_dir,
        cdi_dirs: if args.cdi_dirs.is_empty() {
            doctor::CDI_DIRS.iter().map(PathBuf::from).collect()
        } else {
            args.cdi_dirs
        },
        cgroup_root: args.cgroup_root,
    };
    // Discovery logs each missing node or library; here each is a finding already.
    tracing::subscriber::with_default(tracing::subscriber::NoSubscriber::default(), || {
        findings.extend(doctor::check(&host));
    });
    if args.trial {
        let gpus = host
            .roots
            .as_ref()
            .map_or(0, |r| doctor::devices::gpu_minors(&r.proc_).len());
        let busybox = args.busybox.or_else(doctor::trial::find_busybox);
        findings.push(doctor::trial::run(
            &runtime,
            busybox.as_deref(),
            gpus,
            TRIAL_TIMEOUT,
        ));
    }
    let report = doctor::Report::new(findings);
    let text = if args.json {
        serde_json::to_string_pretty(&report)? + "\n"
    } else {
        report.to_text()
    };
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        // A reader that stopped early (`| head`) wanted no more; the verdict stands.
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => {}
        other => other.context("cannot write the report")?,
    }
    Ok(report.exit_code())
}
