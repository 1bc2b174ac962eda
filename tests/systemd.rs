//! The shipped units, run the way systemd runs them, with the real binary.
//!
//! No systemd runs as PID 1 where the suite runs (and `systemd-run --user` needs a user
//! manager), so each unit's service is set up here exactly as systemd does it: the unit's own
//! `ExecStart=` and `Environment=` lines with `%S`, `%t`, `%E` and `%h` expanded, and its
//! `StateDirectory=`: under `DynamicUser=yes` that is a real directory in a 0700 `private/`
//! and a symlink to it (`/var/lib/NAME -> private/NAME`), passed as `$STATE_DIRECTORY`.
//! Readiness is systemd's own signal: `READY=1` on a `$NOTIFY_SOCKET` datagram socket.
//! Only the listen address is changed (to port 0, reported through `--addr-file`), so
//! parallel tests do not collide.

use clawlink_tests::{bin, run, wait_for, Proc, ANY_PORT};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// The `[Service]` section of a unit: key → values, in order.
fn service(unit: &str) -> BTreeMap<String, Vec<String>> {
    let text = std::fs::read_to_string(repo().join("systemd").join(unit)).expect("read unit");
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut in_service = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_service = line == "[Service]";
        } else if let Some((k, v)) = line.split_once('=').filter(|_| in_service) {
            out.entry(k.to_string()).or_default().push(v.to_string());
        }
    }
    out
}

fn one<'a>(s: &'a BTreeMap<String, Vec<String>>, key: &str) -> Option<&'a str> {
    s.get(key).and_then(|v| v.last()).map(String::as_str)
}

fn mode(p: &Path, m: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).expect("chmod");
}

/// A unit's service, set up under `root` as systemd would, and started.
struct Service {
    proc: Proc,
    notify: UnixDatagram,
    /// `$STATE_DIRECTORY` (a symlink under DynamicUser).
    state: PathBuf,
    /// Where the state really is.
    real_state: PathBuf,
    env: Vec<(String, String)>,
    /// Where the role writes its bound address.
    addr_file: PathBuf,
}

impl Service {
    fn start(unit: &str, root: &Path) -> Service {
        Self::start_with(unit, root, |_| {})
    }

