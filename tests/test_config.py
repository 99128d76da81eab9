"""Settings precedence (file < VCI_* < flags), named environments and clear errors for bad settings."""

import pytest

from vci.config import load_settings
from vci.errors import ConfigError


def write(tmp_path, text, name="vci.yaml"):
    (tmp_path / name).write_text(text)


def test_defaults_without_a_file(tmp_path):
    s = load_settings(cwd=tmp_path, environ={})
    assert s.store == str(tmp_path / ".vci")
    assert s.state_dir == tmp_path / ".vci" / "state"
    assert set(s.environments) == {"staging", "production"}
    assert s.environment().name == "staging" and s.environment().is_local


def test_file_then_environ_then_flags(tmp_path):
    write(
        tmp_path,
        "project: iris\nstore: s3://bucket/vci\nenvironments:\n"
        "  production: {target: kubernetes, namespace: ml-prod, replicas: 2}\n",
    )
    s = load_settings(cwd=tmp_path, environ={})
    assert (s.project, s.store) == ("iris", "s3://bucket/vci")
    assert s.state_dir == tmp_path / ".vci" / "state"  # state stays local when the store is S3
    prod = s.environment("production")
    assert prod.target == "kubernetes" and prod.replicas == 2
    env = {"VCI_PROJECT": "iris2", "VCI_PRODUCTION_NAMESPACE": "other", "VCI_PRODUCTION_REPLICAS": "5"}
    s = load_settings(cwd=tmp_path, environ=env)
    assert s.project == "iris2"
    assert s.environment("production").namespace == "other"
    assert s.environment("production").replicas == 5
    s = load_settings({"project": "flagged", "store": "elsewhere"}, cwd=tmp_path, environ=env)
    assert s.project == "flagged" and s.store == str(tmp_path / "elsewhere")


def test_pyproject_tool_section(tmp_path):
    write(
        tmp_path, '[tool.vci]\nproject = "from-toml"\n[tool.vci.environments.qa]\ntarget = "local"\n', "pyproject.toml"
    )
    s = load_settings(cwd=tmp_path, environ={})
    assert s.project == "from-toml" and "qa" in s.environments and s.source.endswith("[tool.vci]")


def test_vci_yaml_wins_over_pyproject(tmp_path):
    write(tmp_path, '[tool.vci]\nproject = "toml"\n', "pyproject.toml")
    write(tmp_path, "project: yaml\n")
    assert load_settings(cwd=tmp_path, environ={}).project == "yaml"


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("stor: x\n", "unknown setting 'stor'"),
        ("environments:\n  staging: {target: cloud}\n", "target must be one of"),
        ("environments:\n  staging: {replicas: two}\n", "replicas must be an integer"),
        ("environments:\n  staging: {nmespace: x}\n", "unknown setting 'nmespace'"),
        ("project: [unclosed\n", "not valid YAML"),
        ("- a list\n", "must hold a mapping"),
        ("default_environment: qa\n", "unknown environment 'qa'"),
    ],
)
def test_bad_settings_are_clear(tmp_path, text, fragment):
    write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_settings(cwd=tmp_path, environ={})
    assert fragment in str(err.value)


def test_bad_environ_value_and_unknown_environment(tmp_path):
    with pytest.raises(ConfigError, match="VCI_STAGING_REPLICAS"):
        load_settings(cwd=tmp_path, environ={"VCI_STAGING_REPLICAS": "many"})
    with pytest.raises(ConfigError, match="unknown environment 'qa'.*configured: production, staging"):
        load_settings(cwd=tmp_path, environ={}).environment("qa")
    with pytest.raises(ConfigError, match="unsupported store URL scheme"):
        from vci.store import open_store

        open_store("gs://bucket/x")


def test_environments_are_typed_and_refuse_settings_nothing_reads(tmp_path):
    (tmp_path / "vci.yaml").write_text(
        "environments:\n  staging: {target: kubernetes, replicas: 3, resources: {cpu: 250m}}\n"
    )
    staging = load_settings(cwd=tmp_path, environ={}).environment("staging")
    assert (staging.replicas, staging.resources, staging.autoscaling, staging.namespace) == (
        3,
        {"cpu": "250m"},
        {},
        None,
    )
    (tmp_path / "vci.yaml").write_text("environments:\n  staging: {timeout: 5s}\n")  # once accepted, never read
    with pytest.raises(ConfigError, match="unknown setting 'timeout'"):
        load_settings(cwd=tmp_path, environ={})
    (tmp_path / "vci.yaml").write_text("environments:\n  staging: {port: 9000}\n")
    with pytest.raises(ConfigError, match="staging.port is not a setting: a local deployment starts each release"):
        load_settings(cwd=tmp_path, environ={})
