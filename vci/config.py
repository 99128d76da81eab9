"""Settings: vci.yaml (or [tool.vci] in pyproject.toml), then VCI_* variables, then flags, in that order.

A setting is read by some code or refused: an unknown key (naming the nearest known one), a key the
environment's target cannot honour (a Kubernetes setting on a local environment), a value of the wrong
type, and values that contradict each other (vci.envrules) are ConfigErrors when the settings load,
naming the key and the rule, before any command acts on them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from . import envrules as rules
from .envrules import DURATION, GITOPS, KUBERNETES, LOCAL, TARGETS, CanaryPolicy, parse_seconds
from .errors import ConfigError
from .kubevalues import DNS_LABEL, GPU_RESOURCE, INGRESS, NETWORK_PEERS

DEFAULT_STORE = ".vci"
DEFAULT_ENVIRONMENTS = ("staging", "production")
TOP_KEYS = {
    "project": str,
    "store": str,
    "environments": dict,
    "default_environment": str,
    "state_dir": str,
    "signing_key": str,  # where the signing key is: file:PATH, env:VAR or a path (vci.sign.keys.configured_signer)
}
EVERY, CLUSTER = TARGETS, (KUBERNETES, GITOPS)  # a gitops environment renders what a cluster would run
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")  # a project or environment name, as vci.runs.PROJECT
NOT_SETTINGS = {  # keys people try, and why vci has none
    "port": "a local deployment starts each release beside the one it replaces, on a free port (`vci status` "
    "prints its URL; `vci serve RUN --port N` serves on a fixed one); a cluster's Service listens on port 80",
}
NESTED = {
    "autoscaling": rules.AUTOSCALING,
    "network_policy": NETWORK_PEERS,
    "ingress": INGRESS,
}  # keys refused with a suggestion
__all__ = ["CanaryPolicy", "ConfigError", "Environment", "Settings", "load_settings", "parse_seconds"]


def _setting(kind, default: Any = None, *, targets: tuple[str, ...] = EVERY, check: rules.Check | None = None) -> Any:
    """A field of Environment that vci.yaml may set: its type there, the targets that honour it, its check."""
    meta = {"kind": kind, "targets": targets, "check": check}
    if kind is dict:
        return field(default_factory=dict, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class Environment:
    """One named deployment environment (staging, production, ...), each setting typed and validated."""

    name: str
    target: str = _setting(str, LOCAL, check=rules.one_of(*TARGETS))  # local (a server process) or kubernetes
    repository: str | None = _setting(str, targets=CLUSTER)  # where a cluster's images are pushed and copied to
    namespace: str | None = _setting(str, targets=CLUSTER, check=rules.check_namespace)
    context: str | None = _setting(str, targets=CLUSTER)  # kubeconfig context
    kubeconfig: str | None = _setting(str, targets=CLUSTER)
    replicas: int = _setting(int, 1, targets=CLUSTER, check=rules.at_least(0))
    resources: dict = _setting(dict, targets=CLUSTER, check=rules.check_resources)  # {cpu, memory} or requests/limits
    autoscaling: dict = _setting(
        dict, targets=CLUSTER, check=rules.check_autoscaling
    )  # {min/max_replicas, cpu, memory}
    requires_approval: bool = _setting(bool, False)
    canary: dict = _setting(dict, check=rules.check_canary)  # CanaryPolicy settings
    shadow: dict = _setting(dict, check=rules.check_shadow)  # ShadowPolicy settings (--strategy shadow)
    strategy: str | None = _setting(str, check=rules.one_of(*rules.STRATEGIES))  # how a promotion rolls out
    blue_green: dict = _setting(dict, check=rules.check_blue_green)  # {keep, scale_down}: --strategy blue-green
    min_soak: int | float | str | None = _setting(DURATION, check=rules.at_least(0, "s"))  # before promoting from it
    auto_promote: bool = _setting(bool, False)  # `vci promote --auto` may promote into it
    analysis: dict = _setting(dict, check=rules.check_analysis)  # {prometheus, query, max}: vci.release.analysis
    env: dict = _setting(dict, check=rules.check_env)  # the server's environment variables (a pod's, a local process's)
    batching: dict = _setting(dict, check=rules.check_batching)  # {max_batch_size, max_latency_ms}; {}: off
    payload_log: dict = _setting(dict, check=rules.check_payload_log)  # {sink, sample, include, redact}: serving.md
    validate: bool = _setting(bool, True, check=rules.boolean)  # the server checks requests (422); false: off
    allow_schema_change: bool = _setting(bool, True, check=rules.boolean)  # false: promotion refuses a new input schema
    auth: dict = _setting(dict, check=rules.check_auth)  # bearer tokens: {secret: NAME} or {token_file: PATH}
    verify: dict = _setting(dict, check=rules.check_verify)  # {keys, require, provenance}: vci.trust.Policy
    labels: dict = _setting(dict, targets=CLUSTER, check=rules.metadata(label=True))  # on every object and pod
    pod_annotations: dict = _setting(dict, targets=CLUSTER, check=rules.metadata(label=False))
    pod_labels: dict = _setting(dict, targets=CLUSTER, check=rules.metadata(label=True))
    insecure: bool | None = _setting(bool, targets=CLUSTER)  # plain-HTTP / unverified registry
    base_image: str | None = _setting(str, targets=CLUSTER)
    platform: str | None = _setting(str, targets=CLUSTER, check=rules.check_platform)  # default linux/amd64
    image_pull_secret: str | None = _setting(str, targets=CLUSTER, check=rules.check_secret_name)
    # placement and hardware (vci.deploy.manifests): resources' gpu is asked for as gpu_resource's limit
    gpu_resource: str = _setting(str, GPU_RESOURCE, targets=CLUSTER, check=rules.check_gpu_resource)
    node_selector: dict = _setting(dict, targets=CLUSTER, check=rules.check_node_selector)
    tolerations: list | None = _setting(list, targets=CLUSTER, check=rules.check_tolerations)
    affinity: dict = _setting(dict, targets=CLUSTER, check=rules.check_affinity)  # beside vci's spread term
    priority_class: str | None = _setting(str, targets=CLUSTER, check=rules.check_object_name)
    service_account: str | None = _setting(str, targets=CLUSTER, check=rules.check_object_name)
    progress_deadline: int | float | str | None = _setting(DURATION, targets=CLUSTER, check=rules.at_least(1, "s"))
    prestop_delay: int | float | str | None = _setting(DURATION, targets=CLUSTER, check=rules.at_least(0, "s"))
    network_policy: bool | dict | None = _setting(  # None: ingress from the namespace only; false: none rendered
        (bool, dict), targets=CLUSTER, check=rules.check_network_policy
    )
    ingress: dict = _setting(dict, targets=CLUSTER, check=rules.check_ingress)  # {host, class, tls_secret, path}
    service_monitor: bool | dict | None = _setting(  # a Prometheus Operator ServiceMonitor: true or {interval, labels}
        (bool, dict), targets=CLUSTER, check=rules.check_service_monitor
    )
    gitops: dict = _setting(dict, targets=(GITOPS,), check=rules.check_gitops)  # {repo, branch, path, layout, ...}
    targets: list | None = _setting(list, check=rules.check_targets)  # a group: promoted in waves to these
    waves: str | None = _setting(str, check=rules.one_of(*rules.WAVES))  # how: sequential (one after another)

    @property
    def is_local(self) -> bool:
        return self.target == LOCAL

    @property
    def is_group(self) -> bool:
        """A group of environments (``targets``): promoted in waves, nothing of its own runs."""
        return bool(self.targets)

    @property
    def server_env(self) -> dict:
        """The model server's variables: the ``env`` setting and those that carry ``batching``, ``auth``,
        ``payload_log`` and ``validate``."""
        return {
            **self.env,
            **rules.batching_env(self.batching),
            **rules.auth_env(self.auth),
            **rules.payload_log_env(self.payload_log, self.name),
            **rules.validate_env(self.validate),
        }


SETTINGS = {f.name: f.metadata for f in fields(Environment) if "kind" in f.metadata}
ENV_KEYS = {name: meta["kind"] for name, meta in SETTINGS.items()}


@dataclass
class Settings:
    project: str | None
    store: str
    state_dir: Path
    environments: dict[str, Environment]
    default_environment: str = "staging"
    source: str | None = None
    signing_key: str | None = None  # file:PATH, env:VAR or a path (relative to vci.yaml); VCI_SIGNING_KEY wins

    @property
    def base_dir(self) -> Path | None:
        """The directory of the settings file, against which relative key paths are read."""
        return Path(self.source.split(" [")[0]).parent if self.source else None

    def environment(self, name: str | None = None) -> Environment:
        name = name or self.default_environment
        try:
            return self.environments[name]
        except KeyError:
            known = ", ".join(sorted(self.environments))
            raise ConfigError(
                f"unknown environment {name!r} (configured: {known})", hint="add it under environments: in vci.yaml"
            ) from None


def load_settings(
    flags: Mapping[str, Any] | None = None, *, cwd: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Merge defaults < file < VCI_* variables < ``flags`` into Settings."""
    cwd = Path(cwd or os.getcwd())
    environ = os.environ if environ is None else environ
    raw, source = _read_file(cwd, environ)
    _merge(raw, _from_environ(environ, raw))
    _merge(raw, {k: v for k, v in (flags or {}).items() if v is not None})
    return _build(raw, cwd, source)