    /// `prepare` may change the state directory before the start (to make it unsafe).
    fn start_with(unit: &str, root: &Path, prepare: impl FnOnce(&Path)) -> Service {
        let s = service(unit);
        let (state_root, runtime, config_root, home) = (
            root.join("state"),
            root.join("run"),
            root.join("etc"),
            root.join("home"),
        );
        for d in [&state_root, &runtime, &config_root, &home] {
            std::fs::create_dir_all(d).expect("mkdir");
        }
        let expand = |v: &str| {
            v.replace("%S", state_root.to_str().expect("utf8"))
                .replace("%t", runtime.to_str().expect("utf8"))
                .replace("%E", config_root.to_str().expect("utf8"))
                .replace("%h", home.to_str().expect("utf8"))
        };
        let dynamic = one(&s, "DynamicUser") == Some("yes");
        let name = one(&s, "StateDirectory").expect("StateDirectory=");
        let state_mode = one(&s, "StateDirectoryMode").map_or(0o755, |m| {
            u32::from_str_radix(m, 8).expect("StateDirectoryMode")
        });
        let state = state_root.join(name);
        let real_state = if dynamic {
            let private = state_root.join("private");
            std::fs::create_dir_all(private.join(name)).expect("mkdir");
            mode(&private, 0o700);
            std::os::unix::fs::symlink(Path::new("private").join(name), &state).expect("symlink");
            private.join(name)
        } else {
            std::fs::create_dir_all(&state).expect("mkdir");
            state.clone()
        };
        mode(&real_state, state_mode);
        if let Some(rt) = one(&s, "RuntimeDirectory") {
            std::fs::create_dir_all(runtime.join(rt)).expect("mkdir");
            let m = one(&s, "RuntimeDirectoryMode").unwrap_or("0755");
            mode(&runtime.join(rt), u32::from_str_radix(m, 8).expect("mode"));
        }
        let mut env: Vec<(String, String)> = vec![
            ("STATE_DIRECTORY".into(), state.display().to_string()),
            ("PATH".into(), "/usr/bin:/bin".into()),
            ("HOME".into(), home.display().to_string()),
            ("RUST_LOG".into(), "debug".into()),
        ];
        if !dynamic {
            env.push(("XDG_RUNTIME_DIR".into(), runtime.display().to_string()));
        }
        for e in s.get("Environment").into_iter().flatten() {
            let (k, v) = e.split_once('=').expect("Environment=K=V");
            env.push((k.into(), expand(v)));
        }
        prepare(&state);

        // ExecStart as written, but our binary and a free port.
        let exec = one(&s, "ExecStart").expect("ExecStart=");
        let mut argv: Vec<String> = exec.split_whitespace().map(expand).collect();
        let listen = ANY_PORT;
        let addr_file = root.join(format!("{unit}.addr"));
        let _ = std::fs::remove_file(&addr_file);
        argv.push("--addr-file".into());
        argv.push(addr_file.display().to_string());
        match argv.iter().position(|a| a == "--listen") {
            Some(i) => argv[i + 1] = listen.to_string(),
            None => {
                // The agent's webhook port comes from its config, which the unit names.
                let cfg = env
                    .iter()
                    .find(|(k, _)| k == "CLAWLINK_CONFIG")
                    .map(|(_, v)| PathBuf::from(v))
                    .unwrap_or_else(|| home.join(".config/clawlink/config.toml"));
                std::fs::create_dir_all(cfg.parent().expect("dir")).expect("mkdir");
                std::fs::write(&cfg, format!("[listen]\naddr = \"{listen}\"\n")).expect("write");
                env.push(("CLAWLINK_CONFIG".into(), cfg.display().to_string()));
            }
        }
        let notify_path = root.join("notify");
        let _ = std::fs::remove_file(&notify_path);
        let notify = UnixDatagram::bind(&notify_path).expect("bind NOTIFY_SOCKET");
        notify
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        env.push(("NOTIFY_SOCKET".into(), notify_path.display().to_string()));

        let mut cmd = Command::new(bin("clawlinkd"));
        cmd.args(&argv[1..]).env_clear().envs(env.iter().cloned());
        let log = root.join(format!("{unit}.log"));
        let proc = Proc::spawn(cmd, log);
        Service {
            proc,
            notify,
            state,
            real_state,
            env,
            addr_file,
        }
    }

    /// Waits for `READY=1`; panics with the log if the process exits first.
    fn wait_ready(&mut self) {
        let mut buf = [0u8; 512];
        let (proc, notify) = (&mut self.proc, &self.notify);
        wait_for("READY=1 on NOTIFY_SOCKET", Duration::from_secs(30), || {
            if !proc.running() {
                panic!("exited before READY=1:\n{}", proc.log_text());
            }
            let n = notify.recv(&mut buf).ok()?;
            String::from_utf8_lossy(&buf[..n])
                .lines()
                .any(|l| l == "READY=1")
                .then_some(())
        });
    }

