"""Settings: vci.yaml (or [tool.vci] in pyproject.toml), then VCI_* variables, then flags, in that order."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import ConfigError

DEFAULT_STORE = ".vci"
DEFAULT_ENVIRONMENTS = ("staging", "production")
TOP_KEYS = {"project", "store", "environments", "default_environment", "state_dir"}
DURATION = (int, float, str)  # 5, 5.0, "5s", "2m": read with parse_seconds
TARGETS = ("local", "kubernetes")


def _setting(kind, default: Any = None) -> Any:
    """A field of Environment that vci.yaml may set, with the type it must have there."""
    if kind is dict:
        return field(default_factory=dict, metadata={"kind": dict})
    return field(default=default, metadata={"kind": kind})


@dataclass
class Environment:
    """One named deployment environment (staging, production, ...), each setting typed and validated."""

    name: str
    target: str = _setting(str, "local")  # local (a server process) or kubernetes
    repository: str | None = _setting(str)  # where a cluster's images are pushed and copied to
    namespace: str | None = _setting(str)
    context: str | None = _setting(str)  # kubeconfig context
    kubeconfig: str | None = _setting(str)
    replicas: int = _setting(int, 1)
    resources: dict = _setting(dict)  # {cpu, memory} or {requests: ..., limits: ...}
    autoscaling: dict = _setting(dict)  # {min_replicas, max_replicas, cpu, memory}
    requires_approval: bool = _setting(bool, False)
    canary: dict = _setting(dict)  # CanaryPolicy settings
    strategy: str | None = _setting(str)  # direct or canary: how a promotion rolls out
    env: dict = _setting(dict)  # the container's environment variables
    labels: dict = _setting(dict)  # on every object (and the pods)
    pod_annotations: dict = _setting(dict)
    pod_labels: dict = _setting(dict)
    insecure: bool | None = _setting(bool)  # plain-HTTP / unverified registry
    base_image: str | None = _setting(str)
    platform: str | None = _setting(str)  # the image's platform, default linux/amd64
    image_pull_secret: str | None = _setting(str)
    progress_deadline: int | float | str | None = _setting(DURATION)  # a rollout is stuck after this
    prestop_delay: int | float | str | None = _setting(DURATION)  # a pod keeps serving this long

    @property
    def is_local(self) -> bool:
        return self.target == "local"


ENV_KEYS = {f.name: f.metadata["kind"] for f in fields(Environment) if "kind" in f.metadata}


@dataclass
class Settings:
    project: str | None
    store: str
    state_dir: Path
    environments: dict[str, Environment]
    default_environment: str = "staging"
    source: str | None = None

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
    names = set(DEFAULT_ENVIRONMENTS) | set(raw.get("environments") or {})
    for env_name in names:
        prefix = "VCI_" + env_name.upper().replace("-", "_") + "_"
        for key, kind in ENV_KEYS.items():
            value = environ.get(prefix + key.upper())
            if value is not None:
                out.setdefault("environments", {}).setdefault(env_name, {})[key] = _parse_scalar(
                    value, kind, prefix + key.upper()
                )
    return out


def parse_seconds(value, name: str = "duration") -> float:
    """``60``, ``"60s"``, ``"2m"``, ``"500ms"`` -> seconds (ConfigError naming ``name`` otherwise)."""
    import re

    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?)\s*(ms|s|m|h)?\s*", str(value))
    if not match:
        raise ConfigError(f"{name} is not a duration: {value!r}", hint="e.g. 600, 600s, 10m, 500ms")
    return float(match.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[match.group(2) or "s"]


def _parse_scalar(value: str, kind, name: str) -> Any:
    if kind is str or kind is DURATION:
        return value
    import yaml

    parsed = yaml.safe_load(value)
    if kind is int and isinstance(parsed, int) and not isinstance(parsed, bool):
        return parsed
    if kind is bool and isinstance(parsed, bool):
        return parsed
    if kind is dict and isinstance(parsed, dict):
        return parsed
    raise ConfigError(f"{name}={value!r} is not a valid {kind.__name__}")


def _merge(base: dict, extra: dict) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value


def _build(raw: dict, cwd: Path, source: str | None) -> Settings:
    unknown = set(raw) - TOP_KEYS
    if unknown:
        raise ConfigError(
            f"unknown setting {sorted(unknown)[0]!r} in {source or 'settings'}",
            hint=f"known settings: {', '.join(sorted(TOP_KEYS))}",
        )
    store = str(raw.get("store") or DEFAULT_STORE)
    if "://" not in store or store.startswith("file://"):
        store = str((cwd / store.removeprefix("file://")).resolve())
    local_root = Path(store) if "://" not in store else cwd / DEFAULT_STORE
    state_dir = Path(raw["state_dir"]) if raw.get("state_dir") else local_root / "state"
    envs_raw = raw.get("environments") or {}
    if not isinstance(envs_raw, dict):
        raise ConfigError("environments must be a mapping of name -> settings")
    names = list(DEFAULT_ENVIRONMENTS) + [n for n in envs_raw if n not in DEFAULT_ENVIRONMENTS]
    environments = {n: _environment(n, envs_raw.get(n) or {}) for n in names}
    default_env = raw.get("default_environment") or "staging"
    settings = Settings(raw.get("project"), store, state_dir, environments, default_env, source)
    settings.environment(default_env)  # refuse an unknown default early
    return settings


def _environment(name: str, values: dict) -> Environment:
    if not isinstance(values, dict):
        raise ConfigError(f"environment {name!r} must be a mapping of settings")
    for key, value in values.items():
        kind = ENV_KEYS.get(key)
        if kind is None:
            raise ConfigError(
                f"unknown setting {key!r} in environment {name!r}", hint=f"known: {', '.join(sorted(ENV_KEYS))}"
            )
        if not isinstance(value, kind) or (kind in (int, DURATION) and isinstance(value, bool)):
            raise ConfigError(
                f"environments.{name}.{key} must be a {getattr(kind, '__name__', 'duration')}, got {value!r}"
            )
        if kind is DURATION:
            parse_seconds(value, f"environments.{name}.{key}")
    target = values.get("target", "local")
    if target not in TARGETS:
        raise ConfigError(f"environments.{name}.target must be one of {', '.join(TARGETS)}, got {target!r}")
    return Environment(name, **values)
