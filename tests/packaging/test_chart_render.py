"""The Helm chart renders, lints and validates, and its Deployment runs the operator safely."""

from __future__ import annotations

import copy
import json
import tarfile
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import SchemaNotFoundError, all_versions

# Kinds whose CRDs kubernetes-validate cannot know; the tests below check them structurally.
MONITORING_KINDS = {"ServiceMonitor", "PrometheusRule"}


def _newest_kubernetes_versions(count: int) -> list[str]:
    unique = set(all_versions())
    return sorted(unique, key=lambda v: tuple(int(part) for part in v.split(".")))[-count:]


NEWEST_KUBERNETES = _newest_kubernetes_versions(2)


def of_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [obj for obj in objects if obj["kind"] == kind]


def only(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = of_kind(objects, kind)
    assert len(found) == 1, f"expected one {kind}, got {[o['metadata']['name'] for o in found]}"
    return found[0]


def pod_spec(objects: list[dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = only(objects, "Deployment")["spec"]["template"]["spec"]
    return spec


def operator_container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    containers = pod_spec(objects)["containers"]
    assert [c["name"] for c in containers] == ["operator"]
    container: dict[str, Any] = containers[0]
    return container


def operator_args(objects: list[dict[str, Any]]) -> list[str]:
    return [str(arg) for arg in operator_container(objects)["args"]]


def flag_values(args: list[str], flag: str) -> list[str]:
    """Every value given to `flag` (flags take their value as the next argument)."""
    return [args[i + 1] for i, arg in enumerate(args) if arg == flag]


# The volume types Pod Security "restricted" allows.
RESTRICTED_VOLUME_TYPES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}


def restricted_violations(spec: dict[str, Any]) -> list[str]:
    """What in a pod spec breaks the Pod Security "restricted" profile (empty: it passes)."""
    problems: list[str] = []
    pod_ctx = spec.get("securityContext", {})
    for host_field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(host_field):
            problems.append(f"{host_field} is true")
    for volume in spec.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUME_TYPES:
            problems.append(f"volume {volume['name']} is of type {sorted(kinds)}")
    containers = spec.get("initContainers", []) + spec.get("containers", [])
    for container in containers:
        name, ctx = container["name"], container.get("securityContext", {})
        if ctx.get("privileged"):
            problems.append(f"{name}: privileged")
        if ctx.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}: allowPrivilegeEscalation is not false")
        if ctx.get("runAsNonRoot", pod_ctx.get("runAsNonRoot")) is not True:
            problems.append(f"{name}: runAsNonRoot is not true")
        if ctx.get("runAsUser", pod_ctx.get("runAsUser")) == 0:
            problems.append(f"{name}: runAsUser is 0")
        seccomp = ctx.get("seccompProfile", pod_ctx.get("seccompProfile", {})).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{name}: seccompProfile is {seccomp!r}")
        capabilities = ctx.get("capabilities", {})
        if "ALL" not in capabilities.get("drop", []):
            problems.append(f"{name}: capabilities do not drop ALL")
        if set(capabilities.get("add", [])) - {"NET_BIND_SERVICE"}:
            problems.append(f"{name}: adds capabilities {capabilities['add']}")
        if any(port.get("hostPort") for port in container.get("ports", [])):
            problems.append(f"{name}: uses a hostPort")
    return problems


def test_chart_and_app_versions_follow_the_python_package(
    chart_dir: Path, package_version: str
) -> None:
    chart_meta = yaml.safe_load((chart_dir / "Chart.yaml").read_text())
    assert chart_meta["apiVersion"] == "v2"
    assert chart_meta["appVersion"] == package_version
    assert chart_meta["version"] == package_version


def test_lint_reports_no_errors(chart_dir: Path, variants: dict[str, Any], variant: str) -> None:
    report = helm.lint(str(chart_dir), variants[variant], strict=True)
    assert report["errors"] == []


@pytest.mark.parametrize("kube_version", NEWEST_KUBERNETES)
def test_every_builtin_object_is_valid_kubernetes(
    render: Any, variants: dict[str, Any], variant: str, kube_version: str
) -> None:
    for obj in render(variants[variant]):
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        try:
            kubernetes_validate.validate(obj, kube_version, strict=True)
        except SchemaNotFoundError:
            assert obj["kind"] in MONITORING_KINDS, f"no schema for {where}"
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{where} is invalid for Kubernetes {kube_version}: {exc.message}")


def test_validation_catches_an_unknown_field(render: Any) -> None:
    """The validation above is strict: a misspelt field in the Deployment fails it."""
    deployment = copy.deepcopy(only(render({}), "Deployment"))
    deployment["spec"]["template"]["spec"]["containers"][0]["readOnlyRootFS"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, NEWEST_KUBERNETES[-1], strict=True)


def test_objects_are_validated_against_two_kubernetes_releases() -> None:
    assert len(set(NEWEST_KUBERNETES)) == 2


def test_pod_meets_pod_security_restricted(
    render: Any, variants: dict[str, Any], variant: str
) -> None:
    objects = render(variants[variant])
    assert restricted_violations(pod_spec(objects)) == []
    container = operator_container(objects)
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert isinstance(container["securityContext"]["runAsUser"], int)
    assert container["securityContext"]["runAsUser"] != 0


def test_restricted_check_flags_a_privileged_pod(render: Any) -> None:
    spec = copy.deepcopy(pod_spec(render({})))
    spec["hostNetwork"] = True
    spec["volumes"].append({"name": "docker", "hostPath": {"path": "/var/run/docker.sock"}})
    spec["containers"][0]["securityContext"] = {"privileged": True}
    spec["securityContext"] = {}
    problems = restricted_violations(spec)
    assert "hostNetwork is true" in problems
    assert "volume docker is of type ['hostPath']" in problems
    assert "operator: privileged" in problems
    assert "operator: runAsNonRoot is not true" in problems
    assert "operator: capabilities do not drop ALL" in problems


def test_only_tmp_is_writable(render: Any, variants: dict[str, Any], variant: str) -> None:
    objects = render(variants[variant])
    volumes = pod_spec(objects)["volumes"]
    assert [(v["name"], set(v) - {"name"}) for v in volumes] == [("tmp", {"emptyDir"})]
    mounts = operator_container(objects)["volumeMounts"]
    assert [(m["name"], m["mountPath"]) for m in mounts] == [("tmp", "/tmp")]


def test_probes_hit_the_kopf_liveness_endpoint(
    render: Any, variants: dict[str, Any], variant: str
) -> None:
    objects = render(variants[variant])
    container = operator_container(objects)
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    liveness_url = flag_values(operator_args(objects), "--liveness")
    assert liveness_url == [f"http://0.0.0.0:{ports['health']}/healthz"]
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "health"}


