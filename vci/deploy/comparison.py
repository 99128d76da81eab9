"""A shadow's comparison as the stable servers report it: their stats files (this machine) or their /metrics
(a cluster's pods), summed; and what ``vci status`` shows of a shadow running now.

Each stable server process counts for itself (vci.serve.shadow): where it can, it writes
``<config>.<pid>.stats.json`` beside the mirror's config; always, it exports ``vci_shadow_*_total``
series labelled ``shadow_release``. Counts of another shadow (an earlier release id) are never added.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

SHOWN = ("compared", "disagreed", "errors", "dropped", "disagreement_rate")  # what status shows of the counts
_SAMPLE = re.compile(r'^vci_shadow_(\w+)_total\{[^}]*shadow_release="((?:[^"\\]|\\.)*)"[^}]*\}\s+(\S+)')
_PREDICT = re.compile(r'^vci_request_duration_seconds_(sum|count)\{[^}]*route="/predict"[^}]*\}\s+(\S+)')
NUMBERS = ("compared", "disagreed", "errors", "dropped")


def no_comparison() -> dict[str, Any]:
    """The counts of a shadow before anything was compared (what the stable servers' counts add up to)."""
    return {"compared": 0, "disagreed": 0, "errors": 0, "dropped": 0, "shadow_seconds": 0.0, "disagreements": []}


def _rated(total: dict) -> dict:
    total["disagreement_rate"] = total["disagreed"] / total["compared"] if total["compared"] else None
    return total


def from_stats_files(config: Path, release_id: str) -> dict:
    """The counts of every local server process of the stable release (one stats file each), added up."""
    total = no_comparison()
    for path in config.parent.glob(f"{config.name}.*.stats.json"):
        try:
            counts = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if counts.get("release_id") != release_id:
            continue  # a file of an earlier shadow, or of another release
        for key in (*NUMBERS, "shadow_seconds"):
            total[key] += counts.get(key, 0)
        total["disagreements"] += counts.get("disagreements", [])
    return _rated(total)


def from_metrics(scrapes: dict[str, str], release_id: str) -> dict:
    """The counts of the shadow ``release_id``, summed over the stable servers' /metrics scrapes."""
    total = no_comparison()
    for text in scrapes.values():
        for line in text.splitlines():
            match = _SAMPLE.match(line)
            if not match or match[2] != release_id:
                continue
            if match[1] == "seconds":
                total["shadow_seconds"] += float(match[3])
            elif match[1] in NUMBERS:
                total[match[1]] += int(float(match[3]))
    return _rated(total)


def predict_latency_ms(scrapes: dict[str, str]) -> float | None:
    """The mean /predict latency over the servers' scrapes, in milliseconds (None: none answered)."""
    seconds, count = 0.0, 0
    for text in scrapes.values():
        for line in text.splitlines():
            if match := _PREDICT.match(line):
                if match[1] == "sum":
                    seconds += float(match[2])
                else:
                    count += int(float(match[2]))
    return round(seconds / count * 1000, 3) if count else None


def mirror_config(text: str | None) -> dict | None:
    """The mirror's config (``{url, fraction, compare, release_id}``) from its JSON, None without a shadow."""
    try:
        config = json.loads(text or "null")
    except ValueError:
        return None
    return config if isinstance(config, dict) and config.get("release_id") else None


def shown(config: dict, counts: dict, candidate: str | None, live: dict[str, str], shadow: dict[str, str]) -> dict:
    """A running shadow as ``vci status`` shows it: its release, candidate (a cluster's image, a local run id),
    counts, and the mean /predict latency of the stable servers and of the shadow's (each since it started)."""
    return {
        "release_id": config["release_id"],
        "candidate": candidate,
        "fraction": config.get("fraction"),
        "compare": config.get("compare"),
        **{key: counts[key] for key in SHOWN},
        "live_latency_ms": predict_latency_ms(live),
        "shadow_latency_ms": predict_latency_ms(shadow),
    }
