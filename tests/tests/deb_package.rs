//! The Debian package: built for this machine with `deploy/build-deb.sh`, unpacked into a
//! scratch root with `dpkg -x`, its files, metadata and maintainer scripts checked, the
//! unpacked binary run, and its systemd unit accepted by `systemd-analyze verify`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tests::{hub_binary, stderr, stdout, workspace_root};

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        stdout(&out),
        stderr(&out)
    );
    out
}

fn host_arch() -> String {
    let out = run(Command::new("dpkg").arg("--print-architecture"));
    stdout(&out).trim().to_owned()
}

/// Builds the package from the test build's `hub` binary; returns the .deb path.
fn build_deb(out_dir: &Path) -> PathBuf {
    let out = run(Command::new("bash")
        .arg(workspace_root().join("deploy/build-deb.sh"))
        .args(["--arch", &host_arch(), "--binary"])
        .arg(hub_binary())
        .arg("--out")
        .arg(out_dir)
        .args(["--compression", "gzip"]));
    let deb = PathBuf::from(stdout(&out).lines().last().unwrap().trim());
    assert!(deb.exists(), "{}", deb.display());
    deb
}

#[test]
fn the_package_unpacks_with_everything_a_box_needs() {
    let scratch = tempfile::tempdir().unwrap();
    let deb = build_deb(scratch.path());
    let root = scratch.path().join("root");
    run(Command::new("dpkg").arg("-x").arg(&deb).arg(&root));

    for file in [
        "usr/bin/hub",
        "usr/bin/hub-serial-devices",
        "lib/systemd/system/hub.service",
        "lib/udev/rules.d/61-hub-devices.rules",
        "etc/hub/hub.toml",
        "usr/share/doc/hub/README.md",
        "usr/share/doc/hub/deploy.md",
        "usr/share/doc/hub/hub.example.toml",
        "usr/share/doc/hub/copyright",
    ] {
        assert!(root.join(file).is_file(), "{file} missing from the package");
    }
    // The model and the runtime library ship whenever the checkout has them.
    let models = workspace_root().join("models");
    if models.is_dir() {
        for entry in std::fs::read_dir(&models).unwrap() {
            let name = entry.unwrap().file_name();
            let name = name.to_string_lossy();
            if !name.ends_with(".py") {
                assert!(
                    root.join("usr/share/hub/models").join(&*name).is_file(),
                    "model file {name} missing from the package"
                );
            }
        }
    }
    let ort = workspace_root()
        .join(".runtime/onnxruntime")
        .join(std::env::consts::ARCH);
    if ort.join("libonnxruntime.so").exists() {
        assert!(root.join("usr/lib/hub/libonnxruntime.so").exists());
    }

    // Metadata and maintainer scripts.
    let control = run(Command::new("dpkg-deb").args(["-f"]).arg(&deb));
    let control = stdout(&control);
    assert!(control.contains("Package: hub"), "{control}");
    assert!(control.contains(&format!("Architecture: {}", host_arch())));
    assert!(
        control.contains("Depends: adduser, libc6 (>= 2."),
        "{control}"
    );
    let meta = scratch.path().join("DEBIAN");
    run(Command::new("dpkg-deb").arg("-e").arg(&deb).arg(&meta));
    assert_eq!(
        std::fs::read_to_string(meta.join("conffiles"))
            .unwrap()
            .trim(),
        "/etc/hub/hub.toml"
    );
    for script in ["postinst", "prerm", "postrm"] {
        run(Command::new("sh").arg("-n").arg(meta.join(script)));
    }
    let contents = stdout(&run(Command::new("dpkg-deb").arg("-c").arg(&deb)));
    assert!(
        contents.contains("-rwxr-xr-x root/root") && contents.contains("./usr/bin/hub"),
        "{contents}"
    );
    assert!(
        !contents.contains("./var/lib/hub"),
        "data must not be in the package"
    );

    // The unpacked binary runs, and the shipped config waits for its site id and nothing else.
    let hub = root.join("usr/bin/hub");
    let version = run(Command::new(&hub).arg("--version"));
    assert!(stdout(&version).starts_with("hub "));
    let check = Command::new(&hub)
        .args(["check-config", "--json"])
        .arg(root.join("etc/hub/hub.toml"))
        .output()
        .unwrap();
    assert_eq!(check.status.code(), Some(2), "{}", stdout(&check));
    let json: serde_json::Value = serde_json::from_slice(&check.stdout).unwrap();
    let problems: Vec<&str> = json["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    assert_eq!(problems, ["site.id"]);
    let filled = std::fs::read_to_string(root.join("etc/hub/hub.toml"))
        .unwrap()
        .replacen("# id = ", "id = ", 1);
    let filled_path = scratch.path().join("filled.toml");
    std::fs::write(&filled_path, filled).unwrap();
    // The example's TLS files are the technician's to install; the file itself is complete.
    run(Command::new(&hub)
        .args(["check-config", "--syntax-only"])
        .arg(&filled_path));
}

#[test]
fn systemd_accepts_the_unit() {
    let unit = workspace_root().join("deploy/systemd/hub.service");
    let text = std::fs::read_to_string(&unit).unwrap();
    for line in [
        "Type=notify",
        "WatchdogSec=",
        "Restart=on-failure",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/hub",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "DevicePolicy=closed",
        "SupplementaryGroups=dialout",
        "StandardError=journal",
        // The status page and the store bound their files; the unit bounds the rest.
        "LimitNOFILE=",
    ] {
        assert!(text.contains(line), "{line} missing from the unit");
    }
    // The stop timeout must outlast the drain grace of the shipped example config.
    let seconds = |key: &str, text: &str| -> f64 {
        let value = text
            .lines()
            .find_map(|l| l.trim().strip_prefix(key))
            .unwrap_or_else(|| panic!("{key} not set"))
            .trim()
            .trim_end_matches('s');
        value.parse().unwrap()
    };
    let example =
        std::fs::read_to_string(workspace_root().join("config/hub.example.toml")).unwrap();
    let grace = seconds("grace_seconds =", &example);
    assert!(
        seconds("TimeoutStopSec=", &text) >= grace + 20.0,
        "TimeoutStopSec must exceed shutdown.grace_seconds ({grace}) with room for the flush"
    );

    // systemd-analyze verify checks that ExecStart's binary exists and that the targets the
    // unit hangs off exist: give it a root with both (the unit is verified as shipped).
    let scratch = tempfile::tempdir().unwrap();
    let root = scratch.path();
    std::fs::create_dir_all(root.join("usr/bin")).unwrap();
    std::fs::create_dir_all(root.join("etc/systemd/system")).unwrap();
    std::fs::create_dir_all(root.join("lib/systemd")).unwrap();
    std::fs::copy(hub_binary(), root.join("usr/bin/hub")).unwrap();
    run(Command::new("cp")
        .arg("-r")
        .arg("/lib/systemd/system")
        .arg(root.join("lib/systemd/")));
    std::fs::copy(&unit, root.join("etc/systemd/system/hub.service")).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(format!("--root={}", root.display()))
        .arg(root.join("etc/systemd/system/hub.service"))
        .env("SYSTEMD_LOG_LEVEL", "warning")
        .output()
        .expect("systemd-analyze (Debian package systemd; bash deploy/setup.sh)");
    let complaints: Vec<String> = stderr(&out)
        .lines()
        .chain(stdout(&out).lines())
        // systemd < 254 does not know the restart back-off keys and says it ignores them.
        .filter(|l| !(l.contains("Unknown key") && l.contains("Restart")))
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect();
    assert!(
        out.status.success(),
        "systemd-analyze verify failed: {complaints:?}"
    );
    assert!(
        complaints.is_empty(),
        "systemd-analyze verify: {complaints:?}"
    );
}

#[test]
fn the_postinst_creates_the_user_and_data_directory() {
    // Run the real postinst with every command it calls replaced by a stub that logs its
    // arguments, so nothing on this machine changes.
    let scratch = tempfile::tempdir().unwrap();
    let bin = scratch.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let log = scratch.path().join("calls.log");
    for cmd in [
        "getent",
        "addgroup",
        "adduser",
        "install",
        "chown",
        "chmod",
        "udevadm",
        "systemctl",
    ] {
        let stub = bin.join(cmd);
        // getent answers "not found" (exit 2) except for group dialout, like a fresh box.
        let body = if cmd == "getent" {
            format!(
                "#!/bin/sh\necho \"$0 $*\" >> {log}\n[ \"$1 $2\" = \"group dialout\" ] && exit 0\nexit 2\n",
                log = log.display()
            )
        } else {
            format!("#!/bin/sh\necho \"$0 $*\" >> {}\n", log.display())
        };
        std::fs::write(&stub, body).unwrap();
        run(Command::new("chmod").arg("+x").arg(&stub));
    }
    run(Command::new("sh")
        .arg(workspace_root().join("deploy/debian/postinst"))
        .arg("configure")
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display())));
    let calls = std::fs::read_to_string(&log)
        .unwrap()
        .replace(&format!("{}/", bin.display()), "");
    for expected in [
        "addgroup --system --quiet hub",
        "adduser --system --quiet --ingroup hub --home /var/lib/hub --no-create-home",
        "adduser --quiet hub dialout",
    ] {
        assert!(
            calls.contains(expected),
            "{expected:?} not called:\n{calls}"
        );
    }
    if !Path::new("/var/lib/hub").exists() {
        assert!(
            calls.contains("install -d -o hub -g hub -m 0750 /var/lib/hub"),
            "{calls}"
        );
    }
}

