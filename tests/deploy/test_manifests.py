"""The kustomize tree under deploy/: rendered by the real ``kubectl kustomize``, every built-in
object validated by kubernetes-validate against the Kubernetes versions of Gardener runtime
clusters, the Prometheus Operator and cert-manager objects checked field by field, and the
properties docs/deployment.md promises asserted on what is rendered.
"""

from __future__ import annotations

import base64
import functools
import re

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate import utils as kv_utils

from tests.deploy.rendering import (
    OVERLAYS,
    REPO,
    TARGETS,
    VIRTUAL_GARDEN,
    Obj,
    containers,
    find,
    one,
    pod_spec,
    references,
    render,
    selector_matches,
    workloads,
)

# The oldest and newest Kubernetes minor versions we promise (Gardener runtime clusters).
KUBERNETES_VERSIONS = ("1.29", "1.33")

# kubernetes-validate reads its JSON schemas from disk on every call; they never change.
kv_utils.schema_contents = functools.cache(kv_utils.schema_contents)

NAMESPACE = "ipam-portal"
TMP = "/tmp"  # noqa: S108 - the containers' path, not a file of this process


def _every_object() -> list[tuple[str, int, Obj]]:
    return [(target, i, obj) for target in TARGETS for i, obj in enumerate(render(target))]


# --- every object is valid -----------------------------------------------------------------


def _check_service_monitor(obj: Obj, objects: list[Obj]) -> None:
    spec = obj["spec"]
    assert isinstance(spec["selector"], dict) and spec["selector"], "spec.selector is required"
    assert spec["endpoints"], "spec.endpoints must not be empty"
    services = [
        s
        for s in find(objects, "Service")
        if s["metadata"].get("namespace") == obj["metadata"].get("namespace")
        and selector_matches(spec["selector"], s["metadata"].get("labels", {}))
    ]
    assert services, f"ServiceMonitor {obj['metadata']['name']} selects no Service"
    for endpoint in spec["endpoints"]:
        assert set(endpoint) <= {"port", "path", "scheme", "interval", "scrapeTimeout", "tlsConfig"}
        assert endpoint["path"].startswith("/")
        assert endpoint.get("scheme", "http") in {"http", "https"}
        for service in services:
            assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}, (
                f"{obj['metadata']['name']}: Service {service['metadata']['name']} has no port {endpoint['port']}"
            )
        if "tlsConfig" in endpoint:
            secret = endpoint["tlsConfig"]["ca"]["secret"]
            assert secret["name"] and secret["key"]


_DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")


def _check_prometheus_rule(obj: Obj, objects: list[Obj]) -> None:
    groups = obj["spec"]["groups"]
    assert groups
    names = [g["name"] for g in groups]
    assert len(names) == len(set(names)), "group names must be unique"
    for group in groups:
        assert group["rules"], f"group {group['name']} has no rules"
        for rule in group["rules"]:
            assert ("alert" in rule) != ("record" in rule), rule
            assert isinstance(rule["expr"], str) and rule["expr"].strip()
            assert set(rule) <= {"alert", "record", "expr", "for", "labels", "annotations"}, rule
            if "for" in rule:
                assert _DURATION.match(rule["for"]), rule["for"]
            if "alert" in rule:
                assert rule["labels"]["severity"] in {"info", "warning", "critical"}
                assert rule["annotations"]["summary"]


def _check_issuer(obj: Obj, objects: list[Obj]) -> None:
    spec = obj["spec"]
    assert len({"selfSigned", "ca", "acme", "vault", "venafi"} & set(spec)) == 1, spec
    if "ca" in spec:
        secret = spec["ca"]["secretName"]
        assert any(c["spec"]["secretName"] == secret for c in find(objects, "Certificate")), secret


def _check_certificate(obj: Obj, objects: list[Obj]) -> None:
    spec = obj["spec"]
    assert spec["secretName"]
    assert spec["issuerRef"]["kind"] == "Issuer"
    one(objects, "Issuer", spec["issuerRef"]["name"])
    assert spec.get("commonName") or spec.get("dnsNames"), "a Certificate names a subject"


#: Custom resources kubernetes-validate has no schema for, and the check of each.
CUSTOM_KINDS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): _check_service_monitor,
    ("monitoring.coreos.com/v1", "PrometheusRule"): _check_prometheus_rule,
    ("cert-manager.io/v1", "Issuer"): _check_issuer,
    ("cert-manager.io/v1", "Certificate"): _check_certificate,
}


