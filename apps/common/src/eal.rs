//! EAL arguments from a config file and the command line, merged.
//!
//! A config file's `eal` list is the base; EAL options given on the command line (before `--`)
//! change it, option by option:
//!
//! * an option given on the command line replaces every occurrence of the same option in the
//!   file (`--file-prefix=x`, `-m 512`, `--log-level=debug` ...); the core list options `-l`,
//!   `-c` and `--lcores` are one option for this (any of them replaces all of them), as are the
//!   short and long spellings of one option (`-a`/`--allow`, `-b`/`--block`);
//! * a device option (`--vdev`, `-a`/`--allow`, `-b`/`--block`, `-d`) adds a device, or
//!   replaces the file's device of the same name (`--vdev=net_null0,size=512` replaces the
//!   file's `net_null0`);
//! * everything else in the file stays, in its order, with the command line's additions after.

/// Options that take a value as the next argument when not written `--opt=value` / `-lVALUE`.
const WITH_VALUE: &[&str] = &[
    "-a",
    "-b",
    "-c",
    "-d",
    "-l",
    "-m",
    "-n",
    "-r",
    "-s",
    "-S",
    "--allow",
    "--block",
    "--base-virtaddr",
    "--file-prefix",
    "--force-max-simd-bitwidth",
    "--huge-dir",
    "--iova-mode",
    "--lcores",
    "--log-level",
    "--main-lcore",
    "--mbuf-pool-ops-name",
    "--proc-type",
    "--service-corelist",
    "--socket-limit",
    "--socket-mem",
    "--trace",
    "--trace-bufsz",
    "--trace-dir",
    "--trace-mode",
    "--vdev",
    "--vfio-intr",
    "--vfio-vf-token",
];

/// Options that name a device: several may be given.
const DEVICE_OPTIONS: &[&str] = &["--vdev", "--allow", "--block", "-d"];

/// Every EAL option of DPDK 22.11 that takes no value (to tell an EAL option from an app's),
/// but for `-h`/`--help`/`-v`, which are the app's own.
const WITHOUT_VALUE: &[&str] = &[
    "--create-uio-dev",
    "--huge-unlock",
    "--in-memory",
    "--legacy-mem",
    "--match-allocations",
    "--no-hpet",
    "--no-huge",
    "--no-pci",
    "--no-shconf",
    "--no-telemetry",
    "--single-file-segments",
    "--telemetry",
    "--huge-worker-stack",
    "--syslog",
];

/// One EAL option as written: its key (the option it sets, spellings unified), the device it
/// names if any, and its arguments.
#[derive(Debug, Clone, PartialEq)]
struct EalOption {
    key: String,
    device: Option<String>,
    args: Vec<String>,
}

/// The option name of an argument: `--vdev=x` -> `--vdev`, `-l0-1` -> `-l`, `-l` -> `-l`.
fn name_of(arg: &str) -> &str {
    if let Some(long) = arg.strip_prefix("--") {
        let n = long.split('=').next().unwrap_or(long);
        &arg[..2 + n.len()]
    } else if arg.starts_with('-') && arg.len() >= 2 {
        // `-` and the next character, however many bytes it takes.
        let end = arg.char_indices().nth(2).map_or(arg.len(), |(i, _)| i);
        &arg[..end]
    } else {
        arg
    }
}

/// Whether `arg` is (the start of) one of the EAL's options.
pub fn is_eal_option(arg: &str) -> bool {
    let n = name_of(arg);
    WITH_VALUE.contains(&n) || WITHOUT_VALUE.contains(&n)
}

/// Splits a command line without `--` (program name first) into the EAL options in it, with
/// their values, and the rest (the app's), each keeping its order: so that
/// `l2fwd --config FILE --file-prefix=x` means what `l2fwd --file-prefix=x -- --config FILE`
/// does. The apps' own options never share a name with an EAL option (their tests check).
pub fn take_eal_options(args: Vec<String>) -> (Vec<String>, Vec<String>) {
    let mut it = args.into_iter();
    let prog = it.next().unwrap_or_else(|| "app".into());
    let (mut eal, mut app) = (vec![prog.clone()], vec![prog]);
    while let Some(arg) = it.next() {
        if !is_eal_option(&arg) {
            app.push(arg);
            continue;
        }
        let name = name_of(&arg);
        let takes_next = arg.len() == name.len() && WITH_VALUE.contains(&name);
        eal.push(arg);
        if takes_next {
            eal.extend(it.next());
        }
    }
    (eal, app)
}

