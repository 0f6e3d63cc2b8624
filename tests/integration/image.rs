//! The container image as a runtime runs it, without a runtime: the root
//! filesystem and image config that `scripts/build-image.sh --export DIR`
//! unpacked from the built image (scripts/test.sh builds it before the
//! tests and sets `MODEL_MONITOR_IMAGE_DIR`), its entrypoint run in a
//! chroot as the image's user. The image holds only the static binary, the
//! CA bundle and the user; the binary checks the ConfigMap's config, and
//! `run` with the image's default command serves a model's gauges from a
//! real Prometheus found by names from `/etc/hosts` (as a runtime mounts
//! it) and by `localhost`. Also: the tag the manifests and the README name
//! is the crate's version, the one the script builds.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;

use crate::support::exposition::sample;
use crate::support::process::{Process, free_port, get, http_client, program, wait_for};
use crate::support::prometheus::PrometheusServer;
use crate::support::sidecar::{Sidecar, SidecarConfig, start_drifting_simulation};

/// Where scripts/test.sh tells the tests the exported image is.
const IMAGE_DIR_VAR: &str = "MODEL_MONITOR_IMAGE_DIR";

/// The tag scripts/build-image.sh gives the image: the crate's version.
fn expected_tag() -> String {
    format!("model-monitor:{}", env!("CARGO_PKG_VERSION"))
}

fn repo_file(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

/// The exported image: its root filesystem, its OCI config and its tag.
struct ExportedImage {
    rootfs: PathBuf,
    config: Value,
    tag: String,
}

impl ExportedImage {
    /// The image scripts/test.sh exported; fails (never skips) when it did
    /// not, or when the tests cannot chroot.
    fn load() -> ExportedImage {
        let dir = std::env::var_os(IMAGE_DIR_VAR)
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                panic!(
                    "{IMAGE_DIR_VAR} is not set: build and unpack the image with \
                 `scripts/build-image.sh --export DIR` and set {IMAGE_DIR_VAR}=DIR \
                 (scripts/test.sh does both)"
                )
            });
        let read = |name: &str| {
            std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| {
                panic!(
                    "reading {} ({IMAGE_DIR_VAR}; run scripts/build-image.sh --export {}): {e}",
                    dir.join(name).display(),
                    dir.display()
                )
            })
        };
        let inspect: Value = serde_json::from_str(&read("image.json")).expect("buildah inspect");
        let status = std::fs::read_to_string("/proc/self/status").expect("reading /proc");
        let uid = status
            .lines()
            .find_map(|line| line.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            .expect("Uid in /proc/self/status");
        assert_eq!(
            uid, "0",
            "the image test runs the entrypoint with chroot, which needs root: run the tests as root"
        );
        ExportedImage {
            rootfs: dir.join("rootfs"),
            config: inspect["OCIv1"]["config"].clone(),
            tag: read("tag").trim().to_owned(),
        }
    }

    fn strings(&self, key: &str) -> Vec<String> {
        self.config[key]
            .as_array()
            .unwrap_or_else(|| panic!("{key} in the image config: {}", self.config))
            .iter()
            .map(|item| item.as_str().expect("a string").to_owned())
            .collect()
    }

    fn user(&self) -> String {
        self.config["User"].as_str().expect("a user").to_owned()
    }

    /// A copy of the root filesystem in `dir`, for a test to add files to.
    fn copy_rootfs(&self, dir: &Path) -> PathBuf {
        let copy = dir.join("rootfs");
        std::fs::create_dir(&copy).unwrap();
        let status = Command::new("cp")
            .arg("-a")
            .arg(self.rootfs.join("."))
            .arg(&copy)
            .status()
            .expect("running cp");
        assert!(status.success(), "copying the root filesystem");
        copy
    }

    /// `chroot --userspec=USER ROOTFS ENTRYPOINT ARGS`: the entrypoint run
    /// as the image's user.
    fn entrypoint_command(&self, rootfs: &Path, args: &[String]) -> Vec<String> {
        let mut command = vec![
            format!("--userspec={}", self.user()),
            rootfs.display().to_string(),
        ];
        command.extend(self.strings("Entrypoint"));
        command.extend(args.iter().cloned());
        command
    }

    fn run_entrypoint(&self, rootfs: &Path, args: &[&str]) -> Output {
        let args: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
        Command::new(program("chroot"))
            .args(self.entrypoint_command(rootfs, &args))
            .output()
            .expect("running chroot")
    }
}

