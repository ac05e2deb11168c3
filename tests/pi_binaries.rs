//! The Raspberry Pi binaries and Debian packages that `scripts/build-pi` builds: static ELF
//! executables for the right processor, a gateway that works under Debian's qemu-user-static
//! (push, scrape, stop with SIGTERM, restart on the same store), and packages that carry that
//! binary, the systemd unit and the flags file.
//!
//! These tests read what `scripts/build-pi` left in `target/`; when it is missing they fail and
//! say to run it (`scripts/test` does, before `cargo test`). `PI_PROFILE` picks the Cargo profile
//! as it does for the script (default `dist`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use cronpush::proto::client::{Gauge, LabelPair, Metric, MetricFamily, MetricType};
use prost::Message;
use support::{Server, peer};

const PROTOBUF: &str = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";
const UNIT: &str = "manifests/gateway/cronpush-gateway.service";
const DEFAULTS: &str = "manifests/gateway/cronpush-gateway.default";

/// One Raspberry Pi target: a Rust triple, its Debian architecture, the qemu that runs it.
struct Pi {
    triple: &'static str,
    debian_arch: &'static str,
    qemu: &'static str,
    /// ELF class: 2 for 64-bit, 1 for 32-bit.
    elf_class: u8,
    /// ELF `e_machine`.
    machine: u16,
}

const AARCH64: Pi = Pi {
    triple: "aarch64-unknown-linux-musl",
    debian_arch: "arm64",
    qemu: "qemu-aarch64-static",
    elf_class: 2,
    machine: 183, // EM_AARCH64
};

const ARMV7: Pi = Pi {
    triple: "armv7-unknown-linux-musleabihf",
    debian_arch: "armhf",
    qemu: "qemu-arm-static",
    elf_class: 1,
    machine: 40, // EM_ARM
};

const EF_ARM_EABIMASK: u32 = 0xff00_0000;
const EF_ARM_EABI_VER5: u32 = 0x0500_0000;
const EF_ARM_ABI_FLOAT_HARD: u32 = 0x0400;
const PT_INTERP: u32 = 3;

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

fn profile() -> String {
    std::env::var("PI_PROFILE").unwrap_or_else(|_| "dist".into())
}

/// A file `scripts/build-pi` makes; a failure that says to run it when it is missing.
fn built(path: PathBuf) -> PathBuf {
    assert!(
        path.is_file(),
        "{} is missing: run ./scripts/build-pi (with the same PI_PROFILE) before cargo test",
        path.display()
    );
    path
}

impl Pi {
    fn binary(&self) -> PathBuf {
        built(target_dir().join(self.triple).join(profile()).join("cronpush"))
    }

    fn deb(&self) -> PathBuf {
        let name = format!("cronpush_{}-1_{}.deb", env!("CARGO_PKG_VERSION"), self.debian_arch);
        built(target_dir().join("debian").join(name))
    }

    fn gateway(&self, binary: &Path, args: &[&str]) -> Server {
        let binary = binary.to_str().expect("UTF-8 path");
        Server::start(&peer(self.qemu), &[binary, "gateway"], args, "")
    }
}

// ---- The executables ----------------------------------------------------------------------

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(b[at..at + 2].try_into().expect("2 bytes"))
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// The types of the ELF file's program headers (little-endian, 32- or 64-bit).
fn program_header_types(elf: &[u8]) -> Vec<u32> {
    let (offset, size, count) = if elf[4] == 2 {
        (u64_at(elf, 32) as usize, u16_at(elf, 54) as usize, u16_at(elf, 56) as usize)
    } else {
        (u32_at(elf, 28) as usize, u16_at(elf, 42) as usize, u16_at(elf, 44) as usize)
    };
    (0..count).map(|i| u32_at(elf, offset + i * size)).collect()
}