@pytest.mark.parametrize("target", TARGETS)
def test_every_object_validates(target: str) -> None:
    """Built-in kinds against the Kubernetes schemas (strict: no unknown field); CRDs by hand."""
    objects = render(target)
    assert objects
    for obj in objects:
        assert obj["metadata"]["name"]
        check = CUSTOM_KINDS.get((obj["apiVersion"], obj["kind"]))
        if check is not None:
            assert obj["metadata"].get("namespace"), f"{obj['kind']} must be namespaced"
            check(obj, objects)
            continue
        for version in KUBERNETES_VERSIONS:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                path = ".".join(str(p) for p in exc.path)
                pytest.fail(
                    f"{target}: {obj['kind']}/{obj['metadata']['name']} ({version}): {path}: {exc.message}"
                )
            except kubernetes_validate.SchemaNotFoundError:
                pytest.fail(
                    f"{target}: {obj['apiVersion']} {obj['kind']} is neither built in nor checked here"
                )


@pytest.mark.parametrize("target", (*OVERLAYS, VIRTUAL_GARDEN))
def test_names_are_unique_and_namespaced(target: str) -> None:
    objects = render(target)
    keys = [(o["apiVersion"], o["kind"], o["metadata"]["name"]) for o in objects]
    assert len(keys) == len(set(keys))
    cluster_scoped = {"Namespace", "ClusterRole", "ClusterRoleBinding", "MutatingWebhookConfiguration"}
    for obj in objects:
        if obj["kind"] not in cluster_scoped:
            assert obj["metadata"]["namespace"].startswith(NAMESPACE), obj["metadata"]["name"]


# --- security -------------------------------------------------------------------------------


@pytest.mark.parametrize("target", TARGETS[:3])
def test_every_pod_is_restricted(target: str) -> None:
    """Pod Security "restricted" and a read-only root filesystem, with /tmp from an emptyDir."""
    for workload in workloads(render(target)):
        name = workload["metadata"]["name"]
        spec = pod_spec(workload)
        pod_security = spec["securityContext"]
        assert pod_security["runAsNonRoot"] is True, name
        assert pod_security["runAsUser"] > 0, name
        assert pod_security["seccompProfile"]["type"] == "RuntimeDefault", name
        assert "hostNetwork" not in spec and "hostPID" not in spec, name
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for container in containers(workload):
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, name
            assert security["readOnlyRootFilesystem"] is True, name
            assert security["capabilities"]["drop"] == ["ALL"], name
            assert "add" not in security["capabilities"], name
            assert security.get("runAsUser", pod_security["runAsUser"]) != 0, name
            requests = container["resources"]["requests"]
            assert requests["cpu"] and requests["memory"], f"{name}/{container['name']}: requests"
            assert container["resources"]["limits"]["memory"], f"{name}/{container['name']}: limit"
            if container["name"] == "portal" or container["name"].startswith("wait-"):
                mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
                assert "emptyDir" in volumes[mounts[TMP]], f"{name}: /tmp must be an emptyDir"


def test_only_the_garden_controller_gets_a_service_account_token() -> None:
    objects = render("overlays/production")
    with_token = {
        w["metadata"]["name"]
        for w in workloads(objects)
        if pod_spec(w).get("automountServiceAccountToken", True)
    }
    assert with_token == {"ipam-portal-garden-controller"}


def test_the_image_user_is_the_pods_user() -> None:
    containerfile = (REPO / "Containerfile").read_text()
    users = re.findall(r"^USER (\d+):(\d+)$", containerfile, re.M)
    assert users, "the Containerfile ends as a numeric user"
    uid = int(users[-1][0])
    for target in OVERLAYS:
        for workload in workloads(render(target)):
            if workload["metadata"]["labels"].get("app.kubernetes.io/name") == "ipam-portal":
                assert pod_spec(workload)["securityContext"]["runAsUser"] == uid


# --- web, workers, beat, release -----------------------------------------------------------


def _port_number(container: Obj, port: int | str) -> int:
    if isinstance(port, int):
        return port
    return next(p["containerPort"] for p in container["ports"] if p["name"] == port)