/// Panics naming the first option of `cmd` (an app's clap command) that is also an EAL option:
/// for the apps' tests, since a clash would make [`take_eal_options`] ambiguous.
pub fn assert_no_clash_with_eal(cmd: &clap::Command) {
    for a in cmd.get_arguments() {
        if let Some(s) = a.get_short() {
            assert!(!is_eal_option(&format!("-{s}")), "-{s} is an EAL option");
        }
        if let Some(l) = a.get_long() {
            assert!(!is_eal_option(&format!("--{l}")), "--{l} is an EAL option");
        }
    }
}

fn key_of(name: &str) -> &str {
    match name {
        "-l" | "-c" | "--lcores" => "-l",
        "-a" | "--allow" => "--allow",
        "-b" | "--block" => "--block",
        n => n,
    }
}

/// Groups arguments into options (an argument that is no option stays a group of its own).
fn options(args: &[String]) -> Vec<EalOption> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        let name = name_of(arg);
        let inline = arg.len() > name.len(); // --opt=value or -lVALUE
        let mut group = vec![arg.clone()];
        if !inline && WITH_VALUE.contains(&name) && i + 1 < args.len() {
            group.push(args[i + 1].clone());
            i += 1;
        }
        i += 1;
        let key = key_of(name).to_owned();
        let mut value = if inline {
            arg[name.len()..].trim_start_matches('=').to_owned()
        } else {
            group.get(1).cloned().unwrap_or_default()
        };
        if matches!(key.as_str(), "--allow" | "--block") {
            // A PCI address as DPDK names the device (`-a 00:04.0` is `0000:00:04.0`), so that
            // device events and dpctl, which use DPDK's names, match what was given here.
            let (dev, args) = value.split_once(',').unwrap_or((&value, ""));
            let canonical = pmd::canonical_pci_name(dev.trim());
            if canonical != dev {
                let rewritten = if args.is_empty() {
                    canonical.into_owned()
                } else {
                    format!("{canonical},{args}")
                };
                value = rewritten.clone();
                group = if inline && name.starts_with("--") {
                    vec![format!("{name}={rewritten}")]
                } else if inline {
                    vec![format!("{name}{rewritten}")]
                } else {
                    vec![arg.clone(), rewritten]
                };
            }
        }
        let device = DEVICE_OPTIONS
            .contains(&key.as_str())
            .then(|| value.split(',').next().unwrap_or("").trim().to_owned());
        out.push(EalOption {
            key,
            device,
            args: group,
        });
    }
    out
}

