"""Settings that are accepted are used and make sense: each case here was accepted (or crashed) before.

Unknown keys name the nearest known one; a Kubernetes setting on a local environment says the target
cannot honour it; values of the wrong type or that contradict each other are refused with the rule.
"""

import re
from pathlib import Path

import pytest
import yaml

from vci.config import load_settings
from vci.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
KUBE = {"target": "kubernetes", "namespace": "ml"}


def load(tmp_path, config: dict, environ=None):
    (tmp_path / "vci.yaml").write_text(yaml.safe_dump(config))
    return load_settings(cwd=tmp_path, environ=environ or {})


def refused(tmp_path, config: dict, fragment: str, environ=None) -> str:
    with pytest.raises(ConfigError) as err:
        load(tmp_path, config, environ)
    assert fragment in str(err.value), str(err.value)
    assert err.value.exit_code == 3
    return str(err.value)


@pytest.mark.parametrize(
    "config, fragment",
    [
        ({"projetc": "iris"}, "did you mean 'project'?"),
        ({"environments": {"staging": {"namepsace": "x"}}}, "did you mean 'namespace'?"),
        ({"environments": {"s": {**KUBE, "autoscaling": {"max_replica": 3}}}}, "did you mean 'max_replicas'?"),
        ({"environments": {"s": {**KUBE, "network_policy": {"from_namespace": ["a"]}}}}, "'from_namespaces'?"),
        ({"environments": {"s": {"canary": {"step": [10]}}}}, "unknown canary setting 'step'"),
        ({"environments": {"s": {**KUBE, "ingress": {"hosts": "a.example.com"}}}}, "did you mean 'host'?"),
    ],
)
def test_unknown_keys_name_the_nearest_known_one(tmp_path, config, fragment):
    refused(tmp_path, config, fragment)


@pytest.mark.parametrize(
    "key, value",
    [
        ("replicas", 3),
        ("namespace", "ml"),
        ("autoscaling", {"max_replicas": 4}),
        ("resources", {"cpu": "1"}),
        ("repository", "registry.example.com/ml/iris"),
        ("image_pull_secret", "login"),
        ("prestop_delay", "5s"),
        ("network_policy", False),
        ("ingress", {"host": "iris.example.com"}),
        ("insecure", True),
        ("base_image", "python:3.11-slim"),
    ],
)
def test_a_kubernetes_setting_on_a_local_environment_is_refused(tmp_path, key, value):
    """Before, each was accepted and ignored: a local environment runs one server process."""
    message = refused(
        tmp_path, {"environments": {"staging": {key: value}}}, f"environments.staging.{key} is a Kubernetes"
    )
    assert "local environment" in message and "set target: kubernetes" in message
    load(tmp_path, {"environments": {"staging": {**KUBE, key: value}}})  # a cluster's environment honours it


def test_a_variable_for_a_setting_the_target_cannot_honour_is_refused(tmp_path):
    refused(tmp_path, {}, "production.namespace is a Kubernetes setting", {"VCI_PRODUCTION_NAMESPACE": "ml"})


def test_port_is_explained(tmp_path):
    message = refused(tmp_path, {"environments": {"staging": {"port": 9000}}}, "staging.port is not a setting")
    assert "free port" in message and "vci serve RUN --port" in message


