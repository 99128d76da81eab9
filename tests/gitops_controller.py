"""What Argo CD or Flux does, for tests: apply a git branch's file to a cluster whenever the branch moves.

    with GitopsController(bare_repo, "main", "apps/iris/iris-production.yaml", kubeconfig) as controller:
        ...                          # every commit to main is applied with `kubectl apply` within ~0.3 s
        controller.applied           # the commits applied, in order

Real git reads the branch, real kubectl applies it (``--validate=false``: the test API server has no
openapi); nothing of vci is used, so a test sees what vci committed reach the cluster as a controller's
reconciliation would.
"""

from __future__ import annotations

import subprocess
import threading


class GitopsController:
    def __init__(self, repo, branch: str, path: str, kubeconfig, interval: float = 0.3):
        self.repo, self.branch, self.path, self.kubeconfig, self.interval = repo, branch, path, kubeconfig, interval
        self.applied: list[str] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> GitopsController:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(10)

    def _git(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", "-C", str(self.repo), *args], capture_output=True, text=True, timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            head = self._git("rev-parse", "--verify", "--quiet", f"refs/heads/{self.branch}").stdout.strip()
            if not head or (self.applied and self.applied[-1] == head):
                continue
            manifest = self._git("show", f"{head}:{self.path}")
            if manifest.returncode != 0:
                continue
            done = subprocess.run(
                ["kubectl", "--kubeconfig", str(self.kubeconfig), "apply", "--validate=false", "-f", "-"],
                input=manifest.stdout,
                capture_output=True,
                text=True,
                timeout=60,
            )
            if done.returncode == 0:
                self.applied.append(head)
            else:
                self.errors.append(done.stderr)
