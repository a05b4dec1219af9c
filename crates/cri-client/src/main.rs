//! `cri-client`: a test tool that drives a CRI runtime (`runtime.v1`, e.g. containerd's CRI
//! plugin) over its unix socket with the same calls the kubelet makes for a pod: RunPodSandbox
//! with a runtime handler (a RuntimeClass), CreateContainer with the pod's sandbox config,
//! StartContainer, ExecSync, and the stop/remove calls. Used by tests/e2e/kubernetes.sh; not
//! part of the runtime.
//!
//! Output: ids on stdout (one line), statuses as JSON; `exec-sync` prints the command's
//! stdout/stderr and exits with its exit code. A failed call exits 1 with the gRPC status.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use hyper_util::rt::TokioIo;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::{
    ContainerConfig, ContainerMetadata, ContainerStatusRequest, CreateContainerRequest,
    ExecSyncRequest, ImageSpec, ImageStatusRequest, KeyValue, LinuxPodSandboxConfig,
    LinuxSandboxSecurityContext, ListContainersRequest, ListPodSandboxRequest, Mount,
    NamespaceMode, NamespaceOption, PodSandboxConfig, PodSandboxMetadata, PodSandboxStatusRequest,
    RemoveContainerRequest, RemovePodSandboxRequest, RunPodSandboxRequest, StartContainerRequest,
    StopContainerRequest, StopPodSandboxRequest, VersionRequest,
};
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};

#[derive(Parser)]
#[command(about = "Drive a CRI runtime over its unix socket, as the kubelet does (test tool)")]
struct Cli {
    /// The CRI socket (containerd: its [grpc] address).
    #[arg(long, short = 'r')]
    endpoint: PathBuf,
    /// Seconds allowed for each call.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// RuntimeService.Version as JSON.
    Version,
    /// ImageService.ImageStatus of REF as JSON (`{"image": null}` when the runtime lacks it).
    ImageStatus { image: String },
    /// RunPodSandbox; prints the pod id and writes the sandbox config to --config-out, which
    /// create-container needs (the kubelet sends it with every CreateContainer).
    RunPod(RunPodArgs),
    /// CreateContainer in POD; prints the container id.
    CreateContainer(CreateContainerArgs),
    /// StartContainer.
    Start { id: String },
    /// ExecSync: prints the command's stdout and stderr, exits with its exit code.
    ExecSync {
        id: String,
        /// Seconds the runtime allows the command (0: no limit).
        #[arg(long, default_value_t = 30)]
        exec_timeout: i64,
        #[arg(last = true, required = true)]
        cmd: Vec<String>,
    },
    /// ContainerStatus as JSON.
    Status { id: String },
    /// The container's log lines (the message part of each CRI log line).
    Logs { id: String },
    /// StopContainer (SIGTERM, then SIGKILL after --grace seconds).
    Stop {
        id: String,
        #[arg(long, default_value_t = 2)]
        grace: i64,
    },
    /// RemoveContainer.
    Rm { id: String },
    /// PodSandboxStatus as JSON.
    PodStatus { id: String },
    /// StopPodSandbox (stops its containers too).
    StopPod { id: String },
    /// RemovePodSandbox (removes its containers too).
    RmPod { id: String },
    /// Ids of every pod sandbox, one a line.
    Pods,
    /// Ids of every container, one a line.
    Containers,
}

#[derive(clap::Args)]
struct RunPodArgs {
    /// The runtime handler (a RuntimeClass's `handler`); "" is the runtime's default.
    #[arg(long, default_value = "")]
    handler: String,
    #[arg(long)]
    name: String,
    #[arg(long, default_value = "default")]
    namespace: String,
    /// The pod's uid (default: NAMESPACE-NAME).
    #[arg(long)]
    uid: Option<String>,
    /// Pod annotation KEY=VALUE (repeatable).
    #[arg(long = "annotation", value_parser = key_value)]
    annotations: Vec<(String, String)>,
    /// Absolute directory for the containers' logs.
    #[arg(long)]
    log_dir: PathBuf,
    /// The pod's cgroup parent (the kubelet's cgroupfs driver: /kubepods/...).
    #[arg(long, default_value = "")]
    cgroup_parent: String,
    /// Where to write the sandbox config (JSON) for create-container.
    #[arg(long)]
    config_out: PathBuf,
}

#[derive(clap::Args)]
struct CreateContainerArgs {
    pod: String,
    /// The sandbox config run-pod wrote.
    #[arg(long)]
    pod_config: PathBuf,
    #[arg(long)]
    name: String,
    #[arg(long)]
    image: String,
    /// Environment KEY=VALUE (repeatable), as the kubelet passes a device plugin's envs.
    #[arg(long = "env", value_parser = key_value)]
    envs: Vec<(String, String)>,
    /// HOST:CONTAINER[:ro] bind mount (repeatable), as for a device plugin's mounts.
    #[arg(long = "mount", value_parser = mount)]
    mounts: Vec<Mount>,
    /// Container annotation KEY=VALUE (repeatable), as for a device plugin's annotations.
    #[arg(long = "annotation", value_parser = key_value)]
    annotations: Vec<(String, String)>,
    /// The command (replaces the image's entrypoint).
    #[arg(last = true, required = true)]
    cmd: Vec<String>,
}

