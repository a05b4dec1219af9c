//! `update`: new cgroup limits for a running container, as containerd sends them
//! (`update --resources - ID`, the OCI `LinuxResources` JSON on stdin), or from runc's flags.

use std::io::Read;

use anyhow::{Context, Result};
use libcgroups::common::{CgroupManager, ControllerOpt};
use liboci_cli::{GlobalOpts, Update};
use oci_spec::runtime::{LinuxPidsBuilder, LinuxResources};

use crate::cli::root_dir;
use crate::state;

pub fn update(args: Update, global: &GlobalOpts) -> Result<u8> {
    let container = state::load(&root_dir(global), &args.container_id)?;

    let mut resources: LinuxResources = match &args.resources {
        Some(path) => {
            let text = if path.as_os_str() == "-" {
                let mut text = String::new();
                std::io::stdin()
                    .read_to_string(&mut text)
                    .context("cannot read resources from stdin")?;
                text
            } else {
                std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read {}", path.display()))?
            };
            serde_json::from_str(&text).context("cannot parse resources JSON")?
        }
        None => LinuxResources::default(),
    };
    apply_flags(&mut resources, &args)?;

    let manager = state::cgroup_manager(&container)?;
    manager
        .apply(&ControllerOpt {
            resources: &resources,
            disable_oom_killer: false,
            oom_score_adj: None,
            freezer_state: None,
        })
        .context("cannot apply the new resources")?;
    Ok(0)
}

/// runc's individual flags win over the JSON, as in runc.
fn apply_flags(resources: &mut LinuxResources, args: &Update) -> Result<()> {
    if args.memory.is_some() || args.memory_reservation.is_some() || args.memory_swap.is_some() {
        let mut memory = resources.memory().unwrap_or_default();
        if let Some(limit) = args.memory {
            memory.set_limit(Some(limit as i64));
        }
        if let Some(reservation) = args.memory_reservation {
            memory.set_reservation(Some(reservation as i64));
        }
        if let Some(swap) = args.memory_swap {
            memory.set_swap(Some(swap));
        }
        resources.set_memory(Some(memory));
    }
    let cpu_flags = args.cpu_period.is_some()
        || args.cpu_quota.is_some()
        || args.cpu_share.is_some()
        || args.cpuset_cpus.is_some()
        || args.cpuset_mems.is_some()
        || args.cpu_rt_period.is_some()
        || args.cpu_rt_runtime.is_some();
    if cpu_flags {
        let mut cpu = resources.cpu().clone().unwrap_or_default();
        if let Some(period) = args.cpu_period {
            cpu.set_period(Some(period));
        }
        if let Some(quota) = args.cpu_quota {
            cpu.set_quota(Some(quota as i64));
        }
        if let Some(shares) = args.cpu_share {
            cpu.set_shares(Some(shares));
        }
        if let Some(cpus) = &args.cpuset_cpus {
            cpu.set_cpus(Some(cpus.clone()));
        }
        if let Some(mems) = &args.cpuset_mems {
            cpu.set_mems(Some(mems.clone()));
        }
        if let Some(period) = args.cpu_rt_period {
            cpu.set_realtime_period(Some(period));
        }
        if let Some(runtime) = args.cpu_rt_runtime {
            cpu.set_realtime_runtime(Some(runtime as i64));
        }
        resources.set_cpu(Some(cpu));
    }
    if let Some(limit) = args.pids_limit {
        resources.set_pids(Some(LinuxPidsBuilder::default().limit(limit).build()?));
    }
    Ok(())
}