/// The EAL arguments of a run (program name first): the config file's `from_config` changed by
/// the command line's `cmdline` (program name first) as the module docs say.
pub fn merge(cmdline: &[String], from_config: &[String]) -> Vec<String> {
    let (prog, given) = match cmdline.split_first() {
        Some((prog, given)) => (prog.clone(), given),
        None => ("app".to_owned(), cmdline),
    };
    let given = options(given);
    let mut merged: Vec<EalOption> = options(from_config)
        .into_iter()
        .filter(|f| {
            !given.iter().any(|g| match (&g.device, &f.device) {
                (Some(gd), Some(fd)) => g.key == f.key && gd == fd,
                (None, _) => g.key == f.key,
                (Some(_), None) => false,
            })
        })
        .collect();
    merged.extend(given);
    std::iter::once(prog)
        .chain(merged.into_iter().flat_map(|o| o.args))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn pci_addresses_are_given_to_the_eal_as_dpdk_names_them() {
        let merged = merge(
            &v(&[
                "app",
                "-a",
                "00:04.0",
                "--allow=3B:00.1,max_queues=2",
                "-b0000:00:04.7",
                "-a6a:01.0",
                "--vdev=net_null0",
            ]),
            &v(&["-a", "00:04.0,dev_arg=1"]),
        );
        assert_eq!(
            merged,
            v(&[
                "app",
                "-a",
                "0000:00:04.0",
                "--allow=0000:3b:00.1,max_queues=2",
                "-b0000:00:04.7",
                "-a0000:6a:01.0",
                "--vdev=net_null0",
            ]),
            "the command line's 00:04.0 replaces the file's, both made canonical"
        );
    }

    const FILE: &[&str] = &[
        "-l",
        "0-1",
        "--no-huge",
        "--no-pci",
        "-m",
        "256",
        "--vdev=net_null0",
        "--vdev",
        "net_null1",
        "--file-prefix=l2fwd-vdev",
        "--log-level=warning",
    ];

    #[test]
    fn no_command_line_options_keep_the_file() {
        assert_eq!(merge(&v(&["app"]), &v(FILE))[1..], v(FILE)[..]);
        assert_eq!(merge(&v(&["app"]), &[]), ["app"]);
        assert_eq!(merge(&[], &v(&["--no-huge"])), ["app", "--no-huge"]);
    }

    #[test]
    fn an_option_replaces_the_same_option_and_the_rest_stays() {
        let got = merge(&v(&["app", "--file-prefix", "x", "-m512"]), &v(FILE));
        assert_eq!(
            got,
            v(&[
                "app",
                "-l",
                "0-1",
                "--no-huge",
                "--no-pci",
                "--vdev=net_null0",
                "--vdev",
                "net_null1",
                "--log-level=warning",
                "--file-prefix",
                "x",
                "-m512"
            ])
        );
    }

    #[test]
    fn any_core_list_option_replaces_all_of_them() {
        let got = merge(&v(&["app", "--lcores", "(0-1)@0"]), &v(FILE));
        assert!(!got.contains(&"0-1".to_owned()), "{got:?}");
        assert_eq!(&got[got.len() - 2..], ["--lcores", "(0-1)@0"]);
        let got = merge(&v(&["app", "-l", "0"]), &v(&["-c", "0x3", "--no-huge"]));
        assert_eq!(got, v(&["app", "--no-huge", "-l", "0"]));
    }

    #[test]
    fn devices_add_or_replace_the_one_of_the_same_name() {
        let got = merge(
            &v(&["app", "--vdev=dma_skeleton0", "--vdev=net_null1,size=512"]),
            &v(FILE),
        );
        assert_eq!(
            got,
            v(&[
                "app",
                "-l",
                "0-1",
                "--no-huge",
                "--no-pci",
                "-m",
                "256",
                "--vdev=net_null0",
                "--file-prefix=l2fwd-vdev",
                "--log-level=warning",
                "--vdev=dma_skeleton0",
                "--vdev=net_null1,size=512"
            ])
        );
        let got = merge(
            &v(&["app", "-a", "0000:01:00.1"]),
            &v(&["--allow=0000:01:00.0"]),
        );
        assert_eq!(
            got,
            v(&["app", "--allow=0000:01:00.0", "-a", "0000:01:00.1"])
        );
        let got = merge(
            &v(&["app", "-a", "0000:01:00.0,x=1"]),
            &v(&["--allow=0000:01:00.0"]),
        );
        assert_eq!(got, v(&["app", "-a", "0000:01:00.0,x=1"]));
    }

    #[test]
    fn eal_options_are_told_from_app_options() {
        for a in [
            "--file-prefix=x",
            "--file-prefix",
            "-l",
            "-l0-1",
            "--vdev=net_null0",
            "--no-huge",
        ] {
            assert!(is_eal_option(a), "{a}");
        }
        for a in [
            "-p",
            "-T",
            "--config",
            "--duration",
            "--copy",
            "x",
            "--",
            "-h",
            "--help",
        ] {
            assert!(!is_eal_option(a), "{a}");
        }
    }

    #[test]
    fn eal_options_without_a_double_dash_are_taken_out() {
        let (eal, app) = take_eal_options(v(&[
            "app",
            "--config",
            "c.toml",
            "--file-prefix",
            "x",
            "-T",
            "1",
            "-l0",
            "--vdev=net_null0",
            "--help",
        ]));
        assert_eq!(
            eal,
            v(&["app", "--file-prefix", "x", "-l0", "--vdev=net_null0"])
        );
        assert_eq!(app, v(&["app", "--config", "c.toml", "-T", "1", "--help"]));
    }

    proptest! {
        /// Whatever the two lists, every command-line argument is kept, in order, at the end,
        /// and nothing is invented.
        #[test]
        fn the_command_line_is_kept_whole(
            file in prop::collection::vec(prop_oneof![
                prop::sample::select(FILE).prop_map(str::to_owned), ".{0,6}"], 0..10),
            cmd in prop::collection::vec(prop_oneof![
                prop::sample::select(FILE).prop_map(str::to_owned), ".{0,6}"], 0..6),
        ) {
            let mut cmdline = vec!["app".to_owned()];
            cmdline.extend(cmd.iter().cloned());
            let got = merge(&cmdline, &file);
            prop_assert_eq!(&got[0], "app");
            prop_assert_eq!(&got[got.len() - cmd.len()..], &cmd[..]);
            for a in &got[1..] {
                prop_assert!(file.contains(a) || cmd.contains(a));
            }
        }
    }
}