fn key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("{s:?} is not KEY=VALUE"))
}

fn mount(s: &str) -> Result<Mount, String> {
    let parts: Vec<&str> = s.split(':').collect();
    let (host, ctr, readonly) = match parts[..] {
        [h, c] => (h, c, false),
        [h, c, "ro"] => (h, c, true),
        _ => return Err(format!("{s:?} is not HOST:CONTAINER[:ro]")),
    };
    Ok(Mount {
        host_path: host.to_string(),
        container_path: ctr.to_string(),
        readonly,
        ..Default::default()
    })
}

async fn channel(socket: &Path) -> Result<Channel> {
    let target = socket.to_path_buf();
    // The URI is required by tonic but unused: every connection goes to the unix socket.
    let channel = Endpoint::try_from("http://[::]:50051")?
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let target = target.clone();
            async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(target).await?)) }
        }))
        .await
        .with_context(|| format!("cannot connect to {}", socket.display()))?;
    Ok(channel)
}

fn print_json(v: &impl serde::Serialize) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn main() {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match rt.block_on(run(cli)) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("cri-client: {e:#}");
            std::process::exit(1);
        }
    }
}

async fn run(cli: Cli) -> Result<i32> {
    let limit = Duration::from_secs(cli.timeout);
    tokio::time::timeout(limit, dispatch(cli))
        .await
        .with_context(|| format!("no answer within {}s", limit.as_secs()))?
}

async fn dispatch(cli: Cli) -> Result<i32> {
    let ch = channel(&cli.endpoint).await?;
    let mut rs = RuntimeServiceClient::new(ch.clone());
    match cli.command {
        Cmd::Version => {
            let v = rs
                .version(VersionRequest {
                    version: "v1".into(),
                })
                .await?;
            print_json(v.get_ref())?;
        }
        Cmd::ImageStatus { image } => {
            let mut is = ImageServiceClient::new(ch);
            let r = is
                .image_status(ImageStatusRequest {
                    image: Some(ImageSpec {
                        image,
                        ..Default::default()
                    }),
                    verbose: false,
                })
                .await?;
            print_json(r.get_ref())?;
        }
        Cmd::RunPod(a) => {
            let config = pod_config(&a);
            std::fs::write(&a.config_out, serde_json::to_vec_pretty(&config)?)
                .with_context(|| format!("cannot write {}", a.config_out.display()))?;
            let r = rs
                .run_pod_sandbox(RunPodSandboxRequest {
                    config: Some(config),
                    runtime_handler: a.handler,
                })
                .await?;
            println!("{}", r.get_ref().pod_sandbox_id);
        }
        Cmd::CreateContainer(a) => {
            let text = std::fs::read(&a.pod_config)
                .with_context(|| format!("cannot read {}", a.pod_config.display()))?;
            let sandbox: PodSandboxConfig = serde_json::from_slice(&text)
                .with_context(|| format!("{} is not a sandbox config", a.pod_config.display()))?;
            let config = ContainerConfig {
                metadata: Some(ContainerMetadata {
                    name: a.name.clone(),
                    attempt: 0,
                }),
                image: Some(ImageSpec {
                    image: a.image,
                    ..Default::default()
                }),
                command: a.cmd,
                envs: a
                    .envs
                    .into_iter()
                    .map(|(key, value)| KeyValue { key, value })
                    .collect(),
                mounts: a.mounts,
                annotations: a.annotations.into_iter().collect(),
                log_path: format!("{}.log", a.name),
                ..Default::default()
            };
            let r = rs
                .create_container(CreateContainerRequest {
                    pod_sandbox_id: a.pod,
                    config: Some(config),
                    sandbox_config: Some(sandbox),
                })
                .await?;
            println!("{}", r.get_ref().container_id);
        }
        Cmd::Start { id } => {
            rs.start_container(StartContainerRequest { container_id: id })
                .await?;
        }
        Cmd::ExecSync {
            id,
            exec_timeout,
            cmd,
        } => {
            let r = rs
                .exec_sync(ExecSyncRequest {
                    container_id: id,
                    cmd,
                    timeout: exec_timeout,
                })
                .await?;
            let r = r.get_ref();
            std::io::stdout().write_all(&r.stdout)?;
            std::io::stderr().write_all(&r.stderr)?;
            return Ok(r.exit_code);
        }
        Cmd::Status { id } => {
            let r = rs
                .container_status(ContainerStatusRequest {
                    container_id: id,
                    verbose: false,
                })
                .await?;
            print_json(r.get_ref())?;
        }
        Cmd::Logs { id } => {
            let r = rs
                .container_status(ContainerStatusRequest {
                    container_id: id.clone(),
                    verbose: false,
                })
                .await?;
            let Some(status) = &r.get_ref().status else {
                bail!("no status for container {id}")
            };
            let text = std::fs::read_to_string(&status.log_path)
                .with_context(|| format!("cannot read the log {}", status.log_path))?;
            // CRI log format: "<RFC3339 time> <stdout|stderr> <P|F> <message>"
            for line in text.lines() {
                let msg = line.splitn(4, ' ').nth(3).unwrap_or("");
                println!("{msg}");
            }
        }
        Cmd::Stop { id, grace } => {
            rs.stop_container(StopContainerRequest {
                container_id: id,
                timeout: grace,
            })
            .await?;
        }
        Cmd::Rm { id } => {
            rs.remove_container(RemoveContainerRequest { container_id: id })
                .await?;
        }
        Cmd::PodStatus { id } => {
            let r = rs
                .pod_sandbox_status(PodSandboxStatusRequest {
                    pod_sandbox_id: id,
                    verbose: false,
                })
                .await?;
            print_json(r.get_ref())?;
        }
        Cmd::StopPod { id } => {
            rs.stop_pod_sandbox(StopPodSandboxRequest { pod_sandbox_id: id })
                .await?;
        }
        Cmd::RmPod { id } => {
            rs.remove_pod_sandbox(RemovePodSandboxRequest { pod_sandbox_id: id })
                .await?;
        }
        Cmd::Pods => {
            let r = rs
                .list_pod_sandbox(ListPodSandboxRequest { filter: None })
                .await?;
            for p in &r.get_ref().items {
                println!("{}", p.id);
            }
        }
        Cmd::Containers => {
            let r = rs
                .list_containers(ListContainersRequest { filter: None })
                .await?;
            for c in &r.get_ref().containers {
                println!("{}", c.id);
            }
        }
    }
    Ok(0)
}