/// Every path under `root`, relative, with its owner for directories.
fn tree(root: &Path) -> BTreeSet<String> {
    use std::os::unix::fs::MetadataExt;
    let mut found = BTreeSet::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let name = path.strip_prefix(root).unwrap().display().to_string();
            if meta.is_dir() {
                found.insert(format!("{name}/ {}:{}", meta.uid(), meta.gid()));
                stack.push(path);
            } else {
                found.insert(name);
            }
        }
    }
    found
}

/// Whether an ELF executable names a program interpreter (`PT_INTERP`),
/// i.e. is linked dynamically.
fn has_interpreter(elf: &[u8]) -> bool {
    assert_eq!(&elf[..4], b"\x7fELF", "not an ELF file");
    let u16_at = |at: usize| u16::from_le_bytes([elf[at], elf[at + 1]]) as usize;
    let offset = u64::from_le_bytes(elf[0x20..0x28].try_into().unwrap()) as usize;
    let (size, count) = (u16_at(0x36), u16_at(0x38));
    (0..count).any(|index| {
        let header = offset + index * size;
        u32::from_le_bytes(elf[header..header + 4].try_into().unwrap()) == 3
    })
}

#[test]
fn the_image_tag_in_the_manifests_and_the_readme_is_the_crate_version() {
    let deployment: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&repo_file("deploy/kubernetes/statefulset.yaml")).unwrap();
    let image = deployment["spec"]["template"]["spec"]["containers"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|c| c["name"].as_str() == Some("model-monitor"))
        .and_then(|c| c["image"].as_str())
        .expect("the model-monitor container's image");
    assert_eq!(image, expected_tag(), "deploy/kubernetes/statefulset.yaml");
    let readme = repo_file("README.md");
    assert!(
        readme.contains(&format!("`{}`", expected_tag())),
        "README.md names the image `{}`",
        expected_tag()
    );
    let script = repo_file("scripts/build-image.sh");
    assert!(script.contains(r#"tag="model-monitor:$version""#));
}

#[test]
fn the_image_is_the_static_binary_the_ca_bundle_and_a_nonroot_user() {
    let image = ExportedImage::load();
    assert_eq!(
        image.tag,
        expected_tag(),
        "the tag scripts/build-image.sh gave"
    );
    assert_eq!(image.user(), "65532:65532");
    assert_eq!(image.strings("Entrypoint"), ["/model-monitor"]);
    assert_eq!(
        image.strings("Cmd"),
        [
            "run",
            "--config.file=/etc/model-monitor/model-monitor.yml",
            "--storage.path=/var/lib/model-monitor"
        ]
    );
    let ports: Vec<&String> = image.config["ExposedPorts"]
        .as_object()
        .expect("exposed ports")
        .keys()
        .collect();
    assert_eq!(ports, ["9847/tcp"]);

    let expected: BTreeSet<String> = [
        "model-monitor",
        "etc/ 0:0",
        "etc/passwd",
        "etc/group",
        "etc/ssl/ 0:0",
        "etc/ssl/certs/ 0:0",
        "etc/ssl/certs/ca-certificates.crt",
        "var/ 0:0",
        "var/lib/ 0:0",
        "var/lib/model-monitor/ 65532:65532",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(tree(&image.rootfs), expected, "the image's files");
    let binary = std::fs::read(image.rootfs.join("model-monitor")).unwrap();
    assert!(
        !has_interpreter(&binary),
        "the binary is linked dynamically"
    );
    let passwd = std::fs::read_to_string(image.rootfs.join("etc/passwd")).unwrap();
    assert!(passwd.contains("nonroot:x:65532:65532:"), "{passwd}");
    let bundle =
        std::fs::read_to_string(image.rootfs.join("etc/ssl/certs/ca-certificates.crt")).unwrap();
    assert!(bundle.matches("BEGIN CERTIFICATE").count() > 50);

    // No libc, no loader, no shell: it runs because it is static.
    let output = image.run_entrypoint(&image.rootfs, &["--version"]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        format!("model-monitor {}", env!("CARGO_PKG_VERSION"))
    );
}

/// Starts the image's entrypoint as the image's user with `args` (the
/// image's default command, or a command in its place), serving on a free
/// loopback port.
fn start_in_chroot(
    image: &ExportedImage,
    rootfs: &Path,
    name: &str,
    config: &SidecarConfig,
    mut args: Vec<String>,
    dir: &Path,
) -> Sidecar {
    let port = free_port();
    args.push(format!("--web.listen-address=127.0.0.1:{port}"));
    let process = Process::start_with_env(
        name,
        &program("chroot"),
        &image.entrypoint_command(rootfs, &args),
        config.env(),
        dir,
    );
    Sidecar { process, port }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_image_checks_the_configmap_config_and_serves_gauges_from_a_real_prometheus() {
    let image = ExportedImage::load();
    let dir = tempfile::tempdir().unwrap();
    let rootfs = image.copy_rootfs(dir.path());
    let config_dir = rootfs.join("etc/model-monitor");
    std::fs::create_dir_all(&config_dir).unwrap();

    // The ConfigMap's config, where the StatefulSet mounts it.
    let config_map: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&repo_file("deploy/kubernetes/configmap.yaml")).unwrap();
    let shipped = config_map["data"]["model-monitor.yml"].as_str().unwrap();
    std::fs::write(config_dir.join("model-monitor.yml"), shipped).unwrap();
    let output = image.run_entrypoint(
        &rootfs,
        &["check-config", "/etc/model-monitor/model-monitor.yml"],
    );
    assert!(output.status.success(), "check-config: {output:?}");

    // A real Prometheus scraping simulated models, and two sidecars from the
    // image: one finds Prometheus by a name from /etc/hosts, one as
    // localhost, both through the binary's own resolver.
    let client = http_client();
    let (_simulate, simulate_port) =
        start_drifting_simulation(dir.path(), Duration::from_secs(3600));
    let prometheus = PrometheusServer::start(dir.path(), &[format!("127.0.0.1:{simulate_port}")]);
    prometheus.wait_ready(&client).await;
    let prometheus_port = prometheus.url().rsplit(':').next().unwrap().to_owned();
    std::fs::write(
        rootfs.join("etc/hosts"),
        "127.0.0.1 localhost\n127.0.0.1 prometheus.test\n",
    )
    .unwrap();
    let config = |host: &str| {
        SidecarConfig::simulated(&format!("http://{host}:{prometheus_port}"), "image")
            .set("MIN_SAMPLES", "10")
            .set("WASSERSTEIN_THRESHOLD", "0.5")
    };
    // The default command reads /etc/model-monitor/model-monitor.yml and
    // stores into /var/lib/model-monitor, which the image's user owns.
    let by_name = config("prometheus.test");
    by_name.write(&config_dir.join("model-monitor.yml"));
    let first = start_in_chroot(
        &image,
        &rootfs,
        "by-name",
        &by_name,
        image.strings("Cmd"),
        dir.path(),
    );
    let by_localhost = config("localhost");
    by_localhost.write(&config_dir.join("localhost.yml"));
    let second = start_in_chroot(
        &image,
        &rootfs,
        "by-localhost",
        &by_localhost,
        vec![
            "run".to_owned(),
            "--config.file=/etc/model-monitor/localhost.yml".to_owned(),
            "--storage.path=/var/lib/model-monitor/localhost".to_owned(),
        ],
        dir.path(),
    );

    for sidecar in [&first, &second] {
        let url = sidecar.url("/metrics");
        wait_for(
            "a model's gauge on the image's /metrics",
            Duration::from_secs(90),
            || async {
                let (_, text) = get(&client, &url).await?;
                sample(
                    &text,
                    "model_monitor_signal_samples",
                    &[("model", "model-0"), ("signal", "confidence")],
                )
                .filter(|samples| *samples > 0.0)
            },
        )
        .await;
        let (_, text) = get(&client, &url).await.unwrap();
        assert_eq!(
            sample(&text, "model_monitor_up", &[("source", "image")]),
            Some(1.0),
            "{}",
            sidecar.process.log_text()
        );
    }
    assert!(rootfs.join("var/lib/model-monitor/outbox.redb").is_file());
    assert!(
        rootfs
            .join("var/lib/model-monitor/localhost/outbox.redb")
            .is_file()
    );
}