fn is_a_static_executable_for_the_pi(pi: &Pi) {
    let path = pi.binary();
    let elf = std::fs::read(&path).expect("read the binary");
    assert_eq!(&elf[..4], b"\x7fELF", "{} is not an ELF file", path.display());
    assert_eq!(elf[4], pi.elf_class, "ELF class of {}", path.display());
    assert_eq!(elf[5], 1, "{} is not little-endian", path.display());
    // ET_EXEC, or ET_DYN for a static position-independent executable.
    assert!([2, 3].contains(&u16_at(&elf, 16)), "{} is not an executable", path.display());
    assert_eq!(u16_at(&elf, 18), pi.machine, "ELF machine of {}", path.display());
    if pi.machine == ARMV7.machine {
        let flags = u32_at(&elf, 36);
        assert_eq!(flags & EF_ARM_EABIMASK, EF_ARM_EABI_VER5, "not EABI5: flags {flags:#x}");
        assert_ne!(flags & EF_ARM_ABI_FLOAT_HARD, 0, "not hard-float: flags {flags:#x}");
    }
    let types = program_header_types(&elf);
    assert!(!types.is_empty(), "no program headers in {}", path.display());
    assert!(!types.contains(&PT_INTERP), "{} asks for a dynamic loader (PT_INTERP): not static", path.display());
}

#[test]
fn aarch64_binary_is_a_static_arm64_executable() {
    is_a_static_executable_for_the_pi(&AARCH64);
}

#[test]
fn armv7_binary_is_a_static_eabi5_hard_float_executable() {
    is_a_static_executable_for_the_pi(&ARMV7);
}

// ---- The gateway under qemu ---------------------------------------------------------------

fn protobuf_body() -> Vec<u8> {
    let family = MetricFamily {
        name: Some("pi_fan_rpm".into()),
        help: Some("Fan speed.".into()),
        r#type: Some(MetricType::Gauge as i32),
        metric: vec![Metric {
            label: vec![LabelPair { name: Some("fan".into()), value: Some("case".into()) }],
            gauge: Some(Gauge { value: Some(1200.0) }),
            ..Default::default()
        }],
        unit: None,
    };
    let mut body = Vec::new();
    family.encode_length_delimited(&mut body).expect("encode");
    body
}

const TEXT_SERIES: &str = r#"pi_temperature_celsius{instance="kitchen",job="pi"} 48.5"#;
const PROTOBUF_SERIES: &str = r#"pi_fan_rpm{fan="case",instance="kitchen",job="pi_proto"} 1200"#;

fn assert_pushed(server: &Server, when: &str) {
    let series = server.pushed_series();
    for expected in [TEXT_SERIES, PROTOBUF_SERIES] {
        assert!(series.iter().any(|s| s == expected), "{when}: {expected} is missing from {series:#?}");
    }
}

fn serves_pushes_and_keeps_them_across_a_restart(pi: &Pi) {
    let binary = pi.binary();
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = format!("--persistence.file={}", dir.path().join("gateway.redb").display());

    let mut server = pi.gateway(&binary, &[&store]);
    let text = "# TYPE pi_temperature_celsius gauge\npi_temperature_celsius 48.5\n";
    let reply = server.put("/metrics/job/pi/instance/kitchen", text);
    assert_eq!(reply.status, 200, "text push: {}\n{}", reply.body, server.stderr());
    let reply =
        server.request("PUT", "/metrics/job/pi_proto/instance/kitchen", &[("Content-Type", PROTOBUF)], protobuf_body());
    assert_eq!(reply.status, 200, "protobuf push: {}\n{}", reply.body, server.stderr());
    assert_pushed(&server, "after the pushes");

    server.signal("TERM");
    assert_eq!(server.wait_exit(Duration::from_secs(60)), Some(0), "exit on SIGTERM:\n{}", server.stderr());

    let server = pi.gateway(&binary, &[&store]);
    assert_pushed(&server, "after a restart on the same store");
}

#[test]
fn aarch64_gateway_serves_pushes_and_keeps_them_across_a_restart() {
    serves_pushes_and_keeps_them_across_a_restart(&AARCH64);
}

#[test]
fn armv7_gateway_serves_pushes_and_keeps_them_across_a_restart() {
    serves_pushes_and_keeps_them_across_a_restart(&ARMV7);
}

// ---- The Debian packages ------------------------------------------------------------------