/// The sandbox config the kubelet would send for a host-network pod (no CNI is involved, so
/// none needs to be installed): pid and ipc namespaces of the pod's own, no hostname.
fn pod_config(a: &RunPodArgs) -> PodSandboxConfig {
    let uid = a
        .uid
        .clone()
        .unwrap_or_else(|| format!("{}-{}", a.namespace, a.name));
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: a.name.clone(),
            uid,
            namespace: a.namespace.clone(),
            attempt: 0,
        }),
        // None for a host-network pod: it shares the host's UTS namespace.
        log_directory: a.log_dir.display().to_string(),
        annotations: a.annotations.iter().cloned().collect::<HashMap<_, _>>(),
        linux: Some(LinuxPodSandboxConfig {
            cgroup_parent: a.cgroup_parent.clone(),
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: Some(NamespaceOption {
                    network: NamespaceMode::Node as i32,
                    pid: NamespaceMode::Pod as i32,
                    ipc: NamespaceMode::Pod as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_parse_with_and_without_ro() {
        let m = mount("/dev/null:/var/run/nvidia-container-devices/GPU-1").unwrap();
        assert_eq!(
            (m.host_path.as_str(), m.container_path.as_str(), m.readonly),
            (
                "/dev/null",
                "/var/run/nvidia-container-devices/GPU-1",
                false
            )
        );
        assert!(mount("/a:/b:ro").unwrap().readonly);
        assert!(mount("/a").is_err());
        assert!(mount("/a:/b:rw").is_err());
    }

    #[test]
    fn key_values_split_at_the_first_equals() {
        // A CDI annotation's value holds '=' itself.
        assert_eq!(
            key_value("cdi.k8s.io/x=nvidia.com/gpu=0").unwrap(),
            ("cdi.k8s.io/x".to_string(), "nvidia.com/gpu=0".to_string())
        );
        assert!(key_value("novalue").is_err());
    }

    #[test]
    fn pods_share_the_host_network_and_have_their_own_pid_namespace() {
        let cli = Cli::parse_from([
            "cri-client",
            "-r",
            "/s",
            "run-pod",
            "--name",
            "p",
            "--log-dir",
            "/l",
            "--config-out",
            "/c",
        ]);
        let Cmd::RunPod(a) = cli.command else {
            panic!("not run-pod")
        };
        let c = pod_config(&a);
        let ns = c
            .linux
            .unwrap()
            .security_context
            .unwrap()
            .namespace_options
            .unwrap();
        assert_eq!(ns.network, NamespaceMode::Node as i32);
        assert_eq!(ns.pid, NamespaceMode::Pod as i32);
        assert_eq!(c.metadata.unwrap().uid, "default-p");
        assert_eq!(c.hostname, "");
    }
}
