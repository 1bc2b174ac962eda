//! The `clawlink` CLI as a new user meets it, against the real binaries: secrets that never
//! reach a command line, errors that say what to do next (JSON on stdout with `--json`, exit 2
//! for usage errors), every argument described in `--help`, `listen` failing when the daemon
//! goes away, contact URLs checked when they are added, the seed's `contacts.json` imported
//! whole, the daemon's config errors, SIGHUP naming what needs a restart, and the socket
//! directory judged the way ssh judges paths.

use clawlink_tests::daemon::Daemon;
use clawlink_tests::gateway::Gateway;
use clawlink_tests::relay::RelayServer;
use clawlink_tests::{bin, run, wait_for, Proc};
use serde_json::{json, Value};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `clawlink --socket SOCK ARGS` with extra environment and, if given, `stdin` piped in.
fn ctl_with(d: &Daemon, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(bin("clawlink"));
    cmd.arg("--socket").arg(&d.socket).args(args);
    cmd.env_remove("CLAWLINK_TOKEN")
        .env_remove("CLAWLINK_RELAY_SECRET");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let Some(input) = stdin else {
        return run(&mut cmd);
    };
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn clawlink");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait clawlink")
}

fn json_of(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(o)))
}

#[test]
fn gateway_tokens_come_from_a_file_stdin_or_the_environment() {
    let gw = Gateway::shared();
    let d = Daemon::start();
    let file = d.dir.path().join("token");
    std::fs::write(&file, format!("{}\n", gw.token)).expect("write token file");
    let file = file.to_str().expect("utf8");
    let auth = |o: &Output| json_of(o)["auth_ok"].clone();

    let from_file = ctl_with(
        &d,
        &["ping", "--url", &gw.url, "--token-file", file, "--json"],
        &[],
        None,
    );
    assert_eq!(auth(&from_file), true, "{}", text(&from_file));
    let from_stdin = ctl_with(
        &d,
        &["ping", "--url", &gw.url, "--token", "-", "--json"],
        &[],
        Some(&format!("{}\n", gw.token)),
    );
    assert_eq!(auth(&from_stdin), true, "{}", text(&from_stdin));
    let from_env = ctl_with(
        &d,
        &["ping", "--url", &gw.url, "--json"],
        &[("CLAWLINK_TOKEN", &gw.token)],
        None,
    );
    assert_eq!(auth(&from_env), true, "{}", text(&from_env));
    // The option beats the environment, so a wrong one there is what is presented.
    let wrong_env = ctl_with(
        &d,
        &["ping", "--url", &gw.url, "--json"],
        &[("CLAWLINK_TOKEN", "not-the-token")],
        None,
    );
    assert_eq!(auth(&wrong_env), false, "{}", text(&wrong_env));

    // A contact's token from a file is the one stored and presented.
    let add = ctl_with(
        &d,
        &[
            "contacts",
            "add",
            "--name",
            "gw",
            "--url",
            &gw.url,
            "--token-file",
            file,
        ],
        &[],
        None,
    );
    assert!(add.status.success(), "{}", text(&add));
    let ping = d.ctl_json(&["ping", "--to", "gw"]);
    assert_eq!(ping["auth_ok"], true, "{ping}");

    // An empty or missing file is a usage error that names the option.
    let empty = d.dir.path().join("empty");
    std::fs::write(&empty, "\n").expect("write");
    let out = ctl_with(
        &d,
        &[
            "ping",
            "--url",
            &gw.url,
            "--token-file",
            empty.to_str().expect("utf8"),
        ],
        &[],
        None,
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--token"), "{}", text(&out));

    let help = text(&d.ctl(&["send", "--help"]));
    for needle in ["--token-file", "CLAWLINK_TOKEN", "stdin", "`ps`"] {
        assert!(help.contains(needle), "send --help lacks {needle}: {help}");
    }
}

#[test]
fn the_relay_secret_comes_from_a_file_stdin_or_the_environment() {
    let relay = RelayServer::start(&[]);
    let d = Daemon::start();
    let bob = relay.client("bob", "bob", "bob-secret-1");
    assert!((200..300).contains(&bob.register().0));
    let base = relay.base();
    let register = |id: &str, how: &[&str], env: &[(&str, &str)], stdin: Option<&str>| {
        let mut args = vec!["relay", "register", "--relay", &base, "--id", id];
        args.extend_from_slice(how);
        let out = ctl_with(&d, &args, env, stdin);
        assert!(out.status.success(), "{}", text(&out));
    };
    let file = d.dir.path().join("secret");
    std::fs::write(&file, "file-secret-7\n").expect("write");
    register(
        "f",
        &["--secret-file", file.to_str().expect("utf8")],
        &[],
        None,
    );
    register("s", &["--secret", "-"], &[], Some("stdin-secret-8\n"));
    register("e", &[], &[("CLAWLINK_RELAY_SECRET", "env-secret-9")], None);
    // The relay accepts each id's sends with exactly that secret.
    for (id, secret) in [
        ("f", "file-secret-7"),
        ("s", "stdin-secret-8"),
        ("e", "env-secret-9"),
    ] {
        let ok = relay.client(id, id, secret).send("bob", "hi");
        assert!((200..300).contains(&ok.0), "{id}: {ok:?}");
        let wrong = relay.client(id, id, "wrong").send("bob", "hi");
        assert!(
            wrong.0 >= 400,
            "{id}: a wrong secret was accepted: {wrong:?}"
        );
    }
    // None given anywhere: a usage error saying where a secret can come from.
    let out = ctl_with(
        &d,
        &["relay", "register", "--relay", &base, "--id", "x"],
        &[],
        None,
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--secret-file"), "{}", text(&out));
}

#[test]
fn errors_say_what_to_do_and_are_json_with_json() {
    let d = Daemon::start();
    let out = d.ctl(&["contacts", "remove", "--name", "nobody"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no contact named \"nobody\"") && err.contains("see `clawlink contacts list`"),
        "{err}"
    );

    let out = d.ctl(&["contacts", "remove", "--name", "nobody", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let v = json_of(&out);
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["error"]["code"], "not_found", "{v}");
    assert!(
        v["error"]["hint"]
            .as_str()
            .is_some_and(|h| h.contains("contacts list")),
        "{v}"
    );

    // Usage errors exit 2, as JSON with --json.
    let out = d.ctl(&["send", "--to", "x"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let out = d.ctl(&["send", "--to", "x", "--json"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let v = json_of(&out);
    assert_eq!(v["error"]["code"], "usage", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("--message")),
        "{v}"
    );

    // A daemon that is not running, with --json.
    let down = Daemon::new();
    let out = down.ctl(&["status", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let v = json_of(&out);
    assert_eq!(v["error"]["code"], "daemon_down", "{v}");
    assert!(
        v["error"]["hint"]
            .as_str()
            .is_some_and(|h| h.contains("clawlinkd")),
        "{v}"
    );
}

/// Every entry of the Options and Arguments sections of one `--help` text without a
/// description (clap puts it on the same line, or on the next, more indented, one).
fn undescribed(help: &str) -> Vec<String> {
    let lines: Vec<&str> = help.lines().collect();
    let mut missing = Vec::new();
    let mut in_list = false;
    for (i, line) in lines.iter().enumerate() {
        if !line.starts_with(' ') {
            in_list = line.starts_with("Options:") || line.starts_with("Arguments:");
            continue;
        }
        let entry = line.trim_start();
        if !in_list || !(entry.starts_with('-') || entry.starts_with('<') || entry.starts_with('['))
        {
            continue;
        }
        let inline = entry
            .split_once("  ")
            .is_some_and(|(_, d)| !d.trim().is_empty());
        let indent = line.len() - entry.len();
        let next = lines.get(i + 1).copied().unwrap_or_default();
        let below = next.len() - next.trim_start().len() > indent && !next.trim().is_empty();
        if !inline && !below {
            missing.push(entry.to_string());
        }
    }
    missing
}

/// Subcommand names listed in a `--help` text.
fn subcommands(help: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_list = false;
    for line in help.lines() {
        if !line.starts_with(' ') {
            in_list = line.starts_with("Commands:");
            continue;
        }
        if let Some(name) = line.split_whitespace().next().filter(|_| in_list) {
            if name != "help" {
                out.push(name.to_string());
            }
        }
    }
    out
}

#[test]
fn every_argument_in_help_has_a_description() {
    let help = |path: &[String]| {
        let out = run(Command::new(bin("clawlink")).args(path).arg("--help"));
        assert!(out.status.success(), "{path:?}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let top = help(&[]);
    assert!(top.contains("/tmp/clawlink-$UID"), "{top}");
    let mut todo: Vec<Vec<String>> = vec![vec![]];
    let mut seen = 0;
    let mut missing = Vec::new();
    while let Some(path) = todo.pop() {
        let h = help(&path);
        seen += 1;
        missing.extend(
            undescribed(&h)
                .into_iter()
                .map(|m| format!("{}: {m}", path.join(" "))),
        );
        for sub in subcommands(&h) {
            let mut p = path.clone();
            p.push(sub);
            todo.push(p);
        }
    }
    assert!(seen > 30, "only {seen} help pages found");
    assert!(
        missing.is_empty(),
        "arguments without a description:\n{}",
        missing.join("\n")
    );
}

#[test]
fn listen_exits_non_zero_when_the_daemon_goes_away() {
    for how in ["shutdown", "kill -9"] {
        let mut d = Daemon::start();
        let out = d.dir.path().join("listen.out");
        let mut cmd = Command::new(bin("clawlink"));
        cmd.arg("--socket")
            .arg(&d.socket)
            .args(["listen", "--json"]);
        cmd.stdout(std::fs::File::create(&out).expect("create"));
        let log = d.dir.path().join("listen.err");
        let file = std::fs::File::create(&log).expect("create");
        let mut child = cmd
            .stdin(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("spawn listen");
        // Subscribed once a message posted now shows up on its stdout.
        wait_for("listen to show a message", Duration::from_secs(20), || {
            d.post_message(&json!({"from": "a", "message": "ping-listen"}));
            std::fs::read_to_string(&out)
                .ok()
                .filter(|s| s.contains("ping-listen"))
        });
        if how == "shutdown" {
            assert!(d.ctl(&["shutdown"]).status.success());
        } else {
            d.kill9();
        }
        let status = wait_for("listen to exit", Duration::from_secs(20), || {
            child.try_wait().ok().flatten()
        });
        let err = std::fs::read_to_string(&log).unwrap_or_default();
        let stdout = std::fs::read_to_string(&out).unwrap_or_default();
        assert_eq!(status.code(), Some(1), "after {how}: {err}{stdout}");
        // With --json the error is the last JSON document on stdout.
        assert!(
            stdout.contains("\"daemon_gone\"") && stdout.contains("clawlink inbox"),
            "after {how}: {stdout}"
        );
        d.stop();
    }
}

#[test]
fn contact_urls_that_can_never_work_are_refused_at_add_time() {
    let d = Daemon::start();
    for bad in [
        "ws://",
        "relay://host",
        "ws://a b:1",
        "relay://host:3900/",
        "http://x:1",
    ] {
        let out = d.ctl(&["contacts", "add", "--name", "x", "--url", bad]);
        assert_eq!(out.status.code(), Some(1), "{bad}: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("a valid one looks like")
                && err.contains("relay://relay.example:3900/friend-id"),
            "{bad}: {err}"
        );
    }
    assert_eq!(d.ctl_json(&["contacts", "list"]), json!([]));
    for good in [
        "ws://127.0.0.1:18789",
        "wss://gw.example",
        "relay://127.0.0.1:3900/friend",
    ] {
        let out = d.ctl(&["contacts", "add", "--name", "ok", "--url", good]);
        assert!(out.status.success(), "{good}: {}", text(&out));
    }
}

#[test]
fn import_from_skill_rewrites_http_keeps_description_and_skips_only_the_bad_one() {
    let d = Daemon::start();
    let skill = d.dir.path().join("skill");
    std::fs::create_dir_all(&skill).expect("mkdir");
    std::fs::write(
        skill.join("contacts.json"),
        json!({
            "old": {"url": "http://10.0.0.5:18789", "token": "t1",
                    "description": "friend's OpenClaw", "addedAt": "2026-02-03T04:05:06.789Z"},
            "tls": {"url": "https://gw.example", "token": "t2"},
            "broken": {"url": "ws://", "token": "t3"},
        })
        .to_string(),
    )
    .expect("write");
    let out = d.ctl(&["import", "--from-skill", skill.to_str().expect("utf8")]);
    assert!(out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("ws://10.0.0.5:18789") && err.contains("skipped contact \"broken\""),
        "{err}"
    );
    let list = d.ctl_json(&["contacts", "list"]);
    let by_name = |n: &str| {
        list.as_array()
            .and_then(|a| a.iter().find(|c| c["name"] == n))
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(list.as_array().map(Vec::len), Some(2), "{list}");
    let old = by_name("old");
    assert_eq!(old["url"], "ws://10.0.0.5:18789", "{list}");
    assert_eq!(old["desc"], "friend's OpenClaw", "{list}");
    assert_eq!(old["added_at"], "2026-02-03T04:05:06.789Z", "{list}");
    assert_eq!(by_name("tls")["url"], "wss://gw.example", "{list}");
}

#[test]
fn daemon_config_errors_are_precise() {
    let d = Daemon::new();
    std::fs::remove_file(&d.config).expect("rm config");
    let mut p = Proc::spawn(d.command(), d.dir.path().join("missing-config.log"));
    let status = wait_for(
        "clawlinkd to refuse a missing --config",
        Duration::from_secs(20),
        || p.child.try_wait().ok().flatten(),
    );
    assert!(!status.success(), "{}", p.log_text());
    assert!(
        p.log_text().contains("config.toml") && p.log_text().contains("no such file"),
        "{}",
        p.log_text()
    );

    d.write_config("[outbox]\nttl_secs = 60\n\n[gateway\nidle_timeout_secs = 5\n");
    let out = run(&mut d.command());
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("line 4, column "), "{}", text(&out));
}

fn hup(p: &Proc) {
    assert!(Command::new("kill")
        .args(["-HUP", &p.pid().to_string()])
        .status()
        .expect("kill")
        .success());
}

#[test]
fn sighup_names_the_settings_that_need_a_restart() {
    let mut d = Daemon::new();
    d.write_config("[listen]\ntoken = \"old-hook-token\"\n[outbox]\nttl_secs = 100\n");
    d.spawn();
    d.write_config("[listen]\ntoken = \"new-hook-token\"\n[outbox]\nttl_secs = 200\n");
    hup(d.proc.as_ref().expect("proc"));
    let line = wait_for("the reload log line", Duration::from_secs(10), || {
        d.logs()
            .lines()
            .find(|l| l.contains("NOT applied until clawlinkd restarts"))
            .map(str::to_string)
    });
    assert!(line.contains("listen.token"), "{line}");
    assert!(!line.contains("outbox.ttl_secs"), "{line}");
    assert!(!d.logs().contains("new-hook-token") && !d.logs().contains("old-hook-token"));
    // What the log says is what happens: the running token is still the old one.
    let post = |token: &str| {
        reqwest::blocking::Client::new()
            .post(format!("http://{}/message", d.listen))
            .bearer_auth(token)
            .json(&json!({"from": "a", "message": "b"}))
            .send()
            .expect("POST")
            .status()
            .as_u16()
    };
    assert_eq!(post("old-hook-token"), 200);
    assert_ne!(post("new-hook-token"), 200);
}

#[test]
fn socket_directory_is_judged_like_ssh_judges_paths() {
    let dir_of = |d: &Daemon| d.socket.parent().expect("socket dir").to_path_buf();
    let chmod = |p: &std::path::Path, m: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).expect("chmod")
    };
    // Ours and 0755: fine; the socket itself is still 0600.
    let mut d = Daemon::new();
    std::fs::create_dir_all(dir_of(&d)).expect("mkdir");
    chmod(&dir_of(&d), 0o755);
    d.spawn();
    let mode = std::fs::metadata(&d.socket)
        .expect("stat")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    d.stop();

    // Writable by the group: refused, with what to do.
    let g = Daemon::new();
    std::fs::create_dir_all(dir_of(&g)).expect("mkdir");
    chmod(&dir_of(&g), 0o775);
    let out = run(&mut g.command());
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("chmod go-w"), "{}", text(&out));

    // Owned by another uid (the suite runs as root, as the peer-uid test in daemon.rs does).
    let o = Daemon::new();
    std::fs::create_dir_all(dir_of(&o)).expect("mkdir");
    chmod(&dir_of(&o), 0o700);
    std::os::unix::fs::chown(dir_of(&o), Some(65534), Some(65534)).expect("chown (run as root)");
    let out = run(&mut o.command());
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("owned by uid 65534"), "{}", text(&out));
}

#[test]
fn readme_and_skill_tell_a_new_user_what_they_need() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf();
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README");
    let two = readme
        .split("## Two commands")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("a Two commands section");
    assert!(two.contains("Rust") && two.contains("npm"), "{two}");
    assert!(
        readme.contains("| `2` | usage error"),
        "README: exit code 2"
    );
    let skill = std::fs::read_to_string(root.join("skill/SKILL.md")).expect("SKILL.md");
    let front = skill.split("---").nth(1).expect("front matter");
    assert!(
        front.contains(r#""requires": { "bins": ["clawlink", "clawlinkd"] }"#),
        "{front}"
    );
    for needle in [
        "cargo install --locked",
        "systemctl --user enable --now clawlinkd",
        "**It blocks**",
        "clawlink relay send --to FROM",
        "clawlink nexus send SESSION",
        "`webhook`",
        "--token-file",
    ] {
        assert!(skill.contains(needle), "SKILL.md lacks {needle}");
    }
    // Every command the skill shows exists in this clawlink.
    for line in skill
        .lines()
        .filter(|l| l.trim_start().starts_with("clawlink "))
    {
        let words: Vec<&str> = line.split_whitespace().collect();
        let sub: Vec<&str> = words[1..]
            .iter()
            .take_while(|w| {
                !w.starts_with('-') && w.chars().all(|c| c.is_ascii_lowercase() || c == '-')
            })
            .take(2)
            .copied()
            .collect();
        let out = run(Command::new(bin("clawlink")).args(&sub).arg("--help"));
        assert!(out.status.success(), "SKILL.md: `{line}`: {}", text(&out));
    }
}