def _read_file(cwd: Path, environ: Mapping[str, str]) -> tuple[dict, str | None]:
    explicit = environ.get("VCI_CONFIG")
    candidates = [Path(explicit)] if explicit else [cwd / "vci.yaml", cwd / "vci.yml"]
    for path in candidates:
        if path.is_file():
            import yaml

            try:
                data = yaml.safe_load(path.read_text()) or {}
            except yaml.YAMLError as exc:
                raise ConfigError(f"{path} is not valid YAML: {exc}".replace("\n", " ")) from exc
            if not isinstance(data, dict):
                raise ConfigError(f"{path} must hold a mapping of settings")
            return data, str(path)
        if explicit:
            raise ConfigError(f"VCI_CONFIG names {path}, which does not exist")
    pyproject = cwd / "pyproject.toml"
    if pyproject.is_file():
        import tomllib

        try:
            data = tomllib.loads(pyproject.read_text()).get("tool", {}).get("vci")
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{pyproject} is not valid TOML: {exc}") from exc
        if data:
            return dict(data), f"{pyproject} [tool.vci]"
    return {}, None


def _from_environ(environ: Mapping[str, str], raw: dict) -> dict:
    out: dict[str, Any] = {}
    for key in ("store", "project", "default_environment", "state_dir"):
        if environ.get("VCI_" + key.upper()):
            out[key] = environ["VCI_" + key.upper()]
    configured = raw.get("environments")
    names = {n for n in configured if isinstance(n, str)} if isinstance(configured, dict) else set()
    for env_name in sorted(names | set(DEFAULT_ENVIRONMENTS)):
        prefix = "VCI_" + env_name.upper().replace("-", "_") + "_"
        for key, kind in ENV_KEYS.items():
            value = environ.get(prefix + key.upper())
            if value is not None:
                out.setdefault("environments", {}).setdefault(env_name, {})[key] = _parse_scalar(
                    value, kind, prefix + key.upper()
                )
    return out