@pytest.mark.parametrize(
    "values, fragment",
    [
        ({"autoscaling": {"min_replicas": 5, "max_replicas": 3}}, "min_replicas 5 and max_replicas 3 are not 1 <= min"),
        ({"autoscaling": {"min_replicas": 9}}, "min_replicas 9 and max_replicas 4"),  # max: 4 x replicas (1)
        ({"replicas": 3, "autoscaling": {"min_replicas": 2}}, "replicas 3 and autoscaling.min_replicas 2 disagree"),
        ({"replicas": 0, "autoscaling": {"cpu": 70}}, "min_replicas 0 and max_replicas 4"),
        ({"autoscaling": {"cpu": 0}}, "autoscaling.cpu must be a whole number of at least 1"),
        ({"autoscaling": {"min_replicas": "2"}}, "autoscaling.min_replicas must be a whole number"),
        ({"replicas": -1}, "replicas must be at least 0"),
        ({"resources": {"requests": {"memory": "2Gi"}, "limits": {"memory": "1Gi"}}}, "request 2Gi is above its limit"),
        ({"resources": {"cpu": "1", "limits": {"memory": "1Gi"}}}, "mixes requests/limits with cpu"),
        ({"resources": {"memroy": "1Gi"}}, "unknown resource 'memroy'"),
        ({"resources": {"cpu": "lots"}}, "cpu: invalid quantity 'lots'"),
        ({"resources": {"requests": "1Gi"}}, "requests must be a mapping"),
        ({"progress_deadline": 0}, "progress_deadline must be at least 1s"),
        ({"env": {"DEBUG": True}}, "env.DEBUG must be a string or a number"),
        ({"env": {"VCI_PORT": "9000"}}, "env.VCI_PORT is set by vci itself"),
        ({"env": {"1BAD": "x"}}, "'1BAD' is not a variable name"),
        ({"env": {"DB_SECRET": "hunter2"}}, "env.DB_SECRET looks like a secret"),
        ({"env": {"VCI_DRAIN_TIMEOUT": "long"}}, "VCI_DRAIN_TIMEOUT is not a duration"),
        ({"labels": {"team": True}}, "labels: invalid entry 'team': True"),
        ({"labels": {"vci.dev/track": "x"}}, "labels: may not set 'vci.dev/track'"),
        ({"pod_annotations": {"bad key!": "x"}}, "pod_annotations: invalid entry 'bad key!'"),
        ({"namespace": "ML"}, "'ML' is not a namespace name"),
        ({"image_pull_secret": "Login_Secret"}, "'Login_Secret' is not a Secret name"),
        ({"platform": "amd64"}, "'amd64' is not a platform"),
        ({"platform": "linux/amd64,arm64"}, "'linux/amd64,arm64' is not a platform"),
        ({"platform": "linux/amd64,linux/amd64"}, "names a platform twice"),
        ({"network_policy": "yes"}, "network_policy must be a boolean or a mapping"),
        ({"network_policy": {"from_namespaces": "ingress"}}, "from_namespaces must be a list"),
        ({"network_policy": {"from_namespaces": ["Ingress_NS"]}}, "'Ingress_NS' is not a namespace name"),
        ({"network_policy": {"from_cidrs": ["10.0.0.0/33"]}}, "'10.0.0.0/33' is not a CIDR"),
        ({"ingress": {"class": "nginx"}}, "ingress: host is required"),
        ({"ingress": {"host": "Iris.example.com"}}, "host 'Iris.example.com' is not a DNS name"),
        ({"ingress": {"host": "a.*.example.com"}}, "host 'a.*.example.com' is not a DNS name"),
        ({"ingress": {"host": "10.0.0.1"}}, "host '10.0.0.1' is an IP address"),
        (
            {"ingress": {"host": "a.example.com", "class": "Nginx_Public"}},
            "class 'Nginx_Public' is not an IngressClass",
        ),
        ({"ingress": {"host": "a.example.com", "tls_secret": "TLS"}}, "tls_secret 'TLS' is not a Secret name"),
        ({"ingress": {"host": "a.example.com", "path": "api"}}, "path 'api' must be absolute"),
        ({"ingress": {"host": "a.example.com", "path": "/api/../admin"}}, "may not contain '/../'"),
        ({"ingress": {"host": "a.example.com", "path": "/api/."}}, "path '/api/.' may not contain '/.'"),
        ({"ingress": {"host": 8}}, "ingress: host must be a string, got 8"),
        ({"ingress": "iris.example.com"}, "ingress must be a mapping"),
        ({"canary": {"steps": [50, 10]}}, "canary.steps must rise within 1..100"),
        ({"canary": {"steps": [10, 150]}}, "canary.steps must rise within 1..100"),
        ({"canary": {"max_error_rate": 5}}, "canary.max_error_rate must be a fraction between 0 and 1"),
        ({"canary": {"min_requests": 0}}, "canary.min_requests must be a whole number of at least 1"),
        ({"canary": {"interval": "0s"}}, "canary.interval must be at least"),
        ({"strategy": "rolling"}, "strategy must be one of direct, canary, shadow, blue-green"),
        ({"batching": {"max_batch_size": 0}}, "batching.max_batch_size must be a whole number of at least 1"),
        ({"batching": {"max_batch_size": 2.5}}, "batching.max_batch_size must be a whole number"),
        ({"batching": {"max_batch_size": True}}, "batching.max_batch_size must be a whole number"),
        ({"batching": {"max_latency_ms": -1}}, "batching.max_latency_ms must be a number of milliseconds from 0"),
        ({"batching": {"max_latency_ms": "5ms"}}, "batching.max_latency_ms must be a number of milliseconds"),
        ({"batching": {"max_size": 8}}, "did you mean 'max_batch_size'?"),
        ({"batching": 32}, "batching must be a mapping"),
        ({"env": {"VCI_MAX_BATCH_SIZE": "8"}}, "env.VCI_MAX_BATCH_SIZE comes from the batching setting"),
        ({"auth": {}}, "auth names where the tokens are: secret: NAME"),
        ({"auth": {"secret": "t", "token_file": "/t"}}, "auth names where the tokens are"),
        ({"auth": {"secret": "Tokens_1"}}, "'Tokens_1' is not a Secret name"),
        ({"auth": {"secret": "tokens", "key": "a/b"}}, "auth.key: 'a/b' is not a Secret's key"),
        ({"auth": {"token_file": "tokens.txt"}}, "auth.token_file must be an absolute path"),
        ({"auth": {"secret": "tokens", "all_routes": "yes"}}, "auth.all_routes must be true or false"),
        ({"auth": {"secrets": "tokens"}}, "did you mean 'secret'?"),
        ({"env": {"VCI_AUTH_TOKEN": "x"}}, "env.VCI_AUTH_TOKEN comes from the auth setting"),
        ({"env": {"VCI_TRACK": "canary"}}, "env.VCI_TRACK is set by vci itself"),
        ({"service_monitor": "yes"}, "service_monitor must be"),
        ({"service_monitor": {"interval": "30 seconds"}}, "service_monitor.interval must be a Prometheus duration"),
        ({"service_monitor": {"interval": 30}}, "service_monitor.interval must be a Prometheus duration"),
        ({"service_monitor": {"labels": {"release/": "x"}}}, "service_monitor.labels"),
        ({"service_monitor": {"intervall": "1m"}}, "did you mean 'interval'?"),
    ],
)
def test_values_that_cannot_work_are_refused_with_the_rule(tmp_path, values, fragment):
    refused(tmp_path, {"environments": {"staging": {**KUBE, **values}}}, "environments.staging.")
    refused(tmp_path, {"environments": {"staging": {**KUBE, **values}}}, fragment)


