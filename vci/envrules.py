"""The rules an environment's settings keep: the value checks, the rules between values, the canary policy.

Every check names the key (``environments.staging.autoscaling``) and the rule it breaks; ``vci.config``
runs them when settings are loaded, so a setting that cannot work is refused before any command acts on
it. Kubernetes syntax (names, labels, quantities) comes from ``vci.kubevalues``, which rendering applies too.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from typing import Any

from .errors import ConfigError
from .kubevalues import (
    DNS_LABEL,
    ENV_NAME,
    affinity_problem,
    gpu_resource_problem,
    ingress_problem,
    is_dns_subdomain,
    metadata_problem,
    network_policy_problem,
    node_selector_problem,
    object_name_problem,
    resources_problem,
    tolerations_problem,
)

LOCAL, KUBERNETES, GITOPS = "local", "kubernetes", "gitops"
TARGETS = (LOCAL, KUBERNETES, GITOPS)  # gitops: rendered manifests committed to a repository a controller applies
DURATION = (int, float, str)  # 5, 5.0, "5s", "2m": read with parse_seconds
STRATEGIES = ("direct", "canary", "shadow", "blue-green")
WAVES = ("sequential",)  # how a group's targets are promoted
GROUP_KEYS = ("targets", "waves", "requires_approval", "auto_promote")  # what a group itself may set
AUTOSCALING = ("min_replicas", "max_replicas", "cpu", "memory")
SERVICE_MONITOR = ("interval", "labels")  # the keys of service_monitor: {interval, labels}
# a Prometheus duration, as the Prometheus Operator's ServiceMonitor schema writes it
PROMETHEUS_DURATION = re.compile(
    r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
)
BATCHING = {"max_batch_size": 32, "max_latency_ms": 5}  # the keys of the batching setting and their defaults
BATCHING_ENV = {"max_batch_size": "VCI_MAX_BATCH_SIZE", "max_latency_ms": "VCI_MAX_LATENCY_MS"}  # the server reads
VALIDATE_ENV = "VCI_VALIDATE"  # the server reads it: 0 turns request validation off (the validate setting)
VCI_ENV = ("VCI_PORT", "VCI_WORK_DIR", "VCI_IMAGE_DIGEST", "VCI_TRACK")  # what vci sets in the container itself
AUTH = ("secret", "key", "token_file", "all_routes")  # an environment's bearer-token auth (vci.serve.auth)
AUTH_ENV = ("VCI_AUTH_TOKEN", "VCI_AUTH_TOKEN_FILE", "VCI_AUTH_ALL_ROUTES")  # what the server reads for it
AUTH_MOUNT = "/var/run/secrets/vci-auth"  # where a pod mounts the auth Secret (whole: a subPath never updates)
SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]{1,253}$")
PAYLOAD_LOG = ("sink", "sample", "include", "redact", "batch_records", "batch_seconds", "queue")  # vci.serve.payloads
PAYLOAD_PARTS = ("input", "output")  # what payload_log.include may name
PAYLOAD_ENV = {  # the server variables that carry payload_log (and VCI_ENVIRONMENT, the name records carry)
    "sink": "VCI_PAYLOAD_SINK",
    "sample": "VCI_PAYLOAD_SAMPLE",
    "include": "VCI_PAYLOAD_INCLUDE",
    "redact": "VCI_PAYLOAD_REDACT",
    "batch_records": "VCI_PAYLOAD_BATCH_RECORDS",
    "batch_seconds": "VCI_PAYLOAD_BATCH_SECONDS",
    "queue": "VCI_PAYLOAD_QUEUE",
}
PAYLOAD_SINK = re.compile(r"^(stdout|file:/.+|https?://[^/\s]+\S*|s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/\S*)?)$")
FIELD_PATH = re.compile(r"^(input|output|error)(\.([A-Za-z0-9_-]+|\*))*$")  # input.features.*.ssn
PLATFORM = re.compile(r"^[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?$")  # os/arch[/variant], e.g. linux/arm64/v8
Check = Callable[[Any, str], None]


def parse_seconds(value, name: str = "duration") -> float:
    """``60``, ``"60s"``, ``"2m"``, ``"500ms"`` -> seconds (ConfigError naming ``name`` otherwise)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?)\s*(ms|s|m|h)?\s*", str(value))
    if not match:
        raise ConfigError(f"{name} is not a duration: {value!r}", hint="e.g. 600, 600s, 10m, 500ms")
    return float(match.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[match.group(2) or "s"]


def kind_name(kind) -> str:
    """``int`` -> "an integer": what a setting must be, in words."""
    names = {str: "a string", int: "an integer", bool: "a boolean (true or false)", dict: "a mapping", list: "a list"}
    if kind is DURATION:
        return "a duration (e.g. 600, 10m, 500ms)"
    if isinstance(kind, tuple):
        return " or ".join(names[k].split(" (")[0] for k in kind)
    return names[kind]


def has_kind(value, kind) -> bool:
    """``isinstance`` as settings mean it: a boolean is no number."""
    numeric = kind in (int, float, DURATION) or (isinstance(kind, tuple) and bool({int, float} & set(kind)))
    allows_bool = kind is bool or (isinstance(kind, tuple) and bool in kind)
    if isinstance(value, bool) and numeric and not allows_bool:
        return False
    return isinstance(value, kind)


def refuse_unknown(given: Iterable[str], known: Iterable[str], where: str, what: str = "") -> None:
    """ConfigError for the first key of ``given`` not in ``known``, naming the nearest known one."""
    known = list(known)
    for key in given:
        if key not in known:
            near = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
            raise ConfigError(
                f"unknown {what + ' ' if what else ''}setting {key!r} in {where}"
                + (f"; did you mean {near[0]!r}?" if near else ""),
                hint=f"known: {', '.join(sorted(known))}",
            )


def _problem(check: Callable[[Any], str | None]) -> Check:
    """A Check from a ``vci.kubevalues`` rule returning what is wrong."""

    def checked(value, where: str) -> None:
        problem = check(value)
        if problem:
            raise ConfigError(f"{where}: {problem}")

    return checked


check_resources = _problem(resources_problem)
check_network_policy = _problem(network_policy_problem)
check_ingress = _problem(ingress_problem)
check_gpu_resource = _problem(gpu_resource_problem)
check_node_selector = _problem(node_selector_problem)
check_tolerations = _problem(tolerations_problem)
check_affinity = _problem(affinity_problem)
check_object_name = _problem(object_name_problem)


def at_least(low: float, unit: str = "") -> Check:
    def checked(value, where: str) -> None:
        number = parse_seconds(value, where) if unit else value
        if number < low:
            raise ConfigError(f"{where} must be at least {low:g}{unit}, got {value!r}")

    return checked


def one_of(*choices: str) -> Check:
    def checked(value, where: str) -> None:
        if value not in choices:
            raise ConfigError(f"{where} must be one of {', '.join(choices)}, got {value!r}")

    return checked


def check_namespace(value: str, where: str) -> None:
    if len(value) > 63 or not DNS_LABEL.match(value):
        raise ConfigError(
            f"{where}: {value!r} is not a namespace name", hint="lower-case letters, digits and '-', at most 63"
        )


def check_secret_name(value: str, where: str) -> None:
    if not is_dns_subdomain(value):
        raise ConfigError(
            f"{where}: {value!r} is not a Secret name", hint="lower-case letters, digits, '-' and '.' (a DNS name)"
        )


def check_platform(value: str, where: str) -> None:
    """One platform, or several separated by commas (an image index), each once."""
    platforms = [p.strip() for p in value.split(",")]
    if not all(PLATFORM.match(p) for p in platforms):
        raise ConfigError(
            f"{where}: {value!r} is not a platform", hint="OS/ARCH[/VARIANT][,...], e.g. linux/amd64,linux/arm64"
        )
    if len(set(platforms)) != len(platforms):
        raise ConfigError(f"{where}: {value!r} names a platform twice", hint="name each platform once")


def metadata(label: bool) -> Check:
    def checked(values: dict, where: str) -> None:
        for key, value in values.items():
            problem = metadata_problem(key, value, label=label)
            if problem:
                raise ConfigError(f"{where}: {problem}")

    return checked


def check_env(values: dict, where: str) -> None:
    """The container's variables: valid names, scalar values (written as strings), none that vci sets, no
    secret in clear (kube-linter's env-var-secret), and a VCI_DRAIN_TIMEOUT that is a number of seconds."""
    for name, value in values.items():
        if not isinstance(name, str) or not ENV_NAME.match(name):
            raise ConfigError(f"{where}: {name!r} is not a variable name", hint="letters, digits, '_', '-', '.'")
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(
                f"{where}.{name} must be a string or a number, got {value!r}", hint='quote it: "true", "[1, 2]"'
            )
        if name in VCI_ENV:
            raise ConfigError(f"{where}.{name} is set by vci itself (the server's port, work directory, image, track)")
        if name in BATCHING_ENV.values():
            key = next(k for k, v in BATCHING_ENV.items() if v == name)
            raise ConfigError(f"{where}.{name} comes from the batching setting", hint=f"set batching: {{{key}: ...}}")
        if name in PAYLOAD_ENV.values():
            raise ConfigError(f"{where}.{name} comes from the payload_log setting", hint="set payload_log: {sink: ...}")
        if name == VALIDATE_ENV:
            raise ConfigError(f"{where}.{name} comes from the validate setting", hint="set validate: false")
        if name in AUTH_ENV:
            raise ConfigError(f"{where}.{name} comes from the auth setting", hint="set auth: {secret: NAME}")
        if "secret" in name.lower():
            raise ConfigError(
                f"{where}.{name} looks like a secret: vci.yaml is no place for one",
                hint="mount it from a Kubernetes Secret (e.g. injected by pod_annotations for Vault), or rename it",
            )
    if "VCI_DRAIN_TIMEOUT" in values:
        at_least(0, "s")(values["VCI_DRAIN_TIMEOUT"], f"{where}.VCI_DRAIN_TIMEOUT")


def check_batching(values: dict, where: str) -> None:
    """``max_batch_size`` a whole number of at least 1, ``max_latency_ms`` a number from 0 to 60000."""
    refuse_unknown(values, BATCHING, where)
    size, latency = (values.get(key, default) for key, default in BATCHING.items())
    if not has_kind(size, int) or size < 1:
        raise ConfigError(f"{where}.max_batch_size must be a whole number of at least 1, got {size!r}")
    if not has_kind(latency, (int, float)) or not 0 <= latency <= 60_000:
        raise ConfigError(f"{where}.max_latency_ms must be a number of milliseconds from 0 to 60000, got {latency!r}")


VERIFY = ("keys", "require", "provenance")  # an environment's verification policy (vci.trust.Policy)
EVIDENCE = ("signature", "sbom", "provenance")
PROVENANCE = ("builder", "repository")


def check_verify(values: dict, where: str) -> None:
    """``{keys: [PATH|PEM, ...], require: [signature, sbom, provenance], provenance: {builder, repository}}``:
    at least one key, known requirements only, strings throughout."""
    refuse_unknown(values, VERIFY, where)
    keys, require = values.get("keys"), values.get("require", ["signature"])
    if not isinstance(keys, list) or not keys or not all(isinstance(k, str) and k for k in keys):
        raise ConfigError(
            f"{where}.keys must list the trusted public keys (paths to PEM files, relative to vci.yaml)",
            hint="make a key pair with `vci keys generate` and list its .pub file",
        )
    if not isinstance(require, list) or not all(isinstance(r, str) for r in require):
        raise ConfigError(f"{where}.require must be a list of: {', '.join(EVIDENCE)}")
    refuse_unknown(require, EVIDENCE, f"{where}.require", "evidence")
    provenance = values.get("provenance", {})
    if not isinstance(provenance, dict) or not all(isinstance(v, str) for v in provenance.values()):
        raise ConfigError(f"{where}.provenance must map builder and/or repository to strings")
    refuse_unknown(provenance, PROVENANCE, f"{where}.provenance")
    if provenance and "provenance" not in require:
        raise ConfigError(
            f"{where}.provenance sets what provenance must say, and {where}.require does not ask for provenance",
            hint="add provenance to require",
        )


def check_auth(values: dict, where: str) -> None:
    """``secret`` (a cluster's Secret, its ``key`` default ``token``) or ``token_file`` (a local server's
    absolute path), one of them; ``all_routes`` a boolean."""
    refuse_unknown(values, AUTH, where)
    if ("secret" in values) == ("token_file" in values):
        raise ConfigError(
            f"{where} names where the tokens are: secret: NAME (a Kubernetes Secret) or token_file: PATH (local)",
            hint="set exactly one of secret and token_file",
        )
    if "secret" in values:
        check_secret_name(values["secret"], f"{where}.secret")
        if not SECRET_KEY.match(str(values.get("key", "token"))):
            raise ConfigError(f"{where}.key: {values['key']!r} is not a Secret's key", hint="letters, digits, '-._'")
    elif not isinstance(values["token_file"], str) or not values["token_file"].startswith("/"):
        raise ConfigError(f"{where}.token_file must be an absolute path, got {values['token_file']!r}")
    elif "key" in values:
        raise ConfigError(f"{where}.key names a key of the Secret, and this auth names a token_file")
    if not has_kind(values.get("all_routes", False), bool):
        raise ConfigError(f"{where}.all_routes must be true or false, got {values['all_routes']!r}")


def auth_env(values: dict) -> dict[str, str]:
    """The server variables that carry an auth setting (none when it is empty: auth off)."""
    if not values:
        return {}
    path = f"{AUTH_MOUNT}/{values.get('key', 'token')}" if "secret" in values else values["token_file"]
    return {"VCI_AUTH_TOKEN_FILE": path, **({"VCI_AUTH_ALL_ROUTES": "true"} if values.get("all_routes") else {})}


def check_payload_log(values: dict, where: str) -> None:
    """``sink`` one of stdout, file:/ABS/PATH, http(s)://URL, s3://BUCKET/PREFIX; ``sample`` in (0, 1];
    ``include`` a list of input/output; ``redact`` dotted field paths (``input.customer.email``, ``*``
    for any key or item); batch_records / queue whole numbers >= 1, batch_seconds from 0.1 to 3600."""
    refuse_unknown(values, PAYLOAD_LOG, where)
    sink = values.get("sink")
    if not isinstance(sink, str) or not PAYLOAD_SINK.match(sink):
        raise ConfigError(
            f"{where}.sink must be stdout, file:/ABSOLUTE/PATH, http(s)://URL or s3://BUCKET/PREFIX, got {sink!r}"
        )
    sample = values.get("sample", 1.0)
    if not has_kind(sample, (int, float)) or not 0 < sample <= 1:
        raise ConfigError(f"{where}.sample must be a fraction above 0 and at most 1, got {sample!r}")
    include = values.get("include", list(PAYLOAD_PARTS))
    if not isinstance(include, list):
        raise ConfigError(f"{where}.include must be a list of: {', '.join(PAYLOAD_PARTS)}")
    refuse_unknown(include, PAYLOAD_PARTS, f"{where}.include", "part")
    redact = values.get("redact", [])
    if not isinstance(redact, list) or not all(isinstance(p, str) and FIELD_PATH.match(p) for p in redact):
        raise ConfigError(
            f"{where}.redact must list field paths such as input.customer.email or input.*.ssn, got {redact!r}"
        )
    for key, low, high in (("batch_records", 1, 1_000_000), ("queue", 1, 1_000_000), ("batch_seconds", 0.1, 3600)):
        value = values.get(key, low)
        if not has_kind(value, int if key != "batch_seconds" else (int, float)) or not low <= value <= high:
            raise ConfigError(f"{where}.{key} must be a number from {low:g} to {high:g}, got {value!r}")


def payload_log_env(values: dict, environment: str) -> dict[str, str]:
    """The server variables that carry a payload_log setting (none when it is empty: logging off)."""
    if not values:
        return {}
    env = {"VCI_ENVIRONMENT": environment}
    for key, value in values.items():
        env[PAYLOAD_ENV[key]] = ",".join(value) if isinstance(value, list) else str(value)
    return env


def batching_env(values: dict) -> dict[str, str]:
    """The server variables that carry a batching setting (none when it is empty: batching off)."""
    if not values:
        return {}
    return {BATCHING_ENV[key]: str(values.get(key, default)) for key, default in BATCHING.items()}


def boolean(value, where: str) -> None:
    """true or false, nothing that reads like one (``"no"``, ``0``): the kind check admits only booleans."""
    if not isinstance(value, bool):
        raise ConfigError(f"{where} must be true or false, got {value!r}")


def validate_env(validate: bool) -> dict[str, str]:
    """The server variable that turns request validation off (none when it is on, the server's default)."""
    return {} if validate else {VALIDATE_ENV: "0"}


def check_service_monitor(value, where: str) -> None:
    """``true``/``false``, or ``{interval, labels}``: a Prometheus duration (``30s``, ``1m``) and the labels a
    Prometheus's ``serviceMonitorSelector`` looks for (valid label pairs)."""
    if isinstance(value, bool):
        return
    refuse_unknown(value, SERVICE_MONITOR, where)
    interval = value.get("interval", "30s")
    if not isinstance(interval, str) or not interval or not PROMETHEUS_DURATION.match(interval):
        raise ConfigError(f"{where}.interval must be a Prometheus duration such as 30s or 1m, got {interval!r}")
    labels = value.get("labels", {})
    if not isinstance(labels, dict):
        raise ConfigError(f"{where}.labels must be a mapping of label names to values, got {labels!r}")
    metadata(label=True)(labels, f"{where}.labels")


def check_autoscaling(values: dict, where: str) -> None:
    refuse_unknown(values, AUTOSCALING, where)
    for key, value in values.items():
        if not has_kind(value, int) or value < 1:
            raise ConfigError(f"{where}.{key} must be a whole number of at least 1, got {value!r}")


def check_canary(values: dict, where: str) -> None:
    CanaryPolicy.from_settings(values, where)


def check_targets(values: list, where: str) -> None:
    if not values or not all(isinstance(v, str) and v for v in values) or len(set(values)) != len(values):
        raise ConfigError(f"{where} must list environment names, each once, got {values!r}", hint="e.g. [eu, us]")


def check_groups(groups: dict[str, list | None], local: dict[str, bool]) -> None:
    """A group's targets are configured environments that are no group themselves, all of one kind."""
    for name, targets in groups.items():
        for target in targets or []:
            if target not in groups or target == name:
                known = ", ".join(sorted(n for n in groups if n != name))
                raise ConfigError(
                    f"environments.{name}.targets names {target!r}, which is no other environment",
                    hint=f"configure it under environments: (configured: {known})",
                )
            if groups[target]:
                raise ConfigError(f"environments.{name}.targets: {target!r} is a group itself (no nesting)")
        if targets and len({local[t] for t in targets}) > 1:
            raise ConfigError(f"environments.{name}.targets mixes local and cluster environments", hint="one kind")


GITOPS_KEYS = {"repo": None, "branch": "main", "path": ".", "layout": "plain", "pull_request": False, "github": None}
LAYOUTS = ("plain", "kustomize")


def check_gitops(values: dict, where: str) -> None:
    """``{repo, branch: main, path: ., layout: plain|kustomize, pull_request: false, github: OWNER/NAME}``."""
    refuse_unknown(values, GITOPS_KEYS, where, "gitops")
    if not isinstance(values.get("repo"), str) or not values["repo"]:
        raise ConfigError(
            f"{where}.repo must name the repository (a URL or a path)", hint="e.g. git@host:org/deploy.git"
        )
    for key in ("branch", "path", "github"):
        if key in values and not (isinstance(values[key], str) and values[key]):
            raise ConfigError(f"{where}.{key} must be a non-empty string, got {values[key]!r}")
    path = values.get("path", ".")
    if path.startswith("/") or ".." in path.split("/"):
        raise ConfigError(f"{where}.path must be a path inside the repository, got {path!r}")
    one_of(*LAYOUTS)(values.get("layout", "plain"), f"{where}.layout")
    if not isinstance(values.get("pull_request", False), bool):
        raise ConfigError(f"{where}.pull_request must be a boolean (true or false)")
    if "github" in values and not re.fullmatch(r"[\w.-]+/[\w.-]+", values["github"]):
        raise ConfigError(f"{where}.github must be OWNER/NAME, got {values['github']!r}")


ANALYSIS = ("prometheus", "query", "max", "min")  # a Prometheus query a promotion's gate and canary steps read


def check_analysis(values: dict, where: str) -> None:
    """``{prometheus: http(s)://HOST[:PORT][/PATH], query: PROMQL, max: N, min: N}``: a URL, a query, a bound."""
    refuse_unknown(values, ANALYSIS, where, "analysis")
    url, query = values.get("prometheus"), values.get("query")
    if not isinstance(url, str) or not re.match(r"^https?://[^/\s]+", url):
        raise ConfigError(
            f"{where}.prometheus must be the server's URL, got {url!r}", hint="e.g. http://prometheus:9090"
        )
    if not isinstance(query, str) or not query.strip():
        raise ConfigError(f"{where}.query must be a PromQL expression giving one number", hint="e.g. sum(up)")
    bounds = {key: values[key] for key in ("max", "min") if key in values}
    if not bounds:
        raise ConfigError(f"{where} needs max (or min): the bound the query's value must keep")
    for key, value in bounds.items():
        if not has_kind(value, (int, float)) or value != value:
            raise ConfigError(f"{where}.{key} must be a number, got {value!r}")


def check_together(name: str, values: dict) -> None:
    """The rules between an environment's values: automatic promotion without an approval, an autoscaler's
    bounds in order, and ``replicas`` agreeing with them (the HPA owns the count; ``replicas`` is where it
    starts: its ``min_replicas``)."""
    if values.get("targets"):
        others = [key for key in values if key not in GROUP_KEYS]
        if others:
            raise ConfigError(
                f"environments.{name} is a group (targets: it runs nothing itself), so {others[0]} is read nowhere",
                hint=f"set {', '.join(others)} on its targets; a group takes {', '.join(GROUP_KEYS)}",
            )
    elif "waves" in values:
        raise ConfigError(f"environments.{name}.waves says how to promote to targets, and it has none")
    if (values.get("target") == GITOPS) != bool(values.get("gitops")):
        raise ConfigError(
            f"environments.{name}: target gitops and the gitops setting go together (its repository, branch, path)",
            hint=f"set environments.{name}.gitops: {{repo: ..., branch: main, path: ...}} with target: gitops",
        )
    if values.get("target") == GITOPS and values.get("strategy") in ("canary", "shadow", "blue-green"):
        raise ConfigError(
            f"environments.{name}: a gitops environment cannot run vci's {values['strategy']} (vci does not write "
            "to its cluster)",
            hint=f"a controller there (Argo Rollouts, Flagger) can; remove strategy: {values['strategy']}",
        )
    if values.get("auto_promote") and values.get("requires_approval"):
        raise ConfigError(
            f"environments.{name}: auto_promote and requires_approval contradict each other: an automatic "
            "promotion has nobody to approve it",
            hint=f"remove one of them from environments.{name}",
        )
    auto = values.get("autoscaling")
    if not auto:
        return
    where = f"environments.{name}"
    replicas = values.get("replicas")
    if replicas is not None and "min_replicas" in auto and replicas != auto["min_replicas"]:
        raise ConfigError(
            f"{where}: replicas {replicas} and autoscaling.min_replicas {auto['min_replicas']} disagree: with "
            "autoscaling the HPA owns the replica count, from min_replicas up",
            hint=f"remove {where}.replicas, or make it min_replicas",
        )
    start = replicas if replicas is not None else 1
    low, high = auto.get("min_replicas", start), auto.get("max_replicas", max(start, 1) * 4)
    if not 1 <= low <= high:
        raise ConfigError(
            f"{where}.autoscaling: min_replicas {low} and max_replicas {high} are not 1 <= min <= max "
            "(max defaults to 4 x replicas)",
            hint=f"set {where}.autoscaling.max_replicas >= min_replicas",
        )


@dataclass(frozen=True)
class CanaryPolicy:
    """An environment's ``canary:`` settings: the traffic steps and the rules that judge each."""

    steps: tuple[int, ...] = (10, 50, 100)
    interval: float = 60.0
    max_error_rate: float = 0.01
    max_p90_latency_ms: float | None = None
    max_avg_latency_ms: float | None = None
    min_requests: int = 20
    step_timeout: float = 300.0

    @classmethod
    def from_settings(cls, values: dict | None, where: str = "canary") -> CanaryPolicy:
        values = dict(values or {})
        refuse_unknown(values, [f.name for f in fields(cls)], where, "canary")
        steps = values.pop("steps", cls.steps)
        if (
            not isinstance(steps, (list, tuple))
            or not steps
            or not all(has_kind(s, int) and 0 < s <= 100 for s in steps)
            or list(steps) != sorted(set(steps))
        ):
            raise ConfigError(f"{where}.steps must rise within 1..100, got {steps!r}", hint="e.g. [10, 50, 100]")
        for key in ("interval", "step_timeout"):
            if key in values:
                values[key] = parse_seconds(values[key], f"{where}.{key}")
                at_least(0.001, "s")(values[key], f"{where}.{key}")
        _check_numbers(values, where)
        return cls(steps=tuple(steps), **values)


def _check_numbers(values: dict, where: str) -> None:
    rules: dict[str, tuple[Callable[[float], bool], str]] = {
        "max_error_rate": (lambda v: 0 <= v <= 1, "a fraction between 0 and 1 (0.01 is 1 %)"),
        "max_p90_latency_ms": (lambda v: v > 0, "a number of milliseconds above 0"),
        "max_avg_latency_ms": (lambda v: v > 0, "a number of milliseconds above 0"),
        "min_requests": (lambda v: v >= 1 and has_kind(v, int), "a whole number of at least 1"),
    }
    for key, (ok, rule) in rules.items():
        value = values.get(key)
        if value is not None and not (has_kind(value, (int, float)) and ok(value)):
            raise ConfigError(f"{where}.{key} must be {rule}, got {value!r}")


@dataclass(frozen=True)
class ShadowPolicy:
    """An environment's ``shadow:`` settings: what share of live traffic the candidate sees, how its answers
    are compared with production's, and the gate (enough compared, few enough disagreements)."""

    fraction: float = 1.0
    duration: float = 600.0
    min_requests: int = 100
    compare: str = "exact"
    max_disagreement: float = 0.01

    @classmethod
    def from_settings(cls, values: dict | None, where: str = "shadow") -> ShadowPolicy:
        values = dict(values or {})
        refuse_unknown(values, [f.name for f in fields(cls)], where, "shadow")
        if "duration" in values:
            values["duration"] = parse_seconds(values["duration"], f"{where}.duration")
            at_least(0.001, "s")(values["duration"], f"{where}.duration")
        fraction, most = values.get("fraction", cls.fraction), values.get("max_disagreement", cls.max_disagreement)
        if not has_kind(fraction, (int, float)) or not 0 < fraction <= 1:
            raise ConfigError(f"{where}.fraction must be a share of live requests in (0, 1], got {fraction!r}")
        if not has_kind(most, (int, float)) or not 0 <= most <= 1:
            raise ConfigError(f"{where}.max_disagreement must be a rate from 0 to 1, got {most!r}")
        if not has_kind(values.get("min_requests", 1), int) or values.get("min_requests", 1) < 1:
            raise ConfigError(f"{where}.min_requests must be a whole number of at least 1")
        check_comparison(str(values.get("compare", cls.compare)), f"{where}.compare")
        return cls(**values)


def check_comparison(compare: str, where: str) -> None:
    """``exact``, ``tolerance:T`` (T >= 0), ``same_class`` or ``top_k:K`` (K >= 1)."""
    mode, _, arg = compare.partition(":")
    ok = mode in ("exact", "same_class") and not arg
    try:
        ok = ok or (mode == "tolerance" and float(arg) >= 0) or (mode == "top_k" and int(arg) >= 1)
    except ValueError:
        ok = False
    if not ok:
        raise ConfigError(
            f"{where} must be exact, tolerance:T, same_class or top_k:K, got {compare!r}",
            hint="e.g. compare: tolerance:1e-6",
        )


def check_shadow(values: dict, where: str) -> None:
    ShadowPolicy.from_settings(values, where)


@dataclass(frozen=True)
class BlueGreenPolicy:
    """An environment's ``blue_green:`` settings: how long the previous stack stays after the switch (so a
    rollback is one switch back) and whether it waits scaled to zero (a cluster's) or at its size."""

    keep: float = 600.0
    scale_down: bool = False

    @classmethod
    def from_settings(cls, values: dict | None, where: str = "blue_green") -> BlueGreenPolicy:
        values = dict(values or {})
        refuse_unknown(values, [f.name for f in fields(cls)], where, "blue_green")
        if "keep" in values:
            values["keep"] = parse_seconds(values["keep"], f"{where}.keep")
            at_least(0, "s")(values["keep"], f"{where}.keep")
        if "scale_down" in values:
            boolean(values["scale_down"], f"{where}.scale_down")
        return cls(**values)


def check_blue_green(values: dict, where: str) -> None:
    BlueGreenPolicy.from_settings(values, where)