#[test]
fn the_udev_rules_are_well_formed() {
    // udevadm on this Debian has no `verify`; check each rule's shape so a typo cannot ship:
    // comma-separated KEY or KEY{attr}, an operator, a double-quoted value.
    let rules =
        std::fs::read_to_string(workspace_root().join("deploy/udev/61-hub-devices.rules")).unwrap();
    let known_keys = [
        "ACTION",
        "SUBSYSTEM",
        "SUBSYSTEMS",
        "KERNEL",
        "ATTRS",
        "ENV",
        "GROUP",
        "MODE",
        "SYMLINK",
        "GOTO",
        "LABEL",
        "IMPORT",
    ];
    let mut rules_seen = 0;
    for (n, line) in rules.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        rules_seen += 1;
        for token in line.split(", ") {
            let key_end = token
                .find(|c: char| !(c.is_ascii_uppercase() || c == '_'))
                .unwrap_or_else(|| panic!("line {}: {token:?} has no operator", n + 1));
            let key = &token[..key_end];
            assert!(
                known_keys.contains(&key),
                "line {}: unknown key {key:?}",
                n + 1
            );
            let mut rest = &token[key_end..];
            if let Some(attr) = rest.strip_prefix('{') {
                let close = attr.find('}').expect("closing brace");
                rest = &attr[close + 1..];
            }
            let op = ["==", "!=", "+=", ":=", "="]
                .into_iter()
                .find(|op| rest.starts_with(op))
                .unwrap_or_else(|| panic!("line {}: bad operator in {token:?}", n + 1));
            let value = &rest[op.len()..];
            assert!(
                value.len() >= 2
                    && value.starts_with('"')
                    && value.ends_with('"')
                    && value.matches('"').count() == 2,
                "line {}: value of {token:?} must be one double-quoted string",
                n + 1
            );
        }
    }
    assert!(rules_seen >= 8, "only {rules_seen} rules");
    assert!(rules.contains("GROUP=\"dialout\", MODE=\"0660\""));
    assert!(rules.contains("LABEL=\"hub_devices_end\""));
}
