"""The Grafana dashboard of vci's model-server metrics (``vci render --grafana``), kept beside this module."""

from __future__ import annotations

import json
from importlib import resources

DASHBOARD = "grafana.json"


def grafana_dashboard() -> dict:
    """The dashboard: panels per release and track over the series vci.serve.metrics and vci.serve.drift export."""
    return json.loads(resources.files(__package__).joinpath(DASHBOARD).read_text(encoding="utf-8"))


def panel_queries(dashboard: dict) -> list[tuple[str, str]]:
    """``(panel title, PromQL)`` of every panel's targets."""
    return [(panel["title"], target["expr"]) for panel in dashboard["panels"] for target in panel.get("targets", [])]
