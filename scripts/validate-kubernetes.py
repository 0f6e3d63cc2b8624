#!/usr/bin/env python3
"""Validates deploy/kubernetes/ offline.

Core kinds (ConfigMap, Deployment, StatefulSet, PodDisruptionBudget,
Service) are validated strictly (unknown fields are errors) against the
Kubernetes OpenAPI schemas bundled in the kubernetes-validate package. The
Prometheus Operator kinds (ServiceMonitor, PrometheusRule) have no bundled
schema: they are checked structurally against the subset of their CRD
schemas written below, again rejecting unknown fields, plus
cross-references: the Services and PodDisruptionBudgets select a workload's
(Deployment's or StatefulSet's) pods, the ServiceMonitors select a Service
and name one of its ports, the ConfigMaps the workloads mount exist, every
volume mount names a volume or a claim template, a StatefulSet's
serviceName is a Service, and the kustomization lists every file. The model-monitor config inside the ConfigMap is checked by the test
that runs this script, with `model-monitor check-config`.

Run it with scripts/validate-kubernetes.sh, which creates the virtual
environment. Prints one line per problem and exits 1 if there is any.
"""
import glob
import os
import sys

import jsonschema
import kubernetes_validate
import yaml

KUBERNETES_VERSION = "1.30.0"

STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
METADATA = {
    "type": "object",
    "required": ["name", "namespace"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string"},
        "namespace": {"type": "string"},
        "labels": STRING_MAP,
        "annotations": STRING_MAP,
    },
}
# Subsets of monitoring.coreos.com/v1 (prometheus-operator's CRDs).
SERVICE_MONITOR = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": METADATA,
        "spec": {
            "type": "object",
            "required": ["selector", "endpoints"],
            "additionalProperties": False,
            "properties": {
                "jobLabel": {"type": "string"},
                "selector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"matchLabels": STRING_MAP},
                },
                "namespaceSelector": {"type": "object"},
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["port"],
                        "additionalProperties": False,
                        "properties": {
                            "port": {"type": "string"},
                            "path": {"type": "string", "pattern": "^/"},
                            "interval": {"type": "string", "pattern": "^([0-9]+(ms|s|m|h))+$"},
                            "scrapeTimeout": {"type": "string", "pattern": "^([0-9]+(ms|s|m|h))+$"},
                            "scheme": {"enum": ["http", "https"]},
                        },
                    },
                },
            },
        },
    },
}
DURATION = {"type": "string", "pattern": "^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"}
RULE = {
    "type": "object",
    "required": ["expr"],
    "additionalProperties": False,
    "oneOf": [{"required": ["alert"]}, {"required": ["record"]}],
    "properties": {
        "alert": {"type": "string"},
        "record": {"type": "string"},
        "expr": {"type": "string", "minLength": 1},
        "for": DURATION,
        "keep_firing_for": DURATION,
        "labels": STRING_MAP,
        "annotations": STRING_MAP,
    },
}
PROMETHEUS_RULE = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "PrometheusRule"},
        "metadata": METADATA,
        "spec": {
            "type": "object",
            "required": ["groups"],
            "additionalProperties": False,
            "properties": {
                "groups": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name", "rules"],
                        "additionalProperties": False,
                        "properties": {
                            "name": {"type": "string"},
                            "interval": DURATION,
                            "rules": {"type": "array", "items": RULE},
                        },
                    },
                }
            },
        },
    },
}
CRDS = {"ServiceMonitor": SERVICE_MONITOR, "PrometheusRule": PROMETHEUS_RULE}