/// `dpkg-deb <option> <deb> [<directory>]`, its output.
fn dpkg_deb(option: &str, deb: &Path, directory: Option<&Path>) -> String {
    let output = Command::new(peer("dpkg-deb")).arg(option).arg(deb).args(directory).output().expect("run dpkg-deb");
    assert!(
        output.status.success(),
        "dpkg-deb {option} {}: {}",
        deb.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

fn repository_file(path: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).expect("read a repository file")
}

fn package_installs_the_gateway(pi: &Pi) {
    let deb = pi.deb();
    let fields = dpkg_deb("-f", &deb, None);
    let field = |name: &str| fields.lines().find_map(|l| l.strip_prefix(&format!("{name}: ")).map(String::from));
    assert_eq!(field("Package").as_deref(), Some("cronpush"));
    assert_eq!(field("Architecture").as_deref(), Some(pi.debian_arch));
    assert_eq!(field("Version"), Some(format!("{}-1", env!("CARGO_PKG_VERSION"))));
    assert_eq!(field("Depends").unwrap_or_default().trim(), "", "a static binary needs no other package");

    let listing = dpkg_deb("-c", &deb, None);
    // cargo-deb puts units in /usr/lib/systemd/system: /lib/systemd/system on merged-/usr systems.
    let unit_path = "./usr/lib/systemd/system/cronpush-gateway.service";
    for path in ["./usr/bin/cronpush", unit_path, "./etc/default/cronpush-gateway"] {
        assert!(listing.lines().any(|l| l.ends_with(&format!(" {path}"))), "{path} is not in the package:\n{listing}");
    }
    assert!(
        listing.lines().any(|l| l.starts_with("-rwxr-xr-x 0/0") && l.ends_with(" ./usr/bin/cronpush")),
        "/usr/bin/cronpush is not an executable owned by root:\n{listing}"
    );

    let dir = tempfile::tempdir().expect("temporary directory");
    let control = dir.path().join("control");
    dpkg_deb("-e", &deb, Some(&control));
    let read = |name: &str| std::fs::read_to_string(control.join(name)).unwrap_or_default();
    assert_eq!(read("conffiles").lines().collect::<Vec<_>>(), ["/etc/default/cronpush-gateway"]);
    // The maintainer scripts debhelper would write: enable and start on install, stop on
    // removal, forget the unit on purge.
    let postinst = read("postinst");
    assert!(postinst.contains("deb-systemd-helper unmask cronpush-gateway.service"), "postinst:\n{postinst}");
    assert!(postinst.contains("deb-systemd-helper enable cronpush-gateway.service"), "postinst:\n{postinst}");
    assert!(postinst.contains("deb-systemd-invoke $_dh_action cronpush-gateway.service"), "postinst:\n{postinst}");
    let prerm = read("prerm");
    assert!(prerm.contains("deb-systemd-invoke stop cronpush-gateway.service"), "prerm:\n{prerm}");
    let postrm = read("postrm");
    assert!(postrm.contains("deb-systemd-helper purge cronpush-gateway.service"), "postrm:\n{postrm}");

    let root = dir.path().join("root");
    dpkg_deb("-x", &deb, Some(&root));
    let installed = |path: &str| std::fs::read(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert!(installed(&unit_path[2..]) == repository_file(UNIT), "the packaged unit differs from {UNIT}");
    assert!(installed("etc/default/cronpush-gateway") == repository_file(DEFAULTS), "the packaged defaults differ");
    assert!(
        installed("usr/bin/cronpush") == std::fs::read(pi.binary()).expect("read the binary"),
        "the packaged binary is not the one built for {}: run ./scripts/build-pi",
        pi.triple
    );

    let binary = root.join("usr/bin/cronpush");
    let output = Command::new(peer(pi.qemu)).arg(&binary).arg("--version").output().expect("run under qemu");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "--version under {}: {}", pi.qemu, String::from_utf8_lossy(&output.stderr));
    assert_eq!(stdout.trim(), format!("cronpush {}", env!("CARGO_PKG_VERSION")));

    // And the packaged binary serves, with the unit's own persistence flag shape.
    let store = dir.path().join("gateway.data");
    let server = pi.gateway(&binary, &[&format!("--persistence.file={}", store.display())]);
    let reply = server.put("/metrics/job/deb", "deb_installed 1\n");
    assert_eq!(reply.status, 200, "push to the packaged binary: {}", reply.body);
    assert!(server.pushed_series().iter().any(|s| s == r#"deb_installed{instance="",job="deb"} 1"#));
}

#[test]
fn arm64_package_installs_the_gateway() {
    package_installs_the_gateway(&AARCH64);
}

#[test]
fn armhf_package_installs_the_gateway() {
    package_installs_the_gateway(&ARMV7);
}
