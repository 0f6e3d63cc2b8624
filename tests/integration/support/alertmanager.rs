//! Alertmanager as the tests run it: the shipped `alerts/alertmanager.yml`
//! rewritten for a test (every receiver a webhook to the test's receiver,
//! short group timers), checked by amtool, and real `alertmanager`
//! processes on loopback ports, alone or as a gossiping HA cluster.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_yaml_ng::Value as Yaml;

use super::process::{Process, find_program, free_port, get, program, wait_for, wait_until_ok};

/// The shipped routing tree, relative to the repository.
pub const ALERTMANAGER_CONFIG: &str = "alerts/alertmanager.yml";

/// The Alertmanager binary: `alertmanager` upstream, `prometheus-alertmanager`
/// in Debian.
pub fn alertmanager_program() -> PathBuf {
    find_program("alertmanager")
        .or_else(|| find_program("prometheus-alertmanager"))
        .unwrap_or_else(|| {
            panic!("alertmanager is not installed (Debian calls it prometheus-alertmanager): run scripts/test.sh, which installs it with apt-get")
        })
}

/// How a test variant of the shipped config treats `send_resolved`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendResolved {
    /// Every receiver sends firing notifications only.
    Never,
    /// Each receiver as the shipped file says (Alertmanager's default for
    /// its integration when the file does not say: false for Slack and
    /// email, true for the others).
    AsShipped,
}

/// `alerts/alertmanager.yml` with the same routes and inhibitions, every
/// receiver replaced by a webhook to `base/<receiver name>`, the root
/// route's `group_wait` and `group_interval` set to these (the child routes
/// inherit them), `repeat_interval` 1h, and template paths made absolute.
pub fn alertmanager_test_config(
    base: &str,
    group_wait: &str,
    group_interval: &str,
    send_resolved: SendResolved,
) -> String {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(repo.join(ALERTMANAGER_CONFIG)).unwrap();
    let mut config: Yaml = serde_yaml_ng::from_str(&text).unwrap();
    if let Some(templates) = config.get_mut("templates").and_then(Yaml::as_sequence_mut) {
        for template in templates {
            let path = repo.join("alerts").join(template.as_str().unwrap());
            *template = path.display().to_string().into();
        }
    }
    fn timers(route: &mut Yaml, root: Option<(&str, &str)>) {
        let map = route.as_mapping_mut().unwrap();
        for key in ["group_wait", "group_interval", "repeat_interval"] {
            map.remove(key);
        }
        if let Some((wait, interval)) = root {
            map.insert("group_wait".into(), wait.into());
            map.insert("group_interval".into(), interval.into());
            map.insert("repeat_interval".into(), "1h".into());
        }
        if let Some(routes) = map.get_mut("routes").and_then(Yaml::as_sequence_mut) {
            for child in routes {
                timers(child, None);
            }
        }
    }
    timers(&mut config["route"], Some((group_wait, group_interval)));
    for receiver in config["receivers"].as_sequence_mut().unwrap() {
        let name = receiver["name"].as_str().unwrap().to_owned();
        let resolved = match send_resolved {
            SendResolved::Never => false,
            SendResolved::AsShipped => shipped_send_resolved(receiver),
        };
        let webhook: Yaml = serde_yaml_ng::from_str(&format!(
            "name: {name}\nwebhook_configs:\n  - url: {base}/{name}\n    send_resolved: {resolved}\n"
        ))
        .unwrap();
        *receiver = webhook;
    }
    serde_yaml_ng::to_string(&config).unwrap()
}

/// Whether the shipped receiver's first integration sends resolved
/// notifications.
fn shipped_send_resolved(receiver: &Yaml) -> bool {
    let map = receiver.as_mapping().unwrap();
    for (key, value) in map {
        let Some(kind) = key.as_str().and_then(|k| k.strip_suffix("_configs")) else {
            continue;
        };
        let first = &value.as_sequence().unwrap()[0];
        return first
            .get("send_resolved")
            .and_then(Yaml::as_bool)
            .unwrap_or(!matches!(kind, "slack" | "email"));
    }
    panic!("receiver without an integration: {receiver:?}")
}

/// Runs `amtool check-config` on a file; panics with its output if it
/// rejects it.
pub fn amtool_check(config: &Path) {
    let output = std::process::Command::new(program("amtool"))
        .args(["check-config", config.to_str().unwrap()])
        .output()
        .expect("running amtool");
    assert!(
        output.status.success(),
        "amtool rejects {}:\n{}{}",
        config.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A running Alertmanager, killed when dropped.
pub struct Alertmanager {
    pub process: Process,
    pub port: u16,
}

impl Alertmanager {
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Waits until `/-/ready` answers 200.
    pub async fn wait_ready(&self, client: &reqwest::Client) {
        wait_until_ok(
            client,
            "alertmanager to be ready",
            &format!("{}/-/ready", self.url()),
            Duration::from_secs(30),
        )
        .await;
    }

    /// The alerts it holds (`GET /api/v2/alerts`), resolved ones included.
    pub async fn alerts(&self, client: &reqwest::Client) -> Vec<serde_json::Value> {
        let url = format!("{}/api/v2/alerts", self.url());
        let (_, body) = get(client, &url).await.expect("alertmanager answers");
        serde_json::from_str(&body).expect("alerts as JSON")
    }
}

/// Starts `count` Alertmanagers with `config`, each its storage in
/// `dir/<name>-<i>`, gossiping with each other (short gossip and
/// push-pull intervals, a 5s peer timeout); waits until each is ready and
/// sees all of them as peers.
pub async fn start_cluster(
    client: &reqwest::Client,
    dir: &Path,
    name: &str,
    config: &Path,
    count: usize,
) -> Vec<Alertmanager> {
    let web: Vec<u16> = (0..count).map(|_| free_port()).collect();
    let cluster: Vec<u16> = (0..count).map(|_| free_port()).collect();
    let mut members = Vec::new();
    for i in 0..count {
        let mut args = vec![
            format!("--config.file={}", config.display()),
            format!(
                "--storage.path={}",
                dir.join(format!("{name}-{i}")).display()
            ),
            format!("--web.listen-address=127.0.0.1:{}", web[i]),
            format!("--cluster.listen-address=127.0.0.1:{}", cluster[i]),
            format!("--cluster.advertise-address=127.0.0.1:{}", cluster[i]),
            "--cluster.gossip-interval=50ms".into(),
            "--cluster.pushpull-interval=1s".into(),
            "--cluster.peer-timeout=5s".into(),
            "--cluster.reconnect-timeout=1m".into(),
            "--log.level=warn".into(),
        ];
        for (j, port) in cluster.iter().enumerate() {
            if j != i {
                args.push(format!("--cluster.peer=127.0.0.1:{port}"));
            }
        }
        let process = Process::start(&format!("{name}-{i}"), &alertmanager_program(), &args, dir);
        members.push(Alertmanager {
            process,
            port: web[i],
        });
    }
    for member in &members {
        member.wait_ready(client).await;
        let status = format!("{}/api/v2/status", member.url());
        wait_for(
            "every alertmanager to see the whole cluster",
            Duration::from_secs(30),
            || async {
                let (_, body) = get(client, &status).await?;
                let status: serde_json::Value = serde_json::from_str(&body).ok()?;
                let peers = status["cluster"]["peers"].as_array()?.len();
                (status["cluster"]["status"] == "ready" && peers == count).then_some(())
            },
        )
        .await;
    }
    members
}
