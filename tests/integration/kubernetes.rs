//! The Kubernetes manifests of `deploy/kubernetes/` as a whole: the
//! kustomization lists every file and each parses; model-monitor runs as a
//! two-replica StatefulSet spread across nodes, each replica with its own
//! store, under a PodDisruptionBudget; the model server's Deployment has no
//! model-monitor container; and the Services and ServiceMonitors connect
//! the replicas to Prometheus as job `model-monitor`. The schemas
//! themselves are checked by `scripts/validate-kubernetes.sh`
//! (`alerting_stack::the_kubernetes_manifests_validate_offline_and_carry_a_valid_config`).

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::Deserialize;
use serde_yaml_ng::Value as Yaml;

const DIR: &str = "deploy/kubernetes";

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(DIR)
}

/// Every YAML document of one file of the directory.
fn documents(file: &str) -> Vec<Yaml> {
    let path = dir().join(file);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {DIR}/{file}: {e}"));
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|document| {
            Yaml::deserialize(document).unwrap_or_else(|e| panic!("parsing {DIR}/{file}: {e}"))
        })
        .filter(|document| !document.is_null())
        .collect()
}

/// Every resource the kustomization lists, with its file.
fn resources() -> Vec<(String, Yaml)> {
    let kustomization = documents("kustomization.yaml").remove(0);
    kustomization["resources"]
        .as_sequence()
        .expect("the kustomization has resources")
        .iter()
        .map(|file| file.as_str().expect("a resource is a file name").to_owned())
        .flat_map(|file| {
            documents(&file)
                .into_iter()
                .map(move |document| (file.clone(), document))
        })
        .collect()
}

/// The one resource of this kind and name.
fn resource(kind: &str, name: &str) -> Yaml {
    let found: Vec<Yaml> = resources()
        .into_iter()
        .map(|(_, document)| document)
        .filter(|d| {
            d["kind"].as_str() == Some(kind) && d["metadata"]["name"].as_str() == Some(name)
        })
        .collect();
    assert_eq!(found.len(), 1, "one {kind} {name} in {DIR}");
    found.into_iter().next().unwrap()
}

/// Whether a `matchLabels` selector selects these labels.
fn selects(selector: &Yaml, labels: &Yaml) -> bool {
    let selector = selector.as_mapping().expect("a selector is a mapping");
    !selector.is_empty()
        && selector
            .iter()
            .all(|(key, value)| labels.get(key) == Some(value))
}

fn container<'a>(workload: &'a Yaml, name: &str) -> Option<&'a Yaml> {
    workload["spec"]["template"]["spec"]["containers"]
        .as_sequence()
        .expect("containers")
        .iter()
        .find(|c| c["name"].as_str() == Some(name))
}

#[test]
fn the_kustomization_lists_every_manifest_and_each_parses_as_resources() {
    let on_disk: BTreeSet<String> = std::fs::read_dir(dir())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".yaml") && name != "kustomization.yaml")
        .collect();
    let kustomization = documents("kustomization.yaml").remove(0);
    let listed: BTreeSet<String> = kustomization["resources"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|file| file.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        listed, on_disk,
        "kustomization.yaml lists the files of {DIR}"
    );
    let resources = resources();
    for (file, document) in &resources {
        for key in ["apiVersion", "kind"] {
            assert!(document[key].as_str().is_some(), "{file}: {key}");
        }
        assert!(
            document["metadata"]["name"].as_str().is_some()
                && document["metadata"]["namespace"].as_str() == Some("ml"),
            "{file}: {} has a name and namespace ml",
            document["kind"].as_str().unwrap()
        );
    }
    let kinds: BTreeSet<&str> = resources
        .iter()
        .map(|(_, d)| d["kind"].as_str().unwrap())
        .collect();
    for kind in [
        "ConfigMap",
        "Deployment",
        "StatefulSet",
        "PodDisruptionBudget",
        "Service",
        "ServiceMonitor",
        "PrometheusRule",
    ] {
        assert!(kinds.contains(kind), "a {kind} among {kinds:?}");
    }
}

