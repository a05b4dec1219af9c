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
    assert_eq!(cli.global.root.as_deref(), Some(Path::new("/run/x")));
    assert!(cli.global.systemd_cgroup);
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
    assert!(parse(&["nvidia-runtime", "-v"]).version);
    assert!(parse(&["nvidia-runtime", "--version"]).version);
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