_COMMON_TAIL = ["--liveness", "http://0.0.0.0:8080/healthz", "--metrics-port"]
_ALONE = ["--standalone", "--no-leader-election"]
_ELECTED = [
    "--standalone",
    "--leader-election",
    "--leader-election-namespace",
    "kubesteps-system",
    "--leader-election-lease-name",
]
# The complete command line of every variant in conftest.VARIANTS, as the operator sees it.
EXPECTED_ARGS = {
    "defaults": ["--all-namespaces", *_ALONE, *_COMMON_TAIL, "9090", "--log-format", "json"],
    "namespaced": [
        "--namespace",
        "team-a",
        "--namespace",
        "team-b",
        *_ALONE,
        *_COMMON_TAIL,
        "9090",
        "--log-format",
        "json",
    ],
    "ha": [
        "--all-namespaces",
        *_ELECTED,
        "kubesteps-operator",
        *_COMMON_TAIL,
        "9090",
        "--log-format",
        "json",
    ],
    "monitoring": [
        "--all-namespaces",
        *_ALONE,
        *_COMMON_TAIL,
        "9090",
        "--per-object-metrics",
        "--log-format",
        "json",
    ],
    "custom-image": ["--all-namespaces", *_ALONE, *_COMMON_TAIL, "9090", "--log-format", "json"],
    "approval-policy": [
        "--namespace",
        "releases",
        *_ALONE,
        *_COMMON_TAIL,
        "9090",
        "--log-format",
        "json",
    ],
    "namespaced-ha-extra-rules": [
        "--namespace",
        "apps",
        *_ELECTED,
        "kubesteps-apps",
        *_COMMON_TAIL,
        "0",
        "--allow-cross-namespace",
        "--log-format",
        "text",
    ],
}


def test_operator_command_line(render: Any, variants: dict[str, Any], variant: str) -> None:
    assert operator_args(render(variants[variant])) == EXPECTED_ARGS[variant]


def test_every_flag_is_one_the_operator_command_accepts(
    render: Any, variants: dict[str, Any], variant: str
) -> None:
    from kubesteps.cli import operator

    accepted = {name for param in operator.params for name in (*param.opts, *param.secondary_opts)}
    flags = {arg for arg in operator_args(render(variants[variant])) if arg.startswith("--")}
    assert flags <= accepted, f"not options of `kubesteps operator`: {flags - accepted}"


