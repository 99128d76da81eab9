"""GitHub Actions workflow commands: step outputs, the job summary, log groups, error annotations, masks."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator, Mapping
from typing import TextIO

# Result keys that are secrets whatever command printed them: masked before anything could print them.
SECRET_KEYS = ("password", "token", "secret", "authorization")
# What the job summary shows first, in this order, when a result has it.
SUMMARY_KEYS = (
    "environment",
    "from",
    "to",
    "image",
    "digest",
    "release_id",
    "run_id",
    "endpoint",
    "strategy",
    "outcome",
    "status",
    "reason",
    "passed",
    "checked",
)

SHADOW_KEYS = (  # a shadow promotion's comparison, in this order
    *("compared", "disagreed", "disagreement_rate", "errors", "dropped", "compare", "fraction"),
    *("live_latency_ms", "live_p90_ms", "shadow_latency_ms", "shadow_p90_ms"),
)


def in_github_actions(env: Mapping[str, str] | None = None) -> bool:
    """True when running as a GitHub Actions step (the runner sets GITHUB_ACTIONS=true)."""
    return (env if env is not None else os.environ).get("GITHUB_ACTIONS") == "true"


def escape_data(value: str) -> str:
    """Escape a workflow command's message (``%``, CR and LF would end or corrupt the command)."""
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(value: str) -> str:
    """Escape a workflow command property value (also ``:`` and ``,``, which separate properties)."""
    return escape_data(value).replace(":", "%3A").replace(",", "%2C")


def output_name(key: str) -> str:
    """Step output names use hyphens: ``release_id`` -> ``release-id``."""
    return key.replace("_", "-")


def output_value(value) -> str:
    """Scalars as text (booleans lowercase, None empty), anything else as compact JSON."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    return json.dumps(value, sort_keys=True, default=str)


def format_output(name: str, value: str) -> str:
    """One ``$GITHUB_OUTPUT`` entry as a heredoc whose random delimiter cannot occur in the value."""
    import secrets  # here, not at the top: hashlib and hmac would cost every `vci --help` ~2 ms

    delimiter = f"ghadelimiter_{secrets.token_hex(16)}"
    while delimiter in value or delimiter in name:  # pragma: no cover - 128 random bits
        delimiter = f"ghadelimiter_{secrets.token_hex(16)}"
    return f"{name}<<{delimiter}\n{value}\n{delimiter}\n"


def step_outputs(result: dict) -> dict[str, str]:
    """The step outputs for a command's result: each top-level key (hyphenated) plus ``json``, the whole."""
    outputs = {output_name(k): output_value(v) for k, v in result.items()}
    outputs["json"] = json.dumps(result, sort_keys=True, default=str)
    return outputs


def write_outputs(result: dict, env: Mapping[str, str] | None = None) -> None:
    """Append the result's step outputs to the ``$GITHUB_OUTPUT`` file (nothing when it is not set)."""
    path = (env if env is not None else os.environ).get("GITHUB_OUTPUT")
    if not path:
        return
    with open(path, "a", encoding="utf-8") as f:
        for name, value in step_outputs(result).items():
            f.write(format_output(name, value))


def _cell(value) -> str:
    text = output_value(value)
    return (
        "`" + text.replace("`", "'") + "`"
        if text.startswith("sha256:")
        else text.replace("|", "\\|").replace("\n", " ")
    )


def summary_markdown(command: str, result: dict) -> str:
    """Markdown for the job summary: what the command built/deployed/promoted, its digest and outcome."""
    lines = [f"### vci {command}", "", "| | |", "|---|---|"]
    keys = [k for k in SUMMARY_KEYS if result.get(k) not in (None, "")]
    lines += [f"| {k.replace('_', ' ')} | {_cell(result[k])} |" for k in keys]
    if result.get("layers"):
        lines += ["", "| layer | digest | size |", "|---|---|---|"]
        lines += [
            f"| {layer.get('name', '')} | `{str(layer.get('digest', ''))[:19]}` | {layer.get('size', '')} |"
            for layer in result["layers"]
            if isinstance(layer, dict)
        ]
    if result.get("diff"):
        lines += [
            "",
            "<details><summary>diff</summary>",
            "",
            "```diff",
            str(result["diff"]),
            "```",
            "</details>",
        ]
    if isinstance(result.get("shadow"), dict):  # a shadow promotion's comparison, both sides' latency
        shadow = result["shadow"]
        lines += ["", "| shadow | |", "|---|---|"]
        lines += [f"| {k.replace('_', ' ')} | {shadow[k]} |" for k in SHADOW_KEYS if shadow.get(k) is not None]
    for failure in result.get("failures") or []:
        lines.append(f"- :x: example {failure.get('example')}: {failure.get('problem')}")
    if isinstance(result.get("releases"), list):
        lines += ["", "| release | action | digest | outcome |", "|---|---|---|---|"]
        lines += [
            f"| {r.get('release_id')} | {r.get('action')} | `{str(r.get('digest'))[:19]}` | {r.get('outcome')} |"
            for r in result["releases"][:10]
        ]
    return "\n".join(lines) + "\n\n"


def write_summary(command: str, result: dict, env: Mapping[str, str] | None = None) -> None:
    """Append the result's Markdown to ``$GITHUB_STEP_SUMMARY`` (nothing when it is not set)."""
    path = (env if env is not None else os.environ).get("GITHUB_STEP_SUMMARY")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(summary_markdown(command, result))


def mask(value: str, stream: TextIO | None = None) -> None:
    """Tell the runner to redact ``value`` (each line of it) from every later log line."""
    stream = stream or sys.stderr
    for line in str(value).splitlines():
        if line.strip():
            stream.write(f"::add-mask::{escape_data(line)}\n")
    stream.flush()


def mask_secrets(result: dict, stream: TextIO | None = None) -> None:
    """Mask the values of secret-looking keys of a result before anything prints it."""
    for key, value in result.items():
        if value and any(word in key.lower() for word in SECRET_KEYS):
            mask(output_value(value), stream)


def error_annotation(message: str, title: str = "vci", stream: TextIO | None = None) -> None:
    """An ``::error::`` annotation: shown on the run's page, not only in its log."""
    stream = stream or sys.stderr
    stream.write(f"::error title={escape_property(title)}::{escape_data(message)}\n")
    stream.flush()


@contextlib.contextmanager
def group(title: str, stream: TextIO | None = None) -> Iterator[None]:
    """A collapsible log section (``::group::`` ... ``::endgroup::``) around what the block prints."""
    stream = stream or sys.stderr
    stream.write(f"::group::{escape_data(title)}\n")
    stream.flush()
    try:
        yield
    finally:
        stream.write("::endgroup::\n")
        stream.flush()


def publish(command: str, result: dict, env: Mapping[str, str] | None = None) -> None:
    """What a finished command gives GitHub besides its printed result: step outputs and the job summary."""
    write_outputs(result, env)
    write_summary(command, result, env)