    fn env(&self, key: &str) -> Option<&str> {
        self.env
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

#[test]
fn every_system_unit_starts_with_dynamic_user_state_directories() {
    for unit in [
        "clawlinkd.service",
        "clawlinkd-relay.service",
        "clawlinkd-nexus.service",
        "clawlinkd.user.service",
    ] {
        let root = tempfile::Builder::new()
            .prefix("clawlink-unit-")
            .tempdir()
            .expect("tempdir");
        let mut svc = Service::start(unit, root.path());
        svc.wait_ready();
        if unit.starts_with("clawlinkd.") {
            // The agent: the CLI finds it where the unit put its socket, and it stores there.
            let mut cmd = Command::new(bin("clawlink"));
            cmd.env_clear()
                .envs(svc.env.iter().cloned())
                .args(["status", "--json"]);
            let out = run(&mut cmd);
            assert!(
                out.status.success(),
                "{unit}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
            assert_eq!(
                status["data_dir"].as_str(),
                Some(svc.state.to_str().expect("utf8")),
                "{unit}"
            );
            if let Some(sock) = svc.env("CLAWLINK_SOCKET") {
                assert_eq!(status["socket"].as_str(), Some(sock), "{unit}");
            }
        } else {
            let listen = wait_for("the bound address", Duration::from_secs(10), || {
                std::fs::read_to_string(&svc.addr_file)
                    .ok()?
                    .trim()
                    .parse()
                    .ok()
            });
            clawlink_tests::wait_http_health(listen, Duration::from_secs(10));
        }
        // The store lives in the real directory behind the link.
        let entries = std::fs::read_dir(&svc.real_state)
            .expect("read state dir")
            .count();
        assert!(
            entries > 0,
            "{unit}: nothing in {}",
            svc.real_state.display()
        );
        let st = svc.proc.terminate(Duration::from_secs(20));
        assert!(
            st.is_some_and(|s| s.success()),
            "{unit}: no clean stop\n{}",
            svc.proc.log_text()
        );
    }
}

#[test]
fn a_state_symlink_to_a_directory_we_do_not_own_or_others_can_write_is_refused() {
    type Spoil = fn(&Path);
    let cases: [(&str, Spoil, &str); 3] = [
        (
            "target owned by another uid",
            |state| {
                let real = std::fs::canonicalize(state).expect("resolve");
                std::os::unix::fs::chown(real, Some(65534), Some(65534)).expect("chown (root)");
            },
            "owned by uid 65534",
        ),
        (
            "target writable by others",
            |state| mode(&std::fs::canonicalize(state).expect("resolve"), 0o777),
            "chmod go-w",
        ),
        (
            "link owned by another uid",
            |state| {
                std::os::unix::fs::lchown(state, Some(65534), Some(65534)).expect("lchown (root)")
            },
            "symlink owned by uid 65534",
        ),
    ];
    for (what, spoil, needle) in cases {
        for unit in ["clawlinkd.service", "clawlinkd-relay.service"] {
            let root = tempfile::Builder::new()
                .prefix("clawlink-unit-")
                .tempdir()
                .expect("tempdir");
            let mut svc = Service::start_with(unit, root.path(), spoil);
            let status = wait_for("the refusal", Duration::from_secs(20), || {
                svc.proc.child.try_wait().ok().flatten()
            });
            let log = svc.proc.log_text();
            assert!(!status.success(), "{unit}, {what}: started anyway\n{log}");
            let first = log.lines().last().unwrap_or_default();
            assert_eq!(
                first.matches(needle).count(),
                1,
                "{unit}, {what}: said twice: {first}"
            );
            assert!(log.contains(needle), "{unit}, {what}: {log}");
            assert!(
                log.contains("resolved to") || what.starts_with("link"),
                "{unit}, {what}: {log}"
            );
        }
    }
}

#[test]
fn units_limit_open_files_and_name_the_install_path_the_readme_gives() {
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README");
    for unit in [
        "clawlinkd.service",
        "clawlinkd-relay.service",
        "clawlinkd-nexus.service",
        "clawlinkd.user.service",
    ] {
        let s = service(unit);
        let nofile: u64 = one(&s, "LimitNOFILE")
            .unwrap_or_else(|| panic!("{unit}: no LimitNOFILE="))
            .parse()
            .expect("LimitNOFILE number");
        assert!(nofile >= 65536, "{unit}: LimitNOFILE={nofile}");
        let exec = one(&s, "ExecStart").expect("ExecStart");
        let program = exec.split_whitespace().next().expect("program");
        let shown = program.replace("%h", "~");
        assert!(
            readme.contains(&shown),
            "{unit}: README never says to put clawlinkd at {shown}"
        );
    }
    assert!(
        readme.contains("cargo install --locked"),
        "README: cargo install without --locked"
    );
}