def test_steps_stay_in_their_namespace_unless_the_values_allow_otherwise(render: Any) -> None:
    assert "--allow-cross-namespace" not in operator_args(render({}))
    allowed = operator_args(render({"allowCrossNamespace": True}))
    assert allowed.count("--allow-cross-namespace") == 1


def test_defaults_watch_all_namespaces_alone(render: Any) -> None:
    objects = render({})
    args = operator_args(objects)
    assert "--all-namespaces" in args
    assert flag_values(args, "--namespace") == []
    assert "--standalone" in args
    assert "--no-leader-election" in args
    assert "--leader-election" not in args
    assert flag_values(args, "--metrics-port") == ["9090"]
    assert flag_values(args, "--log-format") == ["json"]
    deployment = only(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}


def test_namespaced_install_passes_each_namespace(render: Any, variants: dict[str, Any]) -> None:
    args = operator_args(render(variants["namespaced"]))
    assert flag_values(args, "--namespace") == ["team-a", "team-b"]
    assert "--all-namespaces" not in args


def test_ha_install_elects_a_leader_in_the_release_namespace(
    render: Any, variants: dict[str, Any], release_namespace: str
) -> None:
    objects = render(variants["ha"])
    args = operator_args(objects)
    assert "--leader-election" in args
    assert "--no-leader-election" not in args
    assert flag_values(args, "--leader-election-namespace") == [release_namespace]
    assert flag_values(args, "--leader-election-lease-name") == ["kubesteps-operator"]
    # The leader runs kopf without peering; the Lease is the only coordination.
    assert "--standalone" in args
    deployment = only(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"


def test_ha_install_has_a_disruption_budget_for_the_operator_pods(
    render: Any, variants: dict[str, Any]
) -> None:
    objects = render(variants["ha"])
    budget = only(objects, "PodDisruptionBudget")
    assert budget["spec"]["minAvailable"] == 2
    pod_labels = only(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert budget["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()


def test_ha_replicas_prefer_different_nodes(render: Any, variants: dict[str, Any]) -> None:
    objects = render(variants["ha"])
    [term] = pod_spec(objects)["affinity"]["podAntiAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"
    ]
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    pod_labels = only(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert term["podAffinityTerm"]["labelSelector"]["matchLabels"].items() <= pod_labels.items()


def test_a_single_replica_or_own_affinity_gets_no_default_spread(render: Any) -> None:
    assert "affinity" not in pod_spec(render({}))
    own = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {"key": "pool", "operator": "In", "values": ["ops"]},
                        ]
                    }
                ],
            }
        }
    }
    ha = {"replicaCount": 2, "leaderElection": {"enabled": True}, "affinity": own}
    assert pod_spec(render(ha))["affinity"] == own


def test_pods_know_their_name_and_namespace_and_get_extra_env(
    render: Any, variants: dict[str, Any]
) -> None:
    env = operator_container(render(variants["custom-image"]))["env"]
    by_name = {var["name"]: var for var in env}
    assert by_name["POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert by_name["POD_NAMESPACE"]["valueFrom"] == {
        "fieldRef": {"fieldPath": "metadata.namespace"}
    }
    assert by_name["OTEL_EXPORTER_OTLP_ENDPOINT"]["value"] == "http://otel-collector:4317"
    assert by_name["OTEL_SERVICE_NAME"]["value"] == "kubesteps"


