//! Storage faults with real files: a tmpfs filled up under a running
//! sidecar and then freed (every notification of an episode that fired and
//! resolved meanwhile is delivered, with no restart), corrupt and
//! headerless store files at start (refused, or moved aside with
//! `--storage.quarantine-corrupt`), and the operator's `model-monitor
//! outbox` commands on a real store file (locked by an open store as by a
//! running sidecar).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use model_monitor::alerting::AlertStore;
use model_monitor::store::{DeadLetter, Notification, Store};
use serde_json::Value;

use crate::support::exposition::sample;
use crate::support::process::{
    free_port, get as http_get, http_client, model_monitor_binary, run_binary, wait_for,
};
use crate::support::promql::{FakePromql, drifting_models};
use crate::support::sidecar::{Sidecar, SidecarConfig};
use crate::support::webhook_receiver::{Behaviour, WebhookReceiver};

/// A tmpfs mounted for one test, unmounted when dropped.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (e.g. "4m") at `path`. Needs root (CI runs
    /// the tests as root): fails, never skips, when it cannot.
    fn mount(path: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(path).unwrap();
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run mount: {e}; this test needs root and mount(8) to make a full disk"
                )
            });
        assert!(
            output.status.success(),
            "mounting a {size} tmpfs at {} failed ({}): this test needs root and mount(8) to make a full disk (CI runs as root)",
            path.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
        Tmpfs {
            path: path.to_owned(),
        }
    }

    /// Writes a file until the file system is full; returns its path.
    fn fill(&self) -> PathBuf {
        let filler = self.path.join("filler");
        let mut file = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        loop {
            match file.write(&chunk) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
                Err(e) => panic!("filling the tmpfs: {e}"),
            }
        }
        filler
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// The sidecar's `/metrics` and `/-/ready` (status, body).
async fn observe(client: &reqwest::Client, sidecar: &Sidecar) -> Option<(String, (u16, String))> {
    let (_, metrics) = http_get(client, &sidecar.url("/metrics")).await?;
    let ready = http_get(client, &sidecar.url("/-/ready")).await?;
    Some((metrics, ready))
}

