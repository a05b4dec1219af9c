use super::*;

/// The `--help` (long form, as printed) of the top level and of every visible subcommand, at any
/// depth, with the depth (1 for `nvidia-runtime <command>`).
fn all_help() -> Vec<(String, usize, String)> {
    fn walk(cmd: &mut clap::Command, depth: usize, pages: &mut Vec<(String, usize, String)>) {
        let name = cmd.get_bin_name().unwrap_or(cmd.get_name()).to_owned();
        pages.push((name, depth, cmd.render_long_help().to_string()));
        for sub in cmd
            .get_subcommands_mut()
            .filter(|sub| !sub.is_hide_set() && sub.get_name() != "help")
        {
            walk(sub, depth + 1, pages);
        }
    }
    let mut top = command();
    top.build();
    let mut pages = Vec::new();
    walk(&mut top, 0, &mut pages);
    pages
}

#[test]
fn the_definition_is_consistent() {
    command().debug_assert();
}

#[test]
fn help_is_ours_for_every_command() {
    let pages = all_help();
    assert!(pages.len() > 15, "{} pages", pages.len());
    for (name, depth, help) in pages {
        for word in ["youki", "checkpointt", "http", "rather then", "rool"] {
            assert!(
                !help.to_lowercase().contains(word),
                "`{name} --help` says {word:?}:\n{help}"
            );
        }
        // every command a user types first has examples (a nested one may rely on its parent's)
        assert!(
            depth > 1 || help.contains("Examples:"),
            "`{name} --help` has no examples (add an after_help):\n{help}"
        );
    }
}

#[test]
fn every_argument_has_a_help_text() {
    let mut top = command();
    top.build();
    let commands = std::iter::once(&top).chain(top.get_subcommands().filter(|s| !s.is_hide_set()));
    for cmd in commands {
        for arg in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
            assert!(
                arg.get_help().is_some_and(|h| !h.to_string().is_empty()),
                "{} {} has no help",
                cmd.get_name(),
                arg.get_id()
            );
        }
    }
}

#[test]
fn every_runc_subcommand_is_listed_under_runc_s_name() {
    let top = command();
    let visible: Vec<&str> = top
        .get_subcommands()
        .filter(|sub| !sub.is_hide_set())
        .map(|sub| sub.get_name())
        .collect();
    for name in [
        "create",
        "start",
        "state",
        "kill",
        "delete",
        "run",
        "exec",
        "ps",
        "pause",
        "resume",
        "update",
        "features",
        "spec",
        "list",
        "events",
        "checkpoint",
        "completion",
    ] {
        assert!(visible.contains(&name), "{name} missing from {visible:?}");
    }
    assert!(!visible.contains(&"checkpointt"));
}

#[test]
fn runc_argv_still_parses() {
    let parse = |argv: &[&str]| {
        let mut matches = command().try_get_matches_from(argv).unwrap();
        Cli::from_arg_matches_mut(&mut matches).unwrap()
    };
    let cli = parse(&[
        "nvidia-runtime",
        "--root",
        "/run/x",
        "--log",
        "/b/log.json",
        "--log-format",
        "json",
        "--systemd-cgroup",
        "create",
        "--bundle",
        "/b",
        "--pid-file",
        "/b/pid",
        "id1",
    ]);
    assert_eq!(
        cli.options.global.root.as_deref(),
        Some(Path::new("/run/x"))
    );
    assert!(cli.options.global.systemd_cgroup);
    match cli.command {
        Some(Command::Create(create)) => {
            assert_eq!(create.container_id, "id1");
            assert_eq!(create.bundle, Path::new("/b"));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        parse(&["nvidia-runtime", "checkpoint", "id1"]).command,
        Some(Command::Checkpoint(_))
    ));
    assert!(matches!(
        parse(&["nvidia-runtime", "kill", "id1"]).command,
        Some(Command::Kill(Kill { ref signal, .. })) if signal == "SIGTERM"
    ));
    assert!(parse(&["nvidia-runtime", "-v"]).options.version);
    assert!(parse(&["nvidia-runtime", "--version"]).options.version);
}

#[test]
fn version_is_runc_shaped_for_dockerd() {
    let text = version_text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        format!("nvidia-runtime version {}", env!("CARGO_PKG_VERSION"))
    );
    // dockerd takes the last line containing "version" as the name and version
    assert_eq!(text.matches("version").count(), 1, "{text}");
    assert!(lines[1].starts_with("commit: ") && lines[1].len() > "commit: ".len());
    assert_eq!(lines[2], format!("spec: {}", oci_spec::runtime::VERSION));
    assert!(lines[3].starts_with("libcontainer: 0."), "{text}");
}

/// A runc subcommand parsed on its own must be the subcommand of the whole definition: same
/// arguments, settings and texts.
#[test]
fn every_runc_subcommand_alone_is_built_as_in_the_whole_definition() {
    let mut whole = command();
    whole.build();
    for (name, _) in RUNC_SUBCOMMANDS {
        let mut alone =
            Options::augment_args(top_level()).subcommand(runc_subcommand(name).unwrap());
        alone.build();
        // (where it is listed in the top level's help is the one difference)
        let mut expected = whole
            .find_subcommand(name)
            .unwrap()
            .clone()
            .display_order(0);
        let mut got = alone
            .find_subcommand(name)
            .unwrap()
            .clone()
            .display_order(0);
        assert_eq!(format!("{got:#?}"), format!("{expected:#?}"), "{name}");
        assert_eq!(
            got.render_long_help().to_string(),
            expected.render_long_help().to_string(),
            "{name}"
        );
    }
    // and every subcommand of runc's name that we parse is in the list, except checkpoint
    let listed: Vec<&str> = RUNC_SUBCOMMANDS.iter().map(|(name, _)| *name).collect();
    for name in whole.get_subcommands().map(|sub| sub.get_name()) {
        let of_runc = help::SUBCOMMANDS.iter().any(|w| w.name == name);
        assert_eq!(
            of_runc && name != "checkpoint",
            listed.contains(&name),
            "{name}"
        );
    }
}