def _parse_scalar(value: str, kind, name: str) -> Any:
    if kind is str or kind is DURATION:
        return value
    import yaml

    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        parsed = value
    if not rules.has_kind(parsed, kind):
        raise ConfigError(f"{name}={value!r} is not {rules.kind_name(kind)}")
    return parsed


def _merge(base: dict, extra: dict) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value


def _build(raw: dict, cwd: Path, source: str | None) -> Settings:
    rules.refuse_unknown(raw, TOP_KEYS, source or "settings")
    project = raw.get("project")
    if project is not None and not (isinstance(project, str) and NAME.match(project)):
        raise ConfigError(  # the words of vci.runs.init's check, which a Run's own project meets too
            f"project name {project!r} is not valid",
            hint="use up to 64 letters, digits, '.', '_' or '-', starting with a letter or digit",
        )
    for key, kind in TOP_KEYS.items():
        if raw.get(key) is not None and not isinstance(raw[key], kind):
            raise ConfigError(f"{key} must be {rules.kind_name(kind)}, got {raw[key]!r}")
    store = str(raw.get("store") or DEFAULT_STORE)
    if "://" not in store or store.startswith("file://"):
        store = str((cwd / store.removeprefix("file://")).resolve())
    local_root = Path(store) if "://" not in store else cwd / DEFAULT_STORE
    state_dir = Path(raw["state_dir"]) if raw.get("state_dir") else local_root / "state"
    envs_raw = raw.get("environments") or {}
    names = list(DEFAULT_ENVIRONMENTS) + [n for n in envs_raw if n not in DEFAULT_ENVIRONMENTS]
    environments = {n: _environment(n, envs_raw.get(n) or {}) for n in names}
    default_env = raw.get("default_environment") or "staging"
    settings = Settings(raw.get("project"), store, state_dir, environments, default_env, source, raw.get("signing_key"))
    settings.environment(default_env)  # refuse an unknown default early
    rules.check_groups(
        {name: env.targets for name, env in environments.items()}, {n: env.is_local for n, env in environments.items()}
    )
    return settings