fn value(metrics: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    sample(metrics, name, labels)
        .unwrap_or_else(|| panic!("{name} {labels:?} exported:\n{metrics}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_episode_during_a_full_disk_is_delivered_when_space_frees_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let disk = Tmpfs::mount(&dir.path().join("disk"), "4m");
    let fake = FakePromql::start(drifting_models(&["a"], &[])).await;
    let hub = WebhookReceiver::start(&[("am", Behaviour::Accept)], None).await;
    let webhooks = format!(
        "  - {{name: am, format: alertmanager, url: '{}/am', send_resolved: true, min_backoff: 50ms, max_backoff: 200ms}}\n",
        hub.url
    );
    let config = SidecarConfig::fake_source_alerting(&fake.url, "{for: 1, resolve_after: 1}")
        .with_webhooks(&webhooks);
    let mut sidecar = Sidecar::start_as(
        "sidecar",
        dir.path(),
        &config,
        free_port(),
        &disk.path.join("data"),
    );
    let client = http_client();
    sidecar.wait_ready(&client).await;

    let filler = disk.fill();
    // Both detectors (psi, ks) of model a fire, then resolve, while the
    // disk is full: four notifications, held in memory.
    fake.answer_with(drifting_models(&["a"], &["a"]));
    let (metrics, ready) = wait_for(
        "two firing alerts held in memory",
        Duration::from_secs(30),
        || async {
            let (metrics, ready) = observe(&client, &sidecar).await?;
            (sample(&metrics, "model_monitor_webhook_notifications_held", &[])? >= 2.0)
                .then_some((metrics, ready))
        },
    )
    .await;
    assert_eq!(
        ready.0, 503,
        "not ready while the store cannot write: {ready:?}"
    );
    assert!(ready.1.contains("the store cannot write"), "{ready:?}");
    assert!(
        value(
            &metrics,
            "model_monitor_storage_errors_total",
            &[("operation", "write")]
        ) >= 1.0,
        "{metrics}"
    );
    fake.answer_with(drifting_models(&["a"], &[]));
    wait_for(
        "the episode resolved, four notifications held",
        Duration::from_secs(30),
        || async {
            let (metrics, _) = observe(&client, &sidecar).await?;
            let held = sample(&metrics, "model_monitor_webhook_notifications_held", &[])?;
            let firing = sample(&metrics, "model_monitor_alerts", &[("state", "firing")])?;
            (held >= 4.0 && firing == 0.0).then_some(())
        },
    )
    .await;
    assert!(
        hub.delivered("am").is_empty(),
        "nothing could be stored, so nothing was sent"
    );

    std::fs::remove_file(&filler).unwrap();
    hub.wait_until("the four notifications of the episode delivered", |hub| {
        hub.delivered("am").len() >= 4
    })
    .await;
    let delivered = hub.delivered("am");
    assert_eq!(delivered.len(), 4, "{delivered:?}");
    assert!(
        delivered.values().all(|n| *n == 1),
        "each delivered once: {delivered:?}"
    );
    let statuses: Vec<String> = hub
        .received("am")
        .iter()
        .map(|r| {
            serde_json::from_str::<Value>(&r.body).unwrap()["status"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| *s == "firing").count(),
        2,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| *s == "resolved").count(),
        2,
        "{statuses:?}"
    );
    let (metrics, _) = wait_for(
        "ready again, nothing held",
        Duration::from_secs(30),
        || async {
            let (metrics, ready) = observe(&client, &sidecar).await?;
            let held = sample(&metrics, "model_monitor_webhook_notifications_held", &[])?;
            (ready.0 == 200 && held == 0.0).then_some((metrics, ready))
        },
    )
    .await;
    assert_eq!(
        value(
            &metrics,
            "model_monitor_webhook_notifications_dropped_total",
            &[]
        ),
        0.0
    );
    assert!(
        sidecar.process.is_running(),
        "no restart:\n{}",
        sidecar.process.log_text()
    );
    let log = sidecar.process.log_text();
    assert!(log.contains("reopened the store"), "{log}");
}

/// The two broken files a store can be: one left headerless by a full disk
/// on the very first start (zeros where redb's header goes), and garbage.
const BROKEN_FILES: [(&str, &[u8]); 2] = [
    ("headerless", &[0u8; 8192]),
    ("garbage", b"this is not a redb file\n"),
];

fn sidecar_config(dir: &Path) -> (PathBuf, PathBuf) {
    let config = dir.join("sidecar.yml");
    std::fs::write(
        &config,
        "prometheus: {url: 'http://127.0.0.1:1'}\nmonitors:\n  - name: m\n    signals: {confidence: {histogram: h, detectors: [{type: psi}]}}\n",
    )
    .unwrap();
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    (config, data)
}

#[test]
fn a_corrupt_store_stops_the_start_naming_the_flag_and_the_runbook() {
    for (kind, bytes) in BROKEN_FILES {
        let dir = tempfile::tempdir().unwrap();
        let (config, data) = sidecar_config(dir.path());
        let file = data.join("outbox.redb");
        std::fs::write(&file, bytes).unwrap();
        let (code, _, stderr) = run_binary(&[
            "run".into(),
            format!("--config.file={}", config.display()),
            format!("--web.listen-address=127.0.0.1:{}", free_port()),
            format!("--storage.path={}", data.display()),
        ]);
        assert_eq!(code, 1, "{kind}: {stderr}");
        assert!(
            stderr.contains("--storage.quarantine-corrupt"),
            "{kind}: {stderr}"
        );
        assert!(
            stderr.contains("docs/runbooks.md#modelmonitorstorequarantined"),
            "{kind}: {stderr}"
        );
        assert_eq!(
            std::fs::read(&file).unwrap(),
            bytes,
            "{kind}: the file is left as it was"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_quarantine_flag_a_corrupt_store_is_moved_aside_and_the_sidecar_starts_empty() {
    let client = http_client();
    for (kind, bytes) in BROKEN_FILES {
        let dir = tempfile::tempdir().unwrap();
        let (config, data) = sidecar_config(dir.path());
        std::fs::write(data.join("outbox.redb"), bytes).unwrap();
        let port = free_port();
        let mut process = crate::support::process::Process::start(
            kind,
            &model_monitor_binary(),
            &[
                "run".into(),
                format!("--config.file={}", config.display()),
                format!("--web.listen-address=127.0.0.1:{port}"),
                format!("--storage.path={}", data.display()),
                "--storage.quarantine-corrupt".into(),
            ],
            dir.path(),
        );
        let metrics = wait_for(
            "the sidecar serving /metrics",
            Duration::from_secs(30),
            || async {
                http_get(&client, &format!("http://127.0.0.1:{port}/metrics"))
                    .await
                    .map(|(_, text)| text)
            },
        )
        .await;
        assert_eq!(
            value(&metrics, "model_monitor_storage_quarantined_files", &[]),
            1.0,
            "{kind}"
        );
        assert_eq!(
            value(
                &metrics,
                "model_monitor_storage_errors_total",
                &[("operation", "open")]
            ),
            1.0,
            "{kind}"
        );
        let aside: Vec<PathBuf> = std::fs::read_dir(&data)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("outbox.redb.corrupt-")
            })
            .collect();
        assert_eq!(aside.len(), 1, "{kind}: {aside:?}");
        assert_eq!(
            std::fs::read(&aside[0]).unwrap(),
            bytes,
            "{kind}: moved aside unchanged"
        );
        assert!(
            data.join("outbox.redb").is_file()
                && std::fs::read(data.join("outbox.redb")).unwrap() != bytes,
            "{kind}: a new, empty store"
        );
        assert!(process.is_running(), "{kind}: {}", process.log_text());
        let log = process.log_text();
        assert!(
            log.contains("the store file is corrupt: moved aside"),
            "{kind}: {log}"
        );
    }
}

/// A notification as the sidecar stores it.
fn notification(id: &str, attempts: u32) -> Notification {
    Notification {
        id: id.to_owned(),
        created_at: chrono::Utc::now() - chrono::Duration::days(20),
        body: "{}".to_owned(),
        attempts,
        next_attempt_at: None,
        last_error: Some("http 500".to_owned()),
        summary: format!("firing drift {id}"),
    }
}

/// The rows of `outbox list`: (state, receiver, id, attempts).
fn listed(stdout: &str) -> Vec<(String, String, String, String)> {
    stdout
        .lines()
        .skip(1)
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            let f = |i: usize| fields[i].to_owned();
            (f(0), f(1), f(2), f(4))
        })
        .collect()
}

#[test]
fn outbox_commands_list_replay_and_purge_a_stopped_sidecars_store() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let store = Store::open(&data).unwrap();
    let sequences = store
        .transaction(|txn| {
            Ok(vec![
                txn.enqueue("am", &notification("pending-1", 2))?,
                txn.enqueue("am", &notification("old-dead", 5))?,
                txn.enqueue("am", &notification("new-dead", 5))?,
                txn.enqueue("slack", &notification("slack-dead", 1))?,
            ])
        })
        .unwrap();
    let now = chrono::Utc::now();
    for (i, id, receiver, age) in [
        (1, "old-dead", "am", chrono::Duration::days(10)),
        (2, "new-dead", "am", chrono::Duration::hours(1)),
        (3, "slack-dead", "slack", chrono::Duration::hours(1)),
    ] {
        let letter = DeadLetter {
            notification: notification(id, 5),
            reason: "http 400: bad request".to_owned(),
            dead_at: now - age,
        };
        store.dead_letter(receiver, sequences[i], &letter).unwrap();
    }
    let outbox = |args: &[&str]| {
        let mut all = vec![
            "outbox".to_owned(),
            format!("--storage.path={}", data.display()),
        ];
        all.extend(args.iter().map(|a| a.to_string()));
        run_binary(&all)
    };

    // The store is open (locked) here, as in a running sidecar.
    let (code, _, stderr) = outbox(&["list"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("in use by a running model-monitor"),
        "{stderr}"
    );
    let (code, _, stderr) = outbox(&["replay", "--all"]);
    assert_eq!(code, 1, "{stderr}");
    drop(store);

    let row = |state: &str, receiver: &str, id: &str, attempts: &str| {
        (
            state.to_owned(),
            receiver.to_owned(),
            id.to_owned(),
            attempts.to_owned(),
        )
    };
    let (code, stdout, stderr) = outbox(&["list"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        listed(&stdout),
        vec![
            row("pending", "am", "pending-1", "2"),
            row("dead", "am", "old-dead", "5"),
            row("dead", "am", "new-dead", "5"),
            row("dead", "slack", "slack-dead", "5"),
        ],
        "{stdout}"
    );

    for (args, printed) in [
        (
            &["replay", "--id", "new-dead"][..],
            "replayed\tam\tnew-dead\n",
        ),
        (
            &["purge", "--older-than", "7d"][..],
            "purged\tam\told-dead\n",
        ),
        (
            &["replay", "--receiver", "slack"][..],
            "replayed\tslack\tslack-dead\n",
        ),
    ] {
        let (code, stdout, stderr) = outbox(args);
        assert_eq!((code, stdout.as_str()), (0, printed), "{args:?}: {stderr}");
    }
    let (code, _, stderr) = outbox(&["replay", "--all"]);
    assert_eq!(code, 1, "nothing left to replay: {stderr}");
    assert!(stderr.contains("no dead letter matched"), "{stderr}");
    let (code, _, stderr) = outbox(&["replay"]);
    assert_eq!(code, 2, "replay needs --all, --receiver or --id: {stderr}");

    // Replayed letters are pending again, same webhook-id, no attempts yet,
    // after the receiver's other notifications.
    let (_, stdout, _) = outbox(&["list"]);
    assert_eq!(
        listed(&stdout),
        vec![
            row("pending", "am", "pending-1", "2"),
            row("pending", "am", "new-dead", "0"),
            row("pending", "slack", "slack-dead", "0"),
        ],
        "{stdout}"
    );
    let store = Store::open(&data).unwrap();
    let replayed = &store.pending("am").unwrap()[1].1;
    assert!(
        replayed.created_at > now - chrono::Duration::minutes(1),
        "max_age counts from the replay"
    );
    assert_eq!(replayed.last_error, None);
}