def _targets(objects: list[Obj], kind: str, workload: Obj) -> list[Obj]:
    return [
        o for o in find(objects, kind) if o["spec"]["scaleTargetRef"]["name"] == workload["metadata"]["name"]
    ]


def _selecting(objects: list[Obj], kind: str, workload: Obj) -> list[Obj]:
    labels = workload["spec"]["template"]["metadata"]["labels"]
    return [o for o in find(objects, kind) if selector_matches(o["spec"]["selector"], labels)]


def test_web_is_redundant_probed_and_scaled() -> None:
    objects = render("overlays/production")
    web = one(objects, "Deployment", "ipam-portal-web")
    assert web["spec"]["replicas"] >= 2
    assert web["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    (portal,) = web["spec"]["template"]["spec"]["containers"]
    for probe in ("readinessProbe", "livenessProbe"):
        assert portal[probe]["httpGet"]["path"] == "/healthz"
        assert _port_number(portal, portal[probe]["httpGet"]["port"]) == 8000
    assert "--bind=[::]:8000" in portal["command"]
    (hpa,) = _targets(objects, "HorizontalPodAutoscaler", web)
    assert hpa["spec"]["minReplicas"] >= 2 and hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"]
    (pdb,) = _selecting(objects, "PodDisruptionBudget", web)
    assert pdb["spec"].get("minAvailable", 0) >= 1 or pdb["spec"].get("maxUnavailable") == 1
    (service,) = [
        s
        for s in find(objects, "Service")
        if selector_matches(
            {"matchLabels": s["spec"]["selector"]}, web["spec"]["template"]["metadata"]["labels"]
        )
    ]
    assert _port_number(portal, service["spec"]["ports"][0]["targetPort"]) == 8000
    ingress = one(objects, "Ingress", "ipam-portal")
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == service["metadata"]["name"]
    assert ingress["spec"]["tls"][0]["hosts"] == [ingress["spec"]["rules"][0]["host"]]


def test_web_waits_for_the_migrations_and_drains_on_sigterm() -> None:
    web = one(render("overlays/production"), "Deployment", "ipam-portal-web")
    (wait,) = pod_spec(web)["initContainers"]
    assert wait["command"][-3:] == ["migrate", "--check", "--no-input"]
    (portal,) = pod_spec(web)["containers"]
    assert portal["lifecycle"]["preStop"]["exec"]["command"][0] == "sleep"
    sleep = int(portal["lifecycle"]["preStop"]["exec"]["command"][1])
    conf = (REPO / "deploy" / "gunicorn.conf.py").read_text()
    graceful = int(re.search(r"^graceful_timeout = (\d+)$", conf, re.M).group(1))
    assert pod_spec(web)["terminationGracePeriodSeconds"] > sleep + graceful


def test_workers_scale_and_beat_is_a_single_recreated_replica() -> None:
    objects = render("overlays/production")
    worker = one(objects, "Deployment", "ipam-portal-worker")
    assert "worker" in worker["spec"]["template"]["spec"]["containers"][0]["command"]
    (hpa,) = _targets(objects, "HorizontalPodAutoscaler", worker)
    assert hpa["spec"]["minReplicas"] >= 2
    config = one(objects, "ConfigMap", _config_name(objects))["data"]
    soft_limit = int(config["PROVISIONING_TASK_SOFT_TIME_LIMIT"])
    assert pod_spec(worker)["terminationGracePeriodSeconds"] >= soft_limit + 30
    beat = one(objects, "Deployment", "ipam-portal-beat")
    assert "beat" in beat["spec"]["template"]["spec"]["containers"][0]["command"]
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"] == {"type": "Recreate"}
    assert not _targets(objects, "HorizontalPodAutoscaler", beat)
    for workload in workloads(objects):
        if workload is not beat:
            assert "beat" not in " ".join(pod_spec(workload)["containers"][0]["command"]).split()


@pytest.mark.parametrize("target", ("base", "overlays/production"))
def test_the_release_job_migrates_collects_and_checks(target: str) -> None:
    job = one(render(target), "Job", "ipam-portal-migrate")
    script = job["spec"]["template"]["spec"]["containers"][0]["command"][-1]
    steps = [s.strip() for s in script.split("&&")]
    assert steps == [
        "python manage.py migrate --no-input",
        "python manage.py collectstatic --no-input --verbosity=1",
        "python manage.py check --deploy --fail-level WARNING",
    ]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_dev_runs_one_of_everything_with_its_own_database_and_broker() -> None:
    objects = render("overlays/dev")
    for workload in find(objects, "Deployment"):
        assert workload["spec"]["replicas"] == 1, workload["metadata"]["name"]
    for hpa in find(objects, "HorizontalPodAutoscaler"):
        assert hpa["spec"]["minReplicas"] == hpa["spec"]["maxReplicas"] == 1
    assert not find(objects, "PodDisruptionBudget")
    secret = one(objects, "Secret", _secret_name(objects))
    values = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    postgres = one(objects, "Service", "ipam-portal-postgres")
    redis = one(objects, "Service", "ipam-portal-redis")
    assert (
        f"@{postgres['metadata']['name']}:{postgres['spec']['ports'][0]['port']}/" in values["DATABASE_URL"]
    )
    assert values["CELERY_BROKER_URL"].startswith(f"redis://{redis['metadata']['name']}:6379/")
    job = one(objects, "Job", "ipam-portal-migrate")
    assert job["spec"]["template"]["spec"]["containers"][0]["command"][-1].endswith("check --deploy")


def test_production_takes_its_database_and_broker_from_a_secret_it_does_not_render() -> None:
    objects = render("overlays/production")
    assert not find(objects, "Secret")
    assert not [
        o for o in find(objects, "Deployment") if o["metadata"]["name"].endswith(("postgres", "redis"))
    ]
    namespace = one(objects, "Namespace", NAMESPACE)
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for workload in workloads(objects):
        for container in containers(workload):
            refs = {
                e["valueFrom"]["secretKeyRef"]["key"]: e["valueFrom"]["secretKeyRef"]
                for e in container.get("env", [])
                if "secretKeyRef" in e.get("valueFrom", {})
            }
            for key in ("SECRET_KEY", "DATABASE_URL"):
                assert refs[key]["name"] == "ipam-portal-secrets" and not refs[key].get("optional")


# --- settings: every README setting is wired ------------------------------------------------

#: README settings no pod gets, and why.
NOT_DEPLOYED = {
    "NEUTRON_VENV": "tests only",
    "SQLITE_TEST_NAME": "tests only",
    "IPAM_ALLOW_INSECURE_KEY": "never in production",
    "NETBOX_TOKEN": "an operator's own token for a one-off ipam_import_netbox run",
}
#: Set per container where only that kind of process needs it.
PER_CONTAINER = {"PROMETHEUS_MULTIPROC_DIR": {"ipam-portal-web", "ipam-portal-webhook"}}
#: The Secret's keys: everything that is a credential or carries one.
SECRET_KEYS = {
    "SECRET_KEY",
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "CELERY_RESULT_BACKEND",
    "CACHE_URL",
    "AUDIT_CHECKPOINT_KEY",
}


def readme_settings() -> set[str]:
    """Every variable of the README's configuration table (first column, in backticks)."""
    text = (REPO / "README.md").read_text()
    table = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for line in table.splitlines():
        if line.startswith("| `"):
            first_cell = line.split("|")[1]
            names.update(
                n for n in re.findall(r"`([^`]+)`", first_cell) if re.fullmatch(r"[A-Z][A-Z0-9_]+", n)
            )
    assert len(names) > 40, "the README's configuration table was not found"
    return names


def _config_name(objects: list[Obj]) -> str:
    (config,) = [
        c for c in find(objects, "ConfigMap") if c["metadata"]["name"].startswith("ipam-portal-config")
    ]
    return config["metadata"]["name"]


def _secret_name(objects: list[Obj]) -> str:
    (secret,) = [
        s for s in find(objects, "Secret") if s["metadata"]["name"].startswith("ipam-portal-secrets")
    ]
    return secret["metadata"]["name"]


def _portal_containers(objects: list[Obj]) -> list[tuple[Obj, Obj]]:
    return [
        (w, c)
        for w in workloads(objects)
        if w["metadata"]["labels"].get("app.kubernetes.io/name") == "ipam-portal"
        for c in containers(w, init=False)
    ]


@pytest.mark.parametrize("target", ("base", *OVERLAYS))
def test_every_readme_setting_is_in_the_configmap_or_the_secret(target: str) -> None:
    objects = render(target)
    config = one(objects, "ConfigMap", _config_name(objects))["data"]
    wanted = readme_settings() - set(NOT_DEPLOYED) - set(PER_CONTAINER)
    missing = wanted - SECRET_KEYS - set(config)
    assert not missing, (
        f"README settings missing from the ConfigMap (deploy/base/config.env): {sorted(missing)}"
    )
    assert not set(config) & SECRET_KEYS, "secrets never go into the ConfigMap"
    unknown = set(config) - readme_settings()
    assert not unknown, f"ConfigMap keys the README does not document: {sorted(unknown)}"
    portal = _portal_containers(objects)
    assert portal
    for workload, container in portal:
        name = workload["metadata"]["name"]
        assert {"configMapRef": {"name": _config_name(objects)}} in container["envFrom"], name
        secret_refs = {
            e["name"]: e["valueFrom"]["secretKeyRef"]
            for e in container["env"]
            if "secretKeyRef" in e.get("valueFrom", {})
        }
        for key in SECRET_KEYS:
            assert secret_refs[key]["key"] == key, f"{name}: {key}"
            assert secret_refs[key]["name"].startswith("ipam-portal-secrets"), f"{name}: {key}"
        for variable, where in PER_CONTAINER.items():
            defined = {e["name"] for e in container["env"]}
            assert (variable in defined) == (name in where), f"{name}: {variable}"
    if target == "overlays/dev":
        secret = one(objects, "Secret", _secret_name(objects))
        assert SECRET_KEYS - {"CELERY_RESULT_BACKEND", "AUDIT_CHECKPOINT_KEY"} <= set(secret["data"])


@pytest.mark.parametrize("target", ("base", *OVERLAYS))
def test_every_variable_reference_is_defined_before_use(target: str) -> None:
    """``$(VAR)`` in env values and commands refers to a variable kubelet has defined by then."""
    objects = render(target)
    for workload in workloads(objects):
        for container in containers(workload):
            defined: set[str] = set()
            for source in container.get("envFrom", []):
                defined |= set(one(objects, "ConfigMap", source["configMapRef"]["name"])["data"])
            for item in container.get("env", []):
                assert references(item.get("value", "")) <= defined, (workload["metadata"]["name"], item)
                defined.add(item["name"])
            for arg in [*container.get("command", []), *container.get("args", [])]:
                assert references(arg) <= defined, (workload["metadata"]["name"], arg)


# --- admission webhook ----------------------------------------------------------------------


def _webhook_objects() -> tuple[list[Obj], Obj, Obj, Obj]:
    objects = render("overlays/production")
    configuration = one(objects, "MutatingWebhookConfiguration", "ipam-portal")
    deployment = one(objects, "Deployment", "ipam-portal-webhook")
    service = one(objects, "Service", "ipam-portal-webhook")
    return objects, configuration, deployment, service


def test_the_webhook_configuration_is_what_kube_apiserver_and_gardener_need() -> None:
    from django.urls import resolve

    from admission import views

    _, configuration, deployment, service = _webhook_objects()
    webhooks = configuration["webhooks"]
    assert len(webhooks) == 2
    for webhook in webhooks:
        assert webhook["admissionReviewVersions"] == ["v1"]
        assert webhook["sideEffects"] == "NoneOnDryRun"  # the portal allocates nothing on dryRun
        assert 1 <= webhook["timeoutSeconds"] <= 15  # kube-apiserver allows 30; the portal's p99 is far below
        assert webhook["failurePolicy"] == "Fail"
        (rule,) = webhook["rules"]
        assert rule == {
            "apiGroups": ["core.gardener.cloud"],
            "apiVersions": ["v1beta1"],
            "operations": ["CREATE", "UPDATE"],
            "resources": ["shoots"],
            "scope": "Namespaced",
        }
        target = webhook["clientConfig"]["service"]
        assert (target["name"], target["namespace"]) == (
            service["metadata"]["name"],
            service["metadata"]["namespace"],
        )
        assert resolve(target["path"]).func is views.shoot_review
        (port,) = [p for p in service["spec"]["ports"] if p["port"] == target["port"]]
        assert port["port"] == 443
        (portal,) = pod_spec(deployment)["containers"]
        assert _port_number(portal, port["targetPort"]) == 8443
        assert selector_matches(
            {"matchLabels": service["spec"]["selector"]}, deployment["spec"]["template"]["metadata"]["labels"]
        )


def test_the_selectors_send_each_opted_in_shoot_exactly_once() -> None:
    from admission.decisions import MANAGED_ANNOTATION

    _, configuration, _, _ = _webhook_objects()
    webhooks = configuration["webhooks"]
    opted_project = {
        "gardener.cloud/role": "project",
        "project.gardener.cloud/name": "dev",
        "ipam.portal/admission": "enabled",
    }
    other_project = {"gardener.cloud/role": "project", "project.gardener.cloud/name": "ops"}
    kube_system = {"kubernetes.io/metadata.name": "kube-system"}
    cases = [
        (opted_project, {}, 1),
        (opted_project, {MANAGED_ANNOTATION: "true"}, 1),
        (opted_project, {MANAGED_ANNOTATION: "false"}, 0),
        (other_project, {}, 0),
        (other_project, {MANAGED_ANNOTATION: "true"}, 1),
        (other_project, {MANAGED_ANNOTATION: "false"}, 0),
        (kube_system, {MANAGED_ANNOTATION: "true"}, 0),
    ]
    for namespace_labels, shoot_labels, calls in cases:
        matching = [
            w["name"]
            for w in webhooks
            if selector_matches(w["namespaceSelector"], namespace_labels)
            and selector_matches(w["objectSelector"], shoot_labels)
        ]
        assert len(matching) == calls, (namespace_labels, shoot_labels, matching)


def test_the_webhook_serves_https_like_make_run_webhook() -> None:
    objects, configuration, deployment, _ = _webhook_objects()
    (portal,) = pod_spec(deployment)["containers"]
    flags = dict(arg.removeprefix("--").split("=", 1) for arg in portal["command"] if arg.startswith("--"))
    makefile = (REPO / "Makefile").read_text()
    make_flags = set(re.findall(r"--(certfile|keyfile|ca-certs|cert-reqs)\b", makefile))
    assert make_flags == {"certfile", "keyfile", "ca-certs", "cert-reqs"}
    assert make_flags <= set(flags)
    assert flags["cert-reqs"] == "1"  # client certificates verified when presented; tokens still work
    mounts = {m["mountPath"]: m["name"] for m in portal["volumeMounts"]}
    volumes = {v["name"]: v for v in pod_spec(deployment)["volumes"]}
    for flag in ("certfile", "keyfile", "ca-certs"):
        directory, filename = flags[flag].rsplit("/", 1)
        secret = volumes[mounts[directory]]["secret"]["secretName"]
        assert secret == "ipam-portal-webhook-tls" and filename in {"tls.crt", "tls.key", "ca.crt"}
    for probe in ("readinessProbe", "livenessProbe"):
        assert (
            portal[probe]["httpGet"]["scheme"] == "HTTPS" and portal[probe]["httpGet"]["path"] == "/healthz"
        )
    assert deployment["spec"]["replicas"] >= 2
    assert _selecting(objects, "PodDisruptionBudget", deployment)
    # cert-manager issues the serving certificate for the Service's name and injects its CA
    serving = one(objects, "Certificate", "ipam-portal-webhook-tls")
    assert serving["spec"]["secretName"] == "ipam-portal-webhook-tls"
    assert f"ipam-portal-webhook.{NAMESPACE}.svc" in serving["spec"]["dnsNames"]
    namespace, ca_name = configuration["metadata"]["annotations"]["cert-manager.io/inject-ca-from"].split("/")
    ca = one(objects, "Certificate", ca_name)
    assert ca["spec"]["isCA"] is True and ca["metadata"]["namespace"] == namespace
    assert (
        one(objects, "Issuer", serving["spec"]["issuerRef"]["name"])["spec"]["ca"]["secretName"]
        == ca["spec"]["secretName"]
    )
    client = one(objects, "Certificate", "ipam-portal-webhook-client")
    config = one(objects, "ConfigMap", _config_name(objects))["data"]
    assert client["spec"]["commonName"] in config["ADMISSION_CLIENT_CERT_NAMES"].split(",")
    assert "client auth" in client["spec"]["usages"]


def test_the_kube_apiserver_kubeconfigs_name_the_webhook_host() -> None:
    _, configuration, _, service = _webhook_objects()
    host = f"{service['metadata']['name']}.{service['metadata']['namespace']}.svc"
    assert all(
        w["clientConfig"]["service"]["port"] == 443 for w in configuration["webhooks"]
    )  # else host:port
    secrets = {s["metadata"]["name"]: s for s in render("components/admission-webhook/kube-apiserver")}
    expected = {
        "ipam-portal-webhook-kubeconfig-token": {"token"},
        "ipam-portal-webhook-kubeconfig-client-cert": {"client-certificate-data", "client-key-data"},
    }
    assert set(secrets) == set(expected)
    for name, fields in expected.items():
        kubeconfig = yaml.safe_load(base64.b64decode(secrets[name]["data"]["kubeconfig"]))
        assert kubeconfig["kind"] == "Config" and kubeconfig["apiVersion"] == "v1"
        (user,) = kubeconfig["users"]
        assert user["name"] == host
        assert set(user["user"]) == fields


# --- controllers ----------------------------------------------------------------------------

CONTROLLERS = {
    "ipam-portal-garden-controller": ("ipam_garden_controller", 8080, 2),
    "ipam-portal-node-controller": ("ipam_node_controller", 8081, 2),
}


def test_the_controllers_run_their_commands_with_probes_on_the_health_port() -> None:
    objects = render("overlays/production")
    for name, (command, port, replicas) in CONTROLLERS.items():
        deployment = one(objects, "Deployment", name)
        assert deployment["spec"]["replicas"] == replicas
        (portal,) = pod_spec(deployment)["containers"]
        assert portal["command"][:3] == ["python", "manage.py", command]
        assert f"--health-port={port}" in portal["command"]
        assert portal["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert portal["readinessProbe"]["httpGet"]["path"] == "/readyz"
        for probe in ("livenessProbe", "readinessProbe"):
            assert _port_number(portal, portal[probe]["httpGet"]["port"]) == port
        (service,) = [
            s
            for s in find(objects, "Service")
            if s["spec"].get("clusterIP") == "None"
            and selector_matches(
                {"matchLabels": s["spec"]["selector"]}, deployment["spec"]["template"]["metadata"]["labels"]
            )
        ]
        (monitor,) = [
            m
            for m in find(objects, "ServiceMonitor")
            if selector_matches(m["spec"]["selector"], service["metadata"]["labels"])
        ]
        assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
        # both elect a leader: a rollout starts the new pod before the old one goes, and a
        # voluntary disruption leaves one of them running
        assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
        (budget,) = [
            b
            for b in find(objects, "PodDisruptionBudget")
            if selector_matches(b["spec"]["selector"], deployment["spec"]["template"]["metadata"]["labels"])
        ]
        assert budget["spec"]["maxUnavailable"] == 1


def test_rbac_is_get_list_watch_of_shoots_seeds_and_managedseeds_only() -> None:
    objects = render("overlays/production")
    assert not find(objects, "Role") and not find(objects, "RoleBinding")
    (role,) = find(objects, "ClusterRole")
    granted = {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    assert all(
        set(rule) == {"apiGroups", "resources", "verbs"} for rule in role["rules"]
    )  # no resourceNames, no nonResourceURLs
    assert granted == {
        (group, resource, verb)
        for group, resource in [
            ("core.gardener.cloud", "shoots"),
            ("core.gardener.cloud", "seeds"),
            ("seedmanagement.gardener.cloud", "managedseeds"),
        ]
        for verb in ("get", "list", "watch")
    }
    (binding,) = find(objects, "ClusterRoleBinding")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": role["metadata"]["name"],
    }
    (subject,) = binding["subjects"]
    account = one(objects, "ServiceAccount", subject["name"])
    assert subject["namespace"] == account["metadata"]["namespace"]
    garden = one(objects, "Deployment", "ipam-portal-garden-controller")
    assert pod_spec(garden)["serviceAccountName"] == account["metadata"]["name"]


# --- alerts use the metrics the portal exports ----------------------------------------------


def _exported_metrics() -> dict[str, set[str]]:
    """Metric name -> label names, from the collectors the portal registers."""
    import prometheus_client

    import allocations.metrics
    import audit.metrics
    import controllers.health
    import ipam_portal.events.metrics
    import ipam_portal.metrics as kernel
    import providers.metrics

    exported: dict[str, set[str]] = {}
    for counter in (kernel.ALLOCATIONS, kernel.RELEASES, kernel.JOBS, ipam_portal.events.metrics.DELIVERIES):
        assert isinstance(counter, prometheus_client.Counter)
        exported[f"{counter._name}_total"] = set(counter._labelnames)
    gauges = (
        allocations.metrics.POOL_RATIO,
        audit.metrics.CHAIN_OK,
        audit.metrics.CHAIN_CHECKED,
        providers.metrics.JOBS_FAILED,
    )
    for gauge in gauges:
        exported[gauge.name] = {gauge.label}
    for plain in (controllers.health.LEADING, controllers.health.LAST_SYNC):
        exported[plain._name] = set(plain._labelnames)
    exported["up"] = {"job"}
    return exported


def test_alerts_use_metric_and_label_names_the_portal_exports() -> None:
    from allocations.errors import PoolExhausted
    from providers.choices import JobState

    exported = _exported_metrics()
    (rules,) = find(render("overlays/production"), "PrometheusRule")
    alerts = {r["alert"]: r["expr"] for g in rules["spec"]["groups"] for r in g["rules"]}
    for wanted in (
        "IpamPoolNearlyFull",
        "IpamProvisioningJobsFailing",
        "IpamControllerNotLeading",
        "IpamAuditChainBroken",
    ):
        assert wanted in alerts
    for alert, expr in alerts.items():
        metrics = set(re.findall(r"\b((?:ipam_)[a-z_]+|up)\b(?=\s*[{)\s<>=]|$)", expr))
        assert metrics, alert
        for metric in metrics:
            assert metric in exported, f"{alert}: {metric} is not exported by the portal"
        for labels in re.findall(r"by \(([^)]*)\)", expr):
            for label in labels.split(","):
                assert any(label.strip() in exported[m] for m in metrics), f"{alert}: label {label}"
        for label, _value in re.findall(r"([a-z_]+)=\"([^\"]*)\"", expr):
            assert any(label in exported[m] for m in metrics), f"{alert}: label {label}"
    # read from the database, so it holds whichever worker failed the job
    assert "ipam_jobs_failed" in alerts["IpamProvisioningJobsFailing"] and JobState.FAILED.value == "failed"
    assert "ipam_audit_chain_checked_timestamp_seconds" in alerts["IpamAuditChainNotVerified"]
    assert f'outcome="{PoolExhausted.code}"' in alerts["IpamAllocationsRefusedExhausted"]


# --- a virtual garden -----------------------------------------------------------------------


def test_the_virtual_garden_gets_the_same_webhooks_by_url_and_the_same_rbac() -> None:
    from urllib.parse import urlsplit

    from django.urls import resolve

    from admission import views

    production = render("overlays/production")
    garden = render(VIRTUAL_GARDEN)
    assert not list(workloads(garden)), "nothing runs in the virtual garden"
    by_url = one(garden, "MutatingWebhookConfiguration", "ipam-portal")
    by_service = one(production, "MutatingWebhookConfiguration", "ipam-portal")
    serving = one(production, "Certificate", "ipam-portal-webhook-tls")
    service = one(production, "Service", "ipam-portal-webhook")
    assert len(by_url["webhooks"]) == len(by_service["webhooks"])
    for url_hook, service_hook in zip(by_url["webhooks"], by_service["webhooks"], strict=True):
        url = urlsplit(url_hook.pop("clientConfig")["url"])
        target = service_hook.pop("clientConfig")["service"]
        assert url_hook == service_hook, "only how kube-apiserver reaches the portal differs"
        assert url.scheme == "https" and url.port is None and target["port"] == 443
        assert url.hostname == f"{service['metadata']['name']}.{service['metadata']['namespace']}.svc"
        assert url.hostname in serving["spec"]["dnsNames"]
        assert url.path == target["path"] and resolve(url.path).func is views.shoot_review
    for kind in ("ServiceAccount", "ClusterRole", "ClusterRoleBinding"):
        (ours,) = find(garden, kind)
        (theirs,) = find(production, kind)
        for obj in (ours, theirs):
            obj["metadata"]["labels"].pop("app.kubernetes.io/component", None)
        assert ours == theirs, kind
    (token,) = find(garden, "Secret")
    assert token["type"] == "kubernetes.io/service-account-token"
    account = one(
        garden, "ServiceAccount", token["metadata"]["annotations"]["kubernetes.io/service-account.name"]
    )
    assert account["metadata"]["namespace"] == token["metadata"]["namespace"]