def main(directory):
    problems = []
    documents = []  # (file, document)
    files = sorted(glob.glob(os.path.join(directory, "*.yaml")))
    for path in files:
        with open(path) as handle:
            for document in yaml.safe_load_all(handle):
                if document is not None:
                    documents.append((os.path.basename(path), document))
    by_kind = {}
    for name, document in documents:
        kind = document.get("kind")
        by_kind.setdefault(kind, []).append(document)
        where = f"{name}: {kind} {document.get('metadata', {}).get('name')}"
        if kind == "Kustomization":
            listed = set(document.get("resources", []))
            others = {os.path.basename(f) for f in files} - {name}
            if listed != others:
                problems.append(f"{where}: resources {sorted(listed)} != files {sorted(others)}")
        elif kind in CRDS:
            validator = jsonschema.Draft7Validator(CRDS[kind])
            for error in validator.iter_errors(document):
                path = "/".join(str(p) for p in error.absolute_path)
                problems.append(f"{where}: {path}: {error.message}")
        else:
            try:
                kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
            except kubernetes_validate.ValidationError as error:
                path = "/".join(str(p) for p in error.path)
                problems.append(f"{where}: {path}: {error.message}")
            except kubernetes_validate.SchemaNotFoundError as error:
                problems.append(f"{where}: {error}")
    # Cross-references.
    workloads = by_kind.get("Deployment", []) + by_kind.get("StatefulSet", [])
    pod_labels = [d["spec"]["template"]["metadata"]["labels"] for d in workloads]
    container_ports = {
        p["name"]
        for d in workloads
        for c in d["spec"]["template"]["spec"]["containers"]
        for p in c.get("ports", [])
    }
    config_maps = {c["metadata"]["name"] for c in by_kind.get("ConfigMap", [])}
    for d in workloads:
        where = f"{d['kind']} {d['metadata']['name']}"
        pod = d["spec"]["template"]["spec"]
        volumes = {v["name"] for v in pod.get("volumes", [])}
        volumes |= {t["metadata"]["name"] for t in d["spec"].get("volumeClaimTemplates", [])}
        for volume in pod.get("volumes", []):
            if "configMap" in volume and volume["configMap"]["name"] not in config_maps:
                problems.append(f"{where} mounts missing ConfigMap {volume['configMap']['name']}")
        for container in pod["containers"]:
            for mount in container.get("volumeMounts", []):
                if mount["name"] not in volumes:
                    problems.append(f"{where} container {container['name']} mounts unknown volume {mount['name']}")
        selector = d["spec"]["selector"]["matchLabels"]
        labels = d["spec"]["template"]["metadata"]["labels"]
        if any(labels.get(k) != v for k, v in selector.items()):
            problems.append(f"{where}: selector {selector} does not match its pod labels {labels}")
    services = by_kind.get("Service", [])
    for s in services:
        selector = s["spec"]["selector"]
        if not any(all(labels.get(k) == v for k, v in selector.items()) for labels in pod_labels):
            problems.append(f"Service {s['metadata']['name']} selects no workload's pods")
        for port in s["spec"]["ports"]:
            if port.get("targetPort") not in container_ports:
                problems.append(f"Service {s['metadata']['name']} targets unknown port {port.get('targetPort')}")
    service_names = {s["metadata"]["name"] for s in services}
    for d in by_kind.get("StatefulSet", []):
        if d["spec"].get("serviceName") not in service_names:
            problems.append(f"StatefulSet {d['metadata']['name']}: serviceName {d['spec'].get('serviceName')} is not a Service")
    for b in by_kind.get("PodDisruptionBudget", []):
        wanted = b["spec"]["selector"]["matchLabels"]
        if not any(all(labels.get(k) == v for k, v in wanted.items()) for labels in pod_labels):
            problems.append(f"PodDisruptionBudget {b['metadata']['name']} selects no workload's pods")
    for m in by_kind.get("ServiceMonitor", []):
        wanted = m["spec"]["selector"]["matchLabels"]
        matched = [s for s in services if all(s["metadata"].get("labels", {}).get(k) == v for k, v in wanted.items())]
        if not matched:
            problems.append(f"ServiceMonitor {m['metadata']['name']} selects no Service")
        ports = {p["name"] for s in matched for p in s["spec"]["ports"]}
        for endpoint in m["spec"]["endpoints"]:
            if endpoint["port"] not in ports:
                problems.append(f"ServiceMonitor {m['metadata']['name']} names port {endpoint['port']}, not one of {sorted(ports)}")
    for kind in ["ConfigMap", "Deployment", "StatefulSet", "PodDisruptionBudget", "Service", "ServiceMonitor", "PrometheusRule"]:
        if kind not in by_kind:
            problems.append(f"no {kind} in {directory}")
    for problem in problems:
        print(problem)
    print(f"{len(documents)} document(s) in {len(files)} file(s), {len(problems)} problem(s)", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "deploy/kubernetes"))