@pytest.mark.parametrize(
    "config, fragment",
    [
        ({"project": 12}, "project name 12 is not valid"),
        ({"project": "../escape"}, "project name '../escape' is not valid"),
        ({"store": ["a"]}, "store must be a string"),
        (
            {"environments": {"Prod": KUBE}},
            "environment 'Prod' is a Kubernetes environment: its name is part of object",
        ),
        ({"environments": {"../x": {}}}, "environment name '../x' is not valid"),
    ],
)
def test_top_level_values_of_the_wrong_kind_are_refused(tmp_path, config, fragment):
    """Before: ``project: 12`` crashed `vci render` with an AttributeError; ``../x`` named state files outside."""
    refused(tmp_path, config, fragment)


def test_a_consistent_cluster_environment_loads(tmp_path):
    staging = {
        **KUBE,
        "replicas": 2,
        "autoscaling": {"min_replicas": 2, "max_replicas": 6, "cpu": 70},
        "resources": {"requests": {"cpu": "500m", "memory": 1073741824}, "limits": {"memory": "1Gi"}},
        "env": {"THREADS": 4, "VCI_DRAIN_TIMEOUT": "10"},
        "canary": {"steps": [10, 50], "interval": "30s", "max_error_rate": 0},
        "network_policy": {"from_namespaces": ["ingress-nginx"], "from_cidrs": ["10.0.0.1/32"]},
        "platform": "linux/amd64, linux/arm64/v8",
    }
    env = load(tmp_path, {"project": "iris", "environments": {"staging": staging}}).environment("staging")
    assert env.autoscaling["max_replicas"] == 6 and env.network_policy["from_namespaces"] == ["ingress-nginx"]
    variables = {"VCI_STAGING_NETWORK_POLICY": "false", "VCI_STAGING_REPLICAS": "2"}
    assert load(tmp_path, {"environments": {"staging": KUBE}}, variables).environment("staging").network_policy is False


def test_every_environment_setting_is_documented():
    """The README's table of environment settings names each key vci reads (and only those)."""
    from vci.config import SETTINGS

    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("| setting | targets |") :].split("\n\n")[0]
    first_cells = [row.split("|")[1] for row in table.splitlines()[2:]]
    documented = {key for cell in first_cells for key in re.findall(r"`([a-z_]+)`", cell)}
    assert documented == set(SETTINGS)


def test_auth_becomes_the_servers_token_file(tmp_path):
    (tmp_path / "vci.yaml").write_text(
        "environments:\n  staging: {target: kubernetes, namespace: ml, auth: {secret: tokens, all_routes: true}}\n"
        "  dev: {auth: {token_file: /run/vci/tokens}}\n"
    )
    settings = load_settings(cwd=tmp_path, environ={})
    assert settings.environment("staging").server_env == {
        "VCI_AUTH_TOKEN_FILE": "/var/run/secrets/vci-auth/token",
        "VCI_AUTH_ALL_ROUTES": "true",
    }
    assert settings.environment("dev").server_env == {"VCI_AUTH_TOKEN_FILE": "/run/vci/tokens"}


def test_env_is_for_every_target(tmp_path):
    (tmp_path / "vci.yaml").write_text("environments:\n  staging: {env: {MODEL_MODE: fast}}\n")
    assert load_settings(cwd=tmp_path, environ={}).environment("staging").env == {"MODEL_MODE": "fast"}


def test_validate_and_allow_schema_change_are_booleans_and_reach_the_server(tmp_path):
    settings = load(tmp_path, {"environments": {"staging": {"validate": False}, "production": {}}})
    assert settings.environment("staging").server_env == {"VCI_VALIDATE": "0"}
    assert settings.environment("production").server_env == {}  # on: the server's default
    assert settings.environment("production").allow_schema_change is True
    refused(tmp_path, {"environments": {"staging": {"allow_schema_change": "no"}}}, "must be a boolean")
    refused(tmp_path, {"environments": {"staging": {"env": {"VCI_VALIDATE": "0"}}}}, "comes from the validate setting")
    strict = load(tmp_path, {}, environ={"VCI_PRODUCTION_ALLOW_SCHEMA_CHANGE": "false"})
    assert strict.environment("production").allow_schema_change is False
