//! Our wording for the runc-compatible subcommands, whose argv comes from liboci-cli. The
//! parsers stay liboci-cli's (so runc's argv is accepted exactly); only the texts a user reads
//! are replaced, on the `clap::Command` built from the derive. An entry that names an argument
//! liboci-cli no longer has panics when the command is built, which the unit tests catch.

use clap::Command;

/// The wording of one subcommand: its one-line summary, a longer description, the help of each
/// argument (by clap id, i.e. the field name) and the examples shown after the options.
pub(super) struct Wording {
    pub name: &'static str,
    pub about: &'static str,
    pub long_about: Option<&'static str>,
    pub args: &'static [(&'static str, &'static str)],
    pub examples: &'static str,
}

const ID: (&str, &str) = ("container_id", "the container's ID (unique under --root)");

/// The global options, which stand before the subcommand as in runc.
pub(super) const GLOBAL_ARGS: &[(&str, &str)] = &[
    (
        "log",
        "write log lines to this file instead of stderr (containerd passes <bundle>/log.json \
         and shows its last error to the user)",
    ),
    (
        "debug",
        "log at debug level (overrides the config's log-level)",
    ),
    (
        "log_format",
        "format of the log lines: 'text' (logrus text, the default) or 'json' (what \
         containerd asks for)",
    ),
    (
        "root",
        "directory holding the containers' state (default: /run/nvidia-runtime; keep it on a \
         tmpfs)",
    ),
    (
        "systemd_cgroup",
        "place containers in systemd slices; cgroupsPath must then be \
         \"slice:prefix:name\", e.g. \"system.slice:docker:1234\"",
    ),
    (
        "version",
        "print the version, the commit and the versions of the OCI spec and libcontainer",
    ),
];

pub(super) const TOP_ABOUT: &str =
    "OCI runtime that gives containers NVIDIA GPUs (a drop-in for runc)";

pub(super) const TOP_LONG_ABOUT: &str = "\
OCI runtime that gives containers NVIDIA GPUs, a drop-in for runc.

It takes runc's command line, so Docker, containerd and CRI-O drive it unchanged. On create and \
run it reads what the container asks for (NVIDIA_VISIBLE_DEVICES, NVIDIA_DRIVER_CAPABILITIES, \
NVIDIA_REQUIRE_*, docker --gpus, device-list mounts), adds the host driver's device nodes, \
libraries and binaries to the bundle's config.json, and creates the container itself. A \
container that asks for no GPU is created exactly as runc would.