def test_custom_image_pull_secret_and_scheduling_reach_the_pod(
    render: Any, variants: dict[str, Any]
) -> None:
    objects = render(variants["custom-image"])
    spec = pod_spec(objects)
    assert operator_container(objects)["image"] == (
        "registry.example.com/platform/kubesteps:0.1.0-rc.1"
    )
    assert spec["imagePullSecrets"] == [{"name": "registry-credentials"}]
    assert spec["priorityClassName"] == "system-cluster-critical"
    assert spec["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert spec["tolerations"] == [{"key": "dedicated", "operator": "Equal", "value": "ops"}]
    template_meta = only(objects, "Deployment")["spec"]["template"]["metadata"]
    assert template_meta["annotations"] == {"example.com/team": "platform"}
    assert template_meta["labels"]["team"] == "platform"


def test_image_defaults_to_the_app_version(render: Any, package_version: str) -> None:
    assert operator_container(render({}))["image"] == f"kubesteps:{package_version}"


def test_image_digest_wins_over_the_tag(render: Any) -> None:
    digest = "sha256:" + "ab" * 32
    image = operator_container(render({"image": {"tag": "ignored", "digest": digest}}))["image"]
    assert image == f"kubesteps@{digest}"


def test_metrics_off_removes_the_port_and_the_service(
    render: Any, variants: dict[str, Any]
) -> None:
    objects = render(variants["namespaced-ha-extra-rules"])
    assert flag_values(operator_args(objects), "--metrics-port") == ["0"]
    assert flag_values(operator_args(objects), "--log-format") == ["text"]
    assert [p["name"] for p in operator_container(objects)["ports"]] == ["health"]
    assert of_kind(objects, "Service") == []


def test_service_monitor_scrapes_the_metrics_service(
    render: Any, variants: dict[str, Any], release_namespace: str
) -> None:
    objects = render(variants["monitoring"])
    service = only(objects, "Service")
    monitor = only(objects, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    selected = monitor["spec"]["selector"]["matchLabels"]
    assert selected.items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [release_namespace]}
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    assert endpoint["port"] in {port["name"] for port in service["spec"]["ports"]}
    metrics_port = next(p for p in operator_container(objects)["ports"] if p["name"] == "metrics")
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"
    assert service["spec"]["ports"][0]["port"] == metrics_port["containerPort"] == 9090


def test_prometheus_rule_carries_the_chart_rules_file(
    render: Any, variants: dict[str, Any], chart_dir: Path
) -> None:
    rule = only(render(variants["monitoring"]), "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    rules_file = yaml.safe_load((chart_dir / "files" / "prometheus-rules.yaml").read_text())
    assert rule["spec"] == rules_file
    assert isinstance(rule["spec"]["groups"], list)
    for group in rule["spec"]["groups"]:
        assert isinstance(group["name"], str)
        assert isinstance(group["rules"], list)


def test_dashboard_configmap_is_picked_up_by_the_grafana_sidecar(
    render: Any, variants: dict[str, Any], chart_dir: Path
) -> None:
    configmap = only(render(variants["monitoring"]), "ConfigMap")
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert configmap["metadata"]["namespace"] == "monitoring"
    dashboard = json.loads((chart_dir / "files" / "grafana-dashboard.json").read_text())
    assert {key: json.loads(text) for key, text in configmap["data"].items()} == {
        "kubesteps.json": dashboard
    }


def test_monitoring_objects_are_off_by_default(render: Any) -> None:
    kinds = {obj["kind"] for obj in render({})}
    optional = {"ServiceMonitor", "PrometheusRule", "ConfigMap", "PodDisruptionBudget"}
    assert kinds.isdisjoint(optional)


def test_notes_explain_how_to_run_and_wait_for_a_pipeline(render_files: Any) -> None:
    notes = render_files({})["kubesteps/templates/NOTES.txt"]
    assert "kubectl apply" in notes
    assert "kubectl wait" in notes
    assert "--for=condition=Ready pipeline/" in notes


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"replicaCount": 0}, "at '/replicaCount': minimum: got 0, want 1"),
        ({"replicas": 3}, "additional properties 'replicas' not allowed"),
        ({"logFormat": "xml"}, "at '/logFormat': value must be one of 'text', 'json'"),
        ({"allowCrossNamespace": "yes"}, "at '/allowCrossNamespace': got string, want boolean"),
        ({"watchNamespaces": ["Team_A"]}, "at '/watchNamespaces/0': 'Team_A' does not match"),
        ({"metrics": {"port": 70000}}, "at '/metrics/port': maximum"),
        ({"image": {"pullPolicy": "Sometimes"}}, "at '/image/pullPolicy': value must be one of"),
        ({"imagePullSecrets": [{"name": "regcred"}]}, "at '/imagePullSecrets/0'"),
        (
            {"rbac": {"extraRules": [{"apiGroups": ["apps"], "resources": ["deployments"]}]}},
            "at '/rbac/extraRules/0': missing property 'verbs'",
        ),
        (
            {"replicaCount": 2},
            "replicaCount is 2 but leaderElection.enabled is false: more than one replica needs "
            "leader election",
        ),
        (
            {"podDisruptionBudget": {"enabled": True}},
            "podDisruptionBudget.enabled needs replicaCount > 1",
        ),
        (
            {
                "replicaCount": 2,
                "leaderElection": {"enabled": True},
                "podDisruptionBudget": {"enabled": True, "minAvailable": 2},
            },
            "podDisruptionBudget.minAvailable (2) must be less than replicaCount (2)",
        ),
        (
            {"metrics": {"port": 0, "serviceMonitor": {"enabled": True}}},
            "metrics.serviceMonitor.enabled needs metrics.port > 0",
        ),
        ({"metrics": {"port": 8080}}, "metrics.port and healthPort are both 8080"),
        (
            {"approvals": {"policy": {"enabled": True}}},
            "approvals.policy.enabled needs approvals.policy.groups",
        ),
        (
            {"approvals": {"policy": {"enabled": True, "groups": [""]}}},
            "at '/approvals/policy/groups/0': minLength",
        ),
    ],
)
def test_bad_values_fail_with_a_clear_message(
    chart: Any, values: dict[str, Any], message: str
) -> None:
    with pytest.raises((helm.HelmValuesError, helm.HelmRenderError)) as caught:
        chart.render(values, name="ks", namespace="kubesteps-system")
    assert message in str(caught.value)