#[test]
fn model_monitor_runs_as_two_replicas_on_different_nodes_each_with_its_own_store() {
    let statefulset = resource("StatefulSet", "model-monitor");
    let spec = &statefulset["spec"];
    assert_eq!(spec["replicas"].as_u64(), Some(2), "two replicas");
    let pod_labels = &spec["template"]["metadata"]["labels"];
    assert!(selects(&spec["selector"]["matchLabels"], pod_labels));

    // Preferred anti-affinity by hostname, selecting its own pods.
    let preferred = spec["template"]["spec"]["affinity"]["podAntiAffinity"]
        ["preferredDuringSchedulingIgnoredDuringExecution"]
        .as_sequence()
        .expect("a preferred pod anti-affinity");
    assert!(
        preferred.iter().any(|term| {
            let term = &term["podAffinityTerm"];
            term["topologyKey"].as_str() == Some("kubernetes.io/hostname")
                && selects(&term["labelSelector"]["matchLabels"], pod_labels)
        }),
        "the replicas prefer different nodes: {preferred:?}"
    );

    // Each replica's --storage.path is a volume claim template: its own
    // store, kept across rescheduling.
    let monitor = container(&statefulset, "model-monitor").expect("the model-monitor container");
    let storage_path = monitor["args"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(Yaml::as_str)
        .find_map(|arg| arg.strip_prefix("--storage.path="))
        .expect("--storage.path");
    let mount = monitor["volumeMounts"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|m| m["mountPath"].as_str() == Some(storage_path))
        .expect("--storage.path is a mounted volume");
    let claims: Vec<&str> = spec["volumeClaimTemplates"]
        .as_sequence()
        .expect("volume claim templates")
        .iter()
        .filter_map(|t| t["metadata"]["name"].as_str())
        .collect();
    assert!(
        claims.contains(&mount["name"].as_str().unwrap()),
        "the store {:?} is a claim template, one per replica: {claims:?}",
        mount["name"]
    );
    let pod_volumes: Vec<&Yaml> = spec["template"]["spec"]["volumes"]
        .as_sequence()
        .unwrap()
        .iter()
        .collect();
    assert!(
        pod_volumes.iter().all(|v| v["name"] != mount["name"]),
        "the store is not a pod volume shared by a template (an emptyDir): {pod_volumes:?}"
    );

    // Hardened and probed as the sidecar was.
    let pod_security = &spec["template"]["spec"]["securityContext"];
    assert_eq!(pod_security["runAsNonRoot"].as_bool(), Some(true));
    assert_eq!(pod_security["runAsUser"].as_u64(), Some(65532));
    let security = &monitor["securityContext"];
    assert_eq!(security["readOnlyRootFilesystem"].as_bool(), Some(true));
    assert_eq!(security["allowPrivilegeEscalation"].as_bool(), Some(false));
    assert_eq!(security["capabilities"]["drop"][0].as_str(), Some("ALL"));
    assert_eq!(
        monitor["livenessProbe"]["httpGet"]["path"].as_str(),
        Some("/-/healthy")
    );
    assert_eq!(
        monitor["readinessProbe"]["httpGet"]["path"].as_str(),
        Some("/-/ready")
    );
    assert!(
        monitor["resources"]["requests"]["memory"]
            .as_str()
            .is_some()
    );
    assert!(monitor["resources"]["limits"]["memory"].as_str().is_some());

    // The governing Service exists and selects these pods.
    let service_name = spec["serviceName"].as_str().expect("serviceName");
    let service = resource("Service", service_name);
    assert!(selects(&service["spec"]["selector"], pod_labels));
}

#[test]
fn a_disruption_takes_at_most_one_model_monitor_replica() {
    let statefulset = resource("StatefulSet", "model-monitor");
    let pod_labels = &statefulset["spec"]["template"]["metadata"]["labels"];
    let budget = resource("PodDisruptionBudget", "model-monitor");
    assert!(
        selects(&budget["spec"]["selector"]["matchLabels"], pod_labels),
        "the budget selects the model-monitor pods"
    );
    let replicas = statefulset["spec"]["replicas"].as_u64().unwrap();
    let max_unavailable = budget["spec"]["maxUnavailable"].as_u64();
    let min_available = budget["spec"]["minAvailable"].as_u64();
    assert!(
        max_unavailable == Some(1) || min_available == Some(replicas - 1),
        "one replica at a time: maxUnavailable {max_unavailable:?}, minAvailable {min_available:?}"
    );
}

#[test]
fn the_model_server_runs_without_a_model_monitor_container_and_both_are_scraped() {
    let model_server = resource("Deployment", "model-server");
    assert!(
        container(&model_server, "model-monitor").is_none(),
        "no model-monitor container in the model server's pods"
    );
    for c in model_server["spec"]["template"]["spec"]["containers"]
        .as_sequence()
        .unwrap()
    {
        assert!(
            !c["image"].as_str().unwrap().starts_with("model-monitor:"),
            "no model-monitor image in the model server's pods: {c:?}"
        );
    }
    let statefulset = resource("StatefulSet", "model-monitor");
    // Each Service selects its own workload's pods only, and each
    // ServiceMonitor its own Service: job="model-monitor" is the replicas,
    // job="model-server" the model server (the ConfigMap's selector).
    for (job, workload) in [
        ("model-monitor", &statefulset),
        ("model-server", &model_server),
    ] {
        let service = resource("Service", job);
        let labels = &workload["spec"]["template"]["metadata"]["labels"];
        assert!(
            selects(&service["spec"]["selector"], labels),
            "Service {job}"
        );
        let other = if job == "model-monitor" {
            &model_server
        } else {
            &statefulset
        };
        assert!(
            !selects(
                &service["spec"]["selector"],
                &other["spec"]["template"]["metadata"]["labels"]
            ),
            "Service {job} selects only its own pods"
        );
        let monitor = resource("ServiceMonitor", job);
        assert!(
            selects(
                &monitor["spec"]["selector"]["matchLabels"],
                &service["metadata"]["labels"]
            ),
            "ServiceMonitor {job} selects Service {job}"
        );
        assert!(
            monitor["spec"].get("jobLabel").is_none(),
            "the job is named after the Service"
        );
    }
    let config = resource("ConfigMap", "model-monitor-config");
    let text = config["data"]["model-monitor.yml"].as_str().unwrap();
    assert!(
        text.contains(r#"job="model-server""#),
        "model-monitor queries the model server's own series"
    );
}