Configuration: /etc/nvidia-container-runtime/config.toml (NVIDIA's file and keys), or the file \
named by $NVIDIA_CTK_CONFIG_FILE_PATH.";

pub(super) const TOP_EXAMPLES: &str = "\
Examples:
  # register with Docker, then run a GPU container
  nvidia-runtime configure docker --set-as-default && systemctl restart docker
  docker run --rm --gpus all ubuntu nvidia-smi -L

  # run a bundle directly; its config.json's process.env asks for GPUs
  # (e.g. NVIDIA_VISIBLE_DEVICES=0,1)
  nvidia-runtime run --bundle /path/to/bundle my-container

  # shell completion and the version
  nvidia-runtime completion bash > /etc/bash_completion.d/nvidia-runtime
  nvidia-runtime --version

See 'nvidia-runtime <command> --help' and man nvidia-runtime(8).";

const BUNDLE: (&str, &str) = (
    "bundle",
    "the bundle directory: config.json and the root filesystem (default: the current directory)",
);
const CONSOLE_SOCKET: (&str, &str) = (
    "console_socket",
    "a unix socket to receive the pseudo-terminal's master end (when process.terminal is true)",
);
const PID_FILE: (&str, &str) = ("pid_file", "write the container process's pid to this file");
const NO_PIVOT: (&str, &str) = (
    "no_pivot",
    "enter the root filesystem with chroot instead of pivot_root (for a rootfs on a ramdisk)",
);
const NO_NEW_KEYRING: (&str, &str) = (
    "no_new_keyring",
    "keep the caller's session keyring instead of giving the container a new one",
);
const PRESERVE_FDS: (&str, &str) = (
    "preserve_fds",
    "pass N more open file descriptors (3 to 3+N-1) to the container process",
);

pub(super) const SUBCOMMANDS: &[Wording] = &[
    Wording {
        name: "create",
        about: "create a container from a bundle, with the GPUs it asks for, without starting it",
        long_about: Some(
            "Create a container from a bundle without starting its process: run 'start' next.\n\n\
             Before the container exists, the GPUs and driver capabilities that its environment, \
             annotations or device-list mounts ask for are added to the bundle's config.json \
             (device nodes, cgroup rules, driver libraries, binaries, firmware and sockets). An \
             unmet NVIDIA_REQUIRE_* constraint, an unknown GPU or a broken driver install stops \
             here with an error that names it, and the bundle is left as it was.",
        ),
        args: &[
            BUNDLE,
            CONSOLE_SOCKET,
            PID_FILE,
            NO_PIVOT,
            NO_NEW_KEYRING,
            PRESERVE_FDS,
            ID,
        ],
        examples: "\
Examples:
  # create, start, then remove a container
  nvidia-runtime create --bundle /var/lib/bundles/job1 job1
  nvidia-runtime start job1
  nvidia-runtime delete job1

  # the container's config.json asks for GPUs with, e.g.:
  #   \"env\": [\"NVIDIA_VISIBLE_DEVICES=0,1\", \"NVIDIA_DRIVER_CAPABILITIES=compute,utility\"]",
    },
    Wording {
        name: "start",
        about: "start the process of a created container",
        long_about: None,
        args: &[ID],
        examples: "\
Examples:
  nvidia-runtime start job1",
    },
    Wording {
        name: "state",
        about: "print a container's state as JSON (runc's format)",
        long_about: None,
        args: &[ID],
        examples: "\
Examples:
  nvidia-runtime state job1
  nvidia-runtime --root /run/containerd/runc/k8s.io state 0123abcd",
    },
    Wording {
        name: "kill",
        about: "send a signal to a container's process (default: SIGTERM)",
        long_about: None,
        args: &[
            ID,
            (
                "signal",
                "the signal, by name (TERM, SIGTERM) or number (15); default: SIGTERM",
            ),
            (
                "all",
                "signal every process in the container, not only its init process",
            ),
        ],
        examples: "\
Examples:
  nvidia-runtime kill job1
  nvidia-runtime kill job1 KILL
  nvidia-runtime kill --all job1 9",
    },
    Wording {
        name: "delete",
        about: "remove a stopped container and everything it held (state, cgroups)",
        long_about: None,
        args: &[
            ID,
            (
                "force",
                "kill the container with SIGKILL first if it still runs",
            ),
        ],
        examples: "\
Examples:
  nvidia-runtime delete job1
  nvidia-runtime delete --force job1",
    },
    Wording {
        name: "run",
        about: "create and start a container, with the GPUs it asks for, and wait for it",
        long_about: Some(
            "Create a container from a bundle and start it: 'create' then 'start' in one step \
             (see 'create --help' for how GPUs are added). Unless --detach is given, waits for \
             the process and exits with its exit status.",
        ),
        args: &[
            BUNDLE,
            CONSOLE_SOCKET,
            PID_FILE,
            (
                "no_subreaper",
                "do not reap the container's orphaned processes while waiting",
            ),
            NO_PIVOT,
            NO_NEW_KEYRING,
            PRESERVE_FDS,
            (
                "keep",
                "keep the container's state and cgroup after it exits (remove them with delete)",
            ),
            ID,
            (
                "detach",
                "return once the container runs instead of waiting for it",
            ),
        ],
        examples: "\
Examples:
  # all GPUs, from the bundle in the current directory
  nvidia-runtime run job1

  # in the background
  nvidia-runtime run --detach --bundle /var/lib/bundles/job1 job1",
    },
    Wording {
        name: "exec",
        about: "run another process in a running container",
        long_about: Some(
            "Run another process in a running container, with the container's namespaces, \
             cgroups and GPUs. Exits with the process's status, or 255 when the process could \
             not be started.",
        ),
        args: &[
            (
                "console_socket",
                "a unix socket to receive the pseudo-terminal's master end (with --tty)",
            ),
            ("cwd", "working directory of the process inside the container"),
            ("env", "set an environment variable, as VAR=value (repeatable)"),
            ("tty", "give the process a pseudo-terminal"),
            (
                "user",
                "run as UID or UID:GID (numbers, as in the container's /etc/passwd)",
            ),
            ("additional_gids", "add a supplementary group ID (repeatable)"),
            (
                "process",
                "read the whole process (args, env, user, ...) from this JSON file, as in \
                 config.json's \"process\"",
            ),
            ("detach", "return once the process runs instead of waiting for it"),
            ("pid_file", "write the process's pid to this file"),
            ("process_label", "SELinux label of the process"),
            ("apparmor", "AppArmor profile of the process"),
            ("no_new_privs", "set no_new_privs: the process can never gain privileges"),
            ("cap", "add a capability, e.g. CAP_SYS_PTRACE (repeatable)"),
            PRESERVE_FDS,
            ("ignore_paused", "run the process even if the container is paused"),
            (
                "cgroup",
                "run the process in this sub-cgroup of the container's cgroup",
            ),
            ID,
            ("command", "the program and its arguments"),
        ],
        examples: "\
Examples:
  nvidia-runtime exec job1 nvidia-smi -L
  nvidia-runtime exec --tty job1 sh
  nvidia-runtime exec --env CUDA_VISIBLE_DEVICES=0 --user 1000:1000 job1 python3 train.py",
    },
    Wording {
        name: "ps",
        about: "list the processes of a container",
        long_about: None,
        args: &[
            (
                "format",
                "'table' (the host's ps output for the container's processes) or 'json' (their pids)",
            ),
            ID,
            (
                "ps_options",
                "options for ps (default: -ef), after the container's ID",
            ),
        ],
        examples: "\
Examples:
  nvidia-runtime ps job1
  nvidia-runtime ps --format json job1
  nvidia-runtime ps job1 -o pid,comm",
    },
    Wording {
        name: "pause",
        about: "freeze every process of a container",
        long_about: None,
        args: &[ID],
        examples: "\
Examples:
  nvidia-runtime pause job1
  nvidia-runtime resume job1",
    },
    Wording {
        name: "resume",
        about: "thaw the processes of a paused container",
        long_about: None,
        args: &[ID],
        examples: "\
Examples:
  nvidia-runtime resume job1",
    },
    Wording {
        name: "update",
        about: "change a running container's resource limits",
        long_about: None,
        args: &[
            (
                "resources",
                "read the limits from this JSON file (config.json's linux.resources); '-' reads \
                 stdin; the other options are then ignored",
            ),
            ("blkio_weight", "block I/O weight (10 to 1000)"),
            ("cpu_period", "CPU CFS period, in microseconds"),
            ("cpu_quota", "CPU time allowed per period, in microseconds"),
            ("cpu_rt_period", "CPU real-time period, in microseconds"),
            ("cpu_rt_runtime", "CPU real-time time allowed per period, in microseconds"),
            ("cpu_share", "CPU shares (a weight relative to other containers)"),
            ("cpuset_cpus", "CPUs the container may use, e.g. 0-3,7"),
            ("cpuset_mems", "memory nodes the container may use, e.g. 0-1"),
            ("memory", "memory limit, in bytes"),
            ("memory_reservation", "memory soft limit, in bytes"),
            ("memory_swap", "memory plus swap limit, in bytes; -1 for no limit"),
            ("pids_limit", "the most processes the container may have"),
            ("l3_cache_schema", "Intel RDT L3 cache schema"),
            ("mem_bw_schema", "Intel RDT memory bandwidth schema"),
            ID,
        ],
        examples: "\
Examples:
  nvidia-runtime update --memory 8589934592 --pids-limit 512 job1
  echo '{\"cpu\": {\"shares\": 512}}' | nvidia-runtime update --resources - job1",
    },
    Wording {
        name: "features",
        about: "print, as JSON, the OCI runtime-spec features this runtime implements",
        long_about: None,
        args: &[],
        examples: "\
Examples:
  nvidia-runtime features",
    },
    Wording {
        name: "spec",
        about: "write a template config.json to start a bundle from",
        long_about: None,
        args: &[
            (
                "bundle",
                "write it in this directory (default: the current directory)",
            ),
            (
                "rootless",
                "a template for a container run by an unprivileged user",
            ),
        ],
        examples: "\
Examples:
  mkdir -p bundle/rootfs && cd bundle && nvidia-runtime spec",
    },
    Wording {
        name: "list",
        about: "list the containers under --root",
        long_about: None,
        args: &[
            ("format", "'table' or 'json'"),
            ("quiet", "print only the containers' IDs"),
        ],
        examples: "\
Examples:
  nvidia-runtime list
  nvidia-runtime --root /run/containerd/runc/moby list --format json",
    },
    Wording {
        name: "events",
        about: "not supported: fails with an error (runc's events streams resource statistics)",
        long_about: None,
        args: &[
            ("interval", "seconds between two statistics (accepted, not used)"),
            ("stats", "print the statistics once (accepted, not used)"),
            ID,
        ],
        examples: "\
Examples:
  # resource statistics come from the container manager instead, e.g.
  docker stats",
    },
    Wording {
        name: "checkpoint",
        about: "not supported: fails with an error (runc's checkpoint uses CRIU)",
        long_about: None,
        args: &[
            ("image_path", "directory for the CRIU images (accepted, not used)"),
            ("work_path", "directory for CRIU's work files (accepted, not used)"),
            ("leave_running", "accepted, not used"),
            ("tcp_established", "accepted, not used"),
            ("link_remap", "accepted, not used"),
            ("ext_unix_sk", "accepted, not used"),
            ("shell_job", "accepted, not used"),
            ("file_locks", "accepted, not used"),
            ("manage_cgroups_mode", "accepted, not used"),
            ID,
        ],
        examples: "\
Examples:
  # none: checkpoint/restore of GPU containers is not supported",
    },
];

/// Replaces the texts of `cmd` (the top level) and of its subcommands that have an entry in
/// [`SUBCOMMANDS`]. Our own subcommands carry their wording in their derive attributes.
pub(super) fn apply(mut cmd: Command) -> Command {
    cmd = cmd
        .about(TOP_ABOUT)
        .long_about(TOP_LONG_ABOUT)
        .after_help(TOP_EXAMPLES);
    for (id, text) in GLOBAL_ARGS {
        cmd = cmd.mut_arg(*id, |arg| arg.help(*text));
    }
    for wording in SUBCOMMANDS {
        cmd = cmd.mut_subcommand(wording.name, |sub| reword(sub, wording));
    }
    cmd
}

/// Replaces the texts of `sub`, a subcommand with an entry in [`SUBCOMMANDS`] built on its own
/// (`cli::runc_subcommand`); unchanged otherwise.
pub(super) fn apply_to_subcommand(sub: Command) -> Command {
    match SUBCOMMANDS
        .iter()
        .find(|wording| wording.name == sub.get_name())
    {
        Some(wording) => reword(sub, wording),
        None => sub,
    }
}

fn reword(mut sub: Command, wording: &Wording) -> Command {
    sub = sub
        .about(wording.about)
        .long_about(wording.long_about)
        .after_help(wording.examples);
    for (id, text) in wording.args {
        sub = sub.mut_arg(*id, |arg| arg.help(*text));
    }
    sub
}