/// What engines pass (containerd's shim, dockerd, podman's runc argv) parses to the same thing
/// through the one-subcommand definition as through the whole one.
#[test]
fn runc_argv_parses_alike_alone_and_whole() {
    let whole = |argv: &[&str]| {
        let mut matches = command().try_get_matches_from(argv).unwrap();
        format!("{:?}", Cli::from_arg_matches_mut(&mut matches).unwrap())
    };
    let root = [
        "nvidia-runtime",
        "--root",
        "/run/containerd/runc/k8s.io",
        "--log",
        "/b/log.json",
        "--log-format",
        "json",
    ];
    let argvs: Vec<Vec<&str>> = [
        &[
            "create",
            "--bundle",
            "/b",
            "--pid-file",
            "/b/init.pid",
            "id1",
        ][..],
        &[
            "create",
            "--bundle",
            "/b",
            "--pid-file",
            "/b/init.pid",
            "--console-socket",
            "/tmp/c.sock",
            "--no-pivot",
            "--preserve-fds",
            "2",
            "id1",
        ],
        &["start", "id1"],
        &["state", "id1"],
        &["kill", "id1", "9"],
        &["kill", "--all", "id1", "SIGKILL"],
        &["kill", "id1"],
        &["delete", "id1"],
        &["delete", "--force", "id1"],
        &[
            "exec",
            "--process",
            "/b/p.json",
            "--detach",
            "--pid-file",
            "/b/p.pid",
            "id1",
        ],
        &["exec", "-t", "id1", "sh", "-c", "ls --help"],
        &["run", "--bundle", "/b", "id1"],
        &["run", "-d", "--bundle", "/b", "id1"],
        &["ps", "--format", "json", "id1"],
        &["pause", "id1"],
        &["resume", "id1"],
        &["update", "--resources", "-", "id1"],
        &["update", "--memory", "1048576", "id1"],
        &["events", "--stats", "id1"],
        &["features"],
        &["list"],
        &["spec", "--rootless"],
    ]
    .iter()
    .flat_map(|args| {
        [
            root.iter().chain(args.iter()).copied().collect(),
            std::iter::once("nvidia-runtime")
                .chain(args.iter().copied())
                .collect(),
            [
                "nvidia-runtime",
                "--systemd-cgroup",
                "--debug",
                "-l",
                "/x/log",
                "--root=/r",
            ]
            .iter()
            .chain(args.iter())
            .copied()
            .collect(),
        ]
    })
    .collect();
    for argv in argvs {
        let alone = parse_runc_subcommand(&argv.iter().map(OsString::from).collect::<Vec<_>>())
            .unwrap_or_else(|| panic!("{argv:?} not parsed alone"));
        assert_eq!(format!("{alone:?}"), whole(&argv), "{argv:?}");
    }
    // the whole definition answers anything else: help, errors, our subcommands, the version
    for argv in [
        &["nvidia-runtime", "create", "--help"][..],
        &["nvidia-runtime", "create", "--bundle", "/b"],
        &["nvidia-runtime", "start"],
        &["nvidia-runtime", "state", "id1", "extra"],
        &["nvidia-runtime", "kill", "--bogus", "id1"],
        &["nvidia-runtime", "--log", "create", "doctor"],
        &["nvidia-runtime", "doctor"],
        &["nvidia-runtime", "checkpoint", "id1"],
        &["nvidia-runtime", "help", "create"],
        &["nvidia-runtime", "-v"],
        &["nvidia-runtime"],
    ] {
        let argv: Vec<OsString> = argv.iter().map(OsString::from).collect();
        assert!(parse_runc_subcommand(&argv).is_none(), "{argv:?}");
    }
    assert!(try_parse_from(["nvidia-runtime", "--log", "create", "doctor"]).is_ok());
}

/// The top level a runc subcommand is parsed under reads argv as the whole definition's does:
/// the same settings and the same options (only their texts differ, and `--help` is always
/// the whole definition's). A setting added to one and not the other fails here.
#[test]
fn the_top_level_alone_reads_argv_as_the_whole_one() {
    let mut whole = command();
    whole.build();
    let mut alone =
        Options::augment_args(top_level()).subcommand(runc_subcommand("state").unwrap());
    alone.build();
    // the top level's own flags come before its arguments and subcommands in clap's Debug
    let settings = |cmd: &clap::Command| {
        let debug = format!("{cmd:?}");
        ["settings: ", "g_settings: "].map(|field| {
            let at = debug.find(field).unwrap();
            debug[at..].split(')').next().unwrap().to_owned()
        })
    };
    assert_eq!(settings(&alone), settings(&whole));
    let options = |cmd: &clap::Command| {
        let mut options: Vec<String> = cmd
            .get_arguments()
            .map(|arg| format!("{:?}", arg.clone().help(None).long_help(None)))
            .collect();
        options.sort();
        options
    };
    assert_eq!(options(&alone), options(&whole));
}