def test_packaged_chart_holds_the_chart_and_nothing_else(
    chart_dir: Path, tmp_path: Path, package_version: str
) -> None:
    archive = Path(helm.package(str(chart_dir), destination=str(tmp_path)))
    assert archive.name == f"kubesteps-{package_version}.tgz"
    with tarfile.open(archive) as packaged:
        names = set(packaged.getnames())
    assert {
        "kubesteps/Chart.yaml",
        "kubesteps/values.schema.json",
        "kubesteps/crds/pipelines.kubesteps.dev.yaml",
        "kubesteps/files/prometheus-rules.yaml",
        "kubesteps/files/grafana-dashboard.json",
    } <= names
    # The docs generator and the rules' promtool tests are repository tools, not chart content.
    assert not any(name.endswith(".py") or "_test." in name for name in names), sorted(names)


def test_chart_crd_is_the_top_level_crd(repo_root: Path, chart_dir: Path) -> None:
    top_level = repo_root / "crds" / "pipelines.kubesteps.dev.yaml"
    in_chart = chart_dir / "crds" / "pipelines.kubesteps.dev.yaml"
    assert top_level.is_file(), f"{top_level} is missing"
    assert in_chart.is_file(), f"{in_chart} is missing; copy it from {top_level}"
    assert in_chart.read_text() == top_level.read_text(), (
        f"{in_chart} differs from {top_level}; copy the top-level file into the chart"
    )


@pytest.mark.parametrize("kube_version", NEWEST_KUBERNETES)
def test_chart_crd_is_a_valid_pipeline_crd(chart_dir: Path, kube_version: str) -> None:
    path = chart_dir / "crds" / "pipelines.kubesteps.dev.yaml"
    assert path.is_file(), f"{path} is missing"
    [crd] = [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    kubernetes_validate.validate(crd, kube_version, strict=True)
    assert crd["metadata"]["name"] == "pipelines.kubesteps.dev"
    assert crd["spec"]["group"] == "kubesteps.dev"
    assert crd["spec"]["scope"] == "Namespaced"
    assert crd["spec"]["names"]["kind"] == "Pipeline"


def test_the_approval_policy_is_off_by_default(render: Any) -> None:
    kinds = {obj["kind"] for obj in render({})}
    assert kinds.isdisjoint({"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"})


def test_the_approval_policy_names_the_groups_and_guards_every_verb(render: Any) -> None:
    objects = render({"approvals": {"policy": {"enabled": True, "groups": ["a", "b:c"]}}})
    policy = only(objects, "ValidatingAdmissionPolicy")
    binding = only(objects, "ValidatingAdmissionPolicyBinding")

    assert binding["spec"]["policyName"] == policy["metadata"]["name"]
    assert binding["spec"]["validationActions"] == ["Deny"]
    assert "matchResources" not in binding["spec"]  # every namespace
    (rule,) = policy["spec"]["matchConstraints"]["resourceRules"]
    assert (rule["apiGroups"], rule["resources"]) == (["kubesteps.dev"], ["pipelines"])
    assert set(rule["operations"]) == {"CREATE", "UPDATE"}
    variables = {v["name"]: v["expression"] for v in policy["spec"]["variables"]}
    assert json.loads(variables["groups"]) == ["a", "b:c"]
    for key in (
        "'kubesteps.dev/approve.'",
        "'kubesteps.dev/retry'",
        "'kubesteps.dev/rerun'",
        "'kubesteps.dev/cancel'",
    ):
        assert key in variables["changed"]
    assert "request.userInfo.username" in variables["user"]


def test_the_approval_policy_binds_only_the_watched_namespaces(render: Any) -> None:
    objects = render(
        {
            "watchNamespaces": ["team-a", "team-b"],
            "approvals": {"policy": {"enabled": True, "groups": ["release"]}},
        }
    )
    binding = only(objects, "ValidatingAdmissionPolicyBinding")

    (selector,) = binding["spec"]["matchResources"]["namespaceSelector"]["matchExpressions"]
    assert selector == {
        "key": "kubernetes.io/metadata.name",
        "operator": "In",
        "values": ["team-a", "team-b"],
    }
