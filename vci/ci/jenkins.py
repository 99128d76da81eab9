"""Jenkins through python-jenkins: upsert a pipeline job, trigger it exactly once, follow its build."""

from __future__ import annotations

import time
from collections.abc import Callable

from ..errors import (
    AuthError,
    ConfigError,
    ConflictError,
    DeployError,
    NotFoundError,
    RemoteError,
    UsageError,
)
from .jenkins_job import TRIGGER_PARAM, Credentials, build_parameters

DEFAULT_TIMEOUT = 30.0


class JenkinsClient:
    """One Jenkins server: python-jenkins's session (basic auth, crumbs, timeouts) with statuses explained."""

    def __init__(self, url: str, credentials: Credentials, *, timeout: float = DEFAULT_TIMEOUT, poll: float = 1.0):
        import jenkins  # python-jenkins imports requests: load it only when a Jenkins command runs

        self.url = url.rstrip("/") + "/"
        self.user = credentials.user
        self.poll = poll
        self.server = jenkins.Jenkins(self.url, credentials.user, credentials.token, timeout=timeout)

    # --- requests ------------------------------------------------------------------------------------
    def request(self, method: str, path: str, *, what: str, ok=(200,), **kwargs):
        """Send one request (crumb added to POSTs) and explain a refusal; ``what`` names the object."""
        import requests

        self.server._maybe_add_auth()
        req = requests.Request(method, self.url + path.lstrip("/"), **kwargs)
        if method == "POST":
            self._add_crumb(req)
        try:
            response = self.server._request(req)
        except requests.Timeout as exc:
            raise RemoteError(
                f"Jenkins at {self.url} did not answer within {self.server.timeout}s",
                hint="raise --timeout or check the server's load",
            ) from exc
        except requests.ConnectionError as exc:
            raise ConfigError(f"cannot reach Jenkins at {self.url}", hint="check --url / JENKINS_URL") from exc
        if response.status_code not in ok:
            raise self._explain(response, what)
        return response

    def _add_crumb(self, req) -> None:
        if self.server.crumb is None:
            response = self.request("GET", "crumbIssuer/api/json", what="the crumb issuer", ok=(200, 404))
            self.server.crumb = response.json() if response.status_code == 200 else False
        if self.server.crumb:
            req.headers[self.server.crumb["crumbRequestField"]] = self.server.crumb["crumb"]

    def _explain(self, response, what: str) -> Exception:
        status, body = response.status_code, response.text[:300]
        if status == 401:
            return AuthError(
                f"Jenkins rejected the credentials of {self.user!r} (401)",
                hint="check JENKINS_USER and JENKINS_TOKEN: use an API token from your Jenkins "
                "user's Security page, not a password",
            )
        if status == 403 and "crumb" in body.lower():
            return AuthError(
                f"Jenkins refused the CSRF crumb for {what} (403)",
                hint="a proxy may drop the session cookie; retry, or check the crumb issuer",
            )
        if status == 403:
            return AuthError(
                f"{self.user!r} may not access {what} on Jenkins (403)",
                hint="grant the user Job/Read, Job/Build and Job/Configure (or Overall/Read)",
            )
        if status == 404:
            return NotFoundError(
                f"{what} does not exist on {self.url} (404)",
                hint="check the job name, or create the job with `vci jenkins setup`",
            )
        if status == 400 and "exists" in body.lower():
            return ConflictError(f"{what} already exists (400)", hint="run `vci jenkins setup` again to update it")
        if status >= 500:
            return RemoteError(
                f"Jenkins failed on {what} ({status}): {body.strip()[:120]}",
                status=status,
                hint="see the Jenkins system log; repeating a trigger with the same "
                "--trigger-id never starts a second build",
            )
        return UsageError(f"Jenkins answered {status} for {what}: {body.strip()[:120]}")

    # --- jobs ----------------------------------------------------------------------------------------
    def upsert_job(self, name: str, config_xml: str) -> str:
        """Create the job or update its config.xml; returns created, updated or unchanged."""
        job = f"job/{_quote(name)}"
        current = self.request("GET", f"{job}/config.xml", what=f"job {name!r}", ok=(200, 404))
        headers = {"Content-Type": "application/xml; charset=utf-8"}
        body = config_xml.encode("utf-8")
        if current.status_code == 404:
            self.request("POST", "createItem", what=f"job {name!r}", params={"name": name}, data=body, headers=headers)
            return "created"
        if _normalise(current.text) == _normalise(config_xml):
            return "unchanged"
        self.request("POST", f"{job}/config.xml", what=f"job {name!r}", data=body, headers=headers)
        return "updated"

    def find_triggered(self, name: str, trigger_id: str) -> dict | None:
        """The queue item or build that a trigger with this id already started, if any."""
        queue = self.request("GET", "queue/api/json", what="the build queue").json()
        for item in queue.get("items", []):
            if (item.get("task") or {}).get("name") == name and build_parameters(item).get(TRIGGER_PARAM) == trigger_id:
                return {"queue_id": item["id"], "build": None}
        tree = "builds[number,url,actions[parameters[name,value]]]{0,50}"
        job = self.request("GET", f"job/{_quote(name)}/api/json", what=f"job {name!r}", params={"tree": tree}).json()
        for build in job.get("builds", []):
            if build_parameters(build).get(TRIGGER_PARAM) == trigger_id:
                return {"queue_id": None, "build": build["number"]}
        return None

    def trigger(self, name: str, parameters: dict, trigger_id: str, attempts: int = 3) -> dict:
        """Queue a build with ``parameters`` in the request body, unless this trigger id already did;
        a failed attempt is retried only after checking that it did not queue anything."""
        body = {**parameters, TRIGGER_PARAM: trigger_id}
        for attempt in range(1, attempts + 1):
            found = self.find_triggered(name, trigger_id)
            if found:
                return {**found, "reused": True}
            try:
                response = self.request(
                    "POST",
                    f"job/{_quote(name)}/buildWithParameters",
                    what=f"job {name!r}",
                    data=body,
                    ok=(201,),
                )
            except RemoteError:
                if attempt == attempts:
                    raise
                time.sleep(self.poll * attempt)
                continue
            return {
                "queue_id": _queue_id(response.headers.get("Location", "")),
                "build": None,
                "reused": False,
            }
        raise AssertionError("unreachable")  # pragma: no cover

    def await_build(self, name: str, queue_id: int, timeout: float) -> int:
        """The build number a queue item became (waits while it is queued)."""
        deadline = time.monotonic() + timeout
        while True:
            item = self.request("GET", f"queue/item/{queue_id}/api/json", what=f"queue item {queue_id}").json()
            if item.get("cancelled"):
                raise DeployError(f"the queued build of {name!r} was cancelled", hint="see the Jenkins queue")
            if item.get("executable"):
                return item["executable"]["number"]
            if time.monotonic() > deadline:
                raise DeployError(
                    f"the build of {name!r} is still queued after {timeout:.0f}s: {item.get('why')}",
                    hint="check the executors, or raise --build-timeout",
                )
            time.sleep(self.poll)

    def stream_console(self, name: str, number: int, write: Callable[[str], None], timeout: float) -> None:
        """Write the build's console as it grows (progressiveText, X-Text-Size/X-More-Data) until it ends."""
        start, deadline = 0, time.monotonic() + timeout
        path = f"job/{_quote(name)}/{number}/logText/progressiveText"
        while True:
            response = self.request("GET", path, what=f"build #{number} of {name!r}", params={"start": start})
            if response.text:
                write(response.text)
            start = int(response.headers.get("X-Text-Size", start))
            if response.headers.get("X-More-Data", "").lower() != "true":
                return
            if time.monotonic() > deadline:
                raise DeployError(f"build #{number} of {name!r} still runs after {timeout:.0f}s")
            time.sleep(self.poll)

    def await_result(self, name: str, number: int, timeout: float) -> dict:
        """The finished build's info (``result``: SUCCESS, UNSTABLE, FAILURE, ABORTED)."""
        deadline = time.monotonic() + timeout
        while True:
            build = self.request(
                "GET",
                f"job/{_quote(name)}/{number}/api/json",
                what=f"build #{number} of {name!r}",
                params={"tree": "number,url,result,building,duration"},
            ).json()
            if not build.get("building") and build.get("result"):
                return build
            if time.monotonic() > deadline:
                raise DeployError(f"build #{number} of {name!r} still runs after {timeout:.0f}s")
            time.sleep(self.poll)


def _quote(name: str) -> str:
    from urllib.parse import quote

    return "/job/".join(quote(part, safe="") for part in name.split("/"))


def _queue_id(location: str) -> int:
    digits = [p for p in location.rstrip("/").split("/") if p.isdigit()]
    if not digits:
        raise RemoteError(f"Jenkins queued the build without a queue item (Location: {location!r})")
    return int(digits[-1])


def _normalise(xml: str) -> str:
    return "".join(line.strip() for line in xml.replace("'1.0'", "'1.1'").splitlines())
