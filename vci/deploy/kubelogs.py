"""The pods' log lines of a Kubernetes environment: read at once, or followed from every pod together."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator

from ..errors import NotFoundError
from ..logview import line_time, select_lines
from .kubeapi import Cluster, api_error
from .rollout import label_selector
from .target import LogLine


def pod_names(cluster: Cluster, deployment: dict) -> list[str]:
    """The pods a Deployment selects (every version of it, as long as they exist)."""
    namespace = deployment["metadata"]["namespace"]
    selector = label_selector(deployment)
    try:
        pods = cluster.core.list_namespaced_pod(namespace, label_selector=selector).items
    except Exception as exc:
        raise api_error(exc, f"list the pods of {deployment['metadata']['name']}") from exc
    return sorted(pod.metadata.name for pod in pods)


def read_logs(
    cluster: Cluster, deployment: dict, since: float | None, tail: int | None, follow: bool
) -> Iterator[LogLine]:
    """Every pod's lines in time order; with ``follow``, then new lines of each as they come."""
    namespace, pods = deployment["metadata"]["namespace"], pod_names(cluster, deployment)
    if not pods:
        raise NotFoundError(
            f"no pod of {deployment['metadata']['name']} runs in {namespace}",
            hint=f"kubectl -n {namespace} describe deployment {deployment['metadata']['name']}",
        )
    options = {"since_seconds": max(1, int(time.time() - since) + 1)} if since is not None else {}
    if follow:  # each pod's stream starts with what it has (its last ``tail`` lines), then goes on
        yield from _follow(cluster, namespace, pods, since, {**options, **({"tail_lines": tail} if tail else {})})
        return
    lines: list[tuple[str | None, str]] = []
    for pod in pods:
        lines.extend((pod, line) for line in _read(cluster, namespace, pod, **options).splitlines())
    for source, line in select_lines(lines, since, tail):
        yield LogLine(source, line)


def _read(cluster: Cluster, namespace: str, pod: str, **options) -> str:
    try:
        raw = cluster.core.read_namespaced_pod_log(pod, namespace, _preload_content=False, **options).data
    except Exception as exc:
        raise api_error(exc, f"read the log of pod {pod}") from exc
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw or "")


def _follow(cluster: Cluster, namespace: str, pods: list[str], since: float | None, options: dict) -> Iterator[LogLine]:
    """Each pod's ``follow=true`` stream (one thread each), merged as lines arrive, until every one ends."""
    found: queue.Queue = queue.Queue()
    for pod in pods:
        threading.Thread(target=_stream, args=(cluster, namespace, pod, options, found), daemon=True).start()
    running = len(pods)
    while running:
        item = found.get()
        if isinstance(item, Exception) and getattr(item, "status", None) != 404:  # 404: the pod went away
            raise api_error(item, "follow the pods' logs")
        if item is None or isinstance(item, Exception):
            running -= 1
        elif since is None or (line_time(item.text) or since) >= since:
            yield item


def _stream(cluster: Cluster, namespace: str, pod: str, options: dict, found: queue.Queue) -> None:
    try:
        response = cluster.core.read_namespaced_pod_log(pod, namespace, follow=True, _preload_content=False, **options)
        pending = b""
        for chunk in response.stream(4096):
            pending += chunk
            *whole, pending = pending.split(b"\n")
            for line in whole:
                found.put(LogLine(pod, line.decode("utf-8", "replace")))
    except Exception as exc:  # the stream's end, reported to the reader
        found.put(exc)
    else:
        found.put(None)