def _environment(name, values) -> Environment:
    """An Environment from its settings, each checked: key, type, target, value, then the rules between them."""
    where = f"environments.{name}"
    if not isinstance(name, str) or not NAME.match(name):
        raise ConfigError(f"environment name {name!r} is not valid", hint="letters, digits, '_', '.' and '-'")
    if not isinstance(values, dict):
        raise ConfigError(f"environment {name!r} must be a mapping of settings")
    for key in NOT_SETTINGS.keys() & values.keys():
        raise ConfigError(f"{where}.{key} is not a setting: {NOT_SETTINGS[key]}", hint=f"remove {where}.{key}")
    rules.refuse_unknown(values, SETTINGS, where)
    for key, value in values.items():
        kind = SETTINGS[key]["kind"]
        if not rules.has_kind(value, kind):
            raise ConfigError(f"{where}.{key} must be {rules.kind_name(kind)}, got {value!r}")
        if key in NESTED and isinstance(value, dict):
            rules.refuse_unknown(value, NESTED[key], f"{where}.{key}")
        if SETTINGS[key]["check"]:
            SETTINGS[key]["check"](value, f"{where}.{key}")
    target = values.get("target", LOCAL)
    _refuse_unhonoured(name, target, values)
    if target in CLUSTER and not (len(name) <= 63 and DNS_LABEL.match(name)):
        raise ConfigError(
            f"environment {name!r} is a {'GitOps' if target == GITOPS else 'Kubernetes'} environment: its name is part "
            "of object names",
            hint="lower-case letters, digits and '-'",
        )
    rules.check_together(name, values)
    return Environment(name, **values)


def _refuse_unhonoured(name: str, target: str, values: dict) -> None:
    """A setting the environment's target never reads is refused, naming the target that would."""
    unread = [key for key in values if target not in SETTINGS[key]["targets"]]
    if unread:
        honours = SETTINGS[unread[0]]["targets"]
        what = "a Kubernetes setting" if KUBERNETES in honours else f"a {' or '.join(honours)} setting"
        kind = (
            "a local environment (a server process on this machine)" if target == LOCAL else f"a {target} environment"
        )
        raise ConfigError(
            f"environments.{name}.{unread[0]} is {what}, and {name!r} is {kind}, which cannot honour it",
            hint=f"remove {', '.join(unread)} from environments.{name}, or set target: {honours[0]}",
        )
