"""A Jenkins test HTTP server for the calls vci makes: crumbs, jobs' config.xml, parameterised builds through
the queue, progressive console text, and the 401/403/404/500 answers a real Jenkins gives."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit


@dataclass
class Build:
    number: int
    params: dict
    lines: list[str]
    result: str
    started: float = field(default_factory=time.monotonic)
    line_delay: float = 0.05

    def console(self) -> str:
        shown = min(len(self.lines), int((time.monotonic() - self.started) / self.line_delay))
        return "".join(line + "\n" for line in self.lines[:shown])

    @property
    def building(self) -> bool:
        return len(self.console()) < len("".join(line + "\n" for line in self.lines))


@dataclass
class Job:
    name: str
    config_xml: str
    builds: list[Build] = field(default_factory=list)


@dataclass
class QueueItem:
    id: int
    job: str
    params: dict
    ready_at: float
    build: Build | None = None


class JenkinsState:
    """What the server knows; tests read and steer it (``script`` decides a build's console and result)."""

    def __init__(self, users: dict[str, str], readers: set[str] = frozenset()):
        self.users, self.readers = users, set(readers)
        self.jobs: dict[str, Job] = {}
        self.queue: dict[int, QueueItem] = {}
        self.next_queue_id = 100
        self.lock = threading.Lock()
        self.requests: list[tuple[str, str, dict, bytes]] = []
        self.fail_next: list[tuple[str, int]] = []  # (path regex, status): answer the next match with status
        self.lose_next_trigger = False  # queue the build, then answer 502 (a proxy lost Jenkins's answer)
        self.queue_delay = 0.2
        self.script = lambda params: (
            [f"building with {json.dumps(params, sort_keys=True)}", "Finished"],
            "SUCCESS",
        )
        self.secret = secrets.token_hex(8)

    def crumb_for(self, session: str) -> str:
        return hashlib.sha256((self.secret + session).encode()).hexdigest()

    def promote_queue(self) -> None:
        """Queue items whose time came become builds (numbered per job)."""
        now = time.monotonic()
        for item in self.queue.values():
            if item.build is None and now >= item.ready_at and item.job in self.jobs:
                job = self.jobs[item.job]
                lines, result = self.script(item.params)
                item.build = Build(len(job.builds) + 1, item.params, lines, result)
                job.builds.append(item.build)


class JenkinsHandler(BaseHTTPRequestHandler):
    state: JenkinsState

    def log_message(self, *args):  # quiet
        pass

    # --- plumbing ---------------------------------------------------------------------------------
    def _send(self, status: int, body=b"", content_type="text/plain", headers=None):
        data = (
            body if isinstance(body, bytes) else (json.dumps(body) if isinstance(body, (dict, list)) else body).encode()
        )
        self.send_response(status)
        self.send_header("Content-Type", content_type if not isinstance(body, (dict, list)) else "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Jenkins", "2.462.3")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _session(self) -> str:
        match = re.search(r"JSESSIONID=(\w+)", self.headers.get("Cookie", ""))
        return match.group(1) if match else ""

    def _user(self) -> str | None:
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Basic "):
            return None
        user, _, token = base64.b64decode(auth[6:]).decode().partition(":")
        return user if self.state.users.get(user) == token else ""

    def _handle(self, method: str):
        url = urlsplit(self.path)
        path, query = unquote(url.path), {k: v[-1] for k, v in parse_qs(url.query).items()}
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        st = self.state
        with st.lock:
            st.requests.append((method, path, query, body))
            for i, (pattern, status) in enumerate(st.fail_next):
                if re.search(pattern, f"{method} {path}"):
                    st.fail_next.pop(i)
                    return self._send(status, f"<html>Jenkins failed: status {status}</html>", "text/html")
            user = self._user()
            if user == "" or (user is None and path != "/login"):
                return self._send(
                    401,
                    "<html>Unauthorized</html>",
                    "text/html",
                    {"WWW-Authenticate": 'Basic realm="Jenkins"'},
                )
            if method == "POST":
                if user in st.readers:
                    return self._send(403, f"<html>{user} is missing the Job/Build permission</html>", "text/html")
                if self.headers.get("Jenkins-Crumb") != st.crumb_for(self._session()):
                    return self._send(403, "<html>No valid crumb was included in the request</html>", "text/html")
            st.promote_queue()
            return self._route(method, path, query, body)

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    # --- endpoints ----------------------------------------------------------------------------------
    def _route(self, method, path, query, body):
        st = self.state
        if path == "/crumbIssuer/api/json":
            session = self._session() or secrets.token_hex(8)
            return self._send(
                200,
                {"crumb": st.crumb_for(session), "crumbRequestField": "Jenkins-Crumb"},
                headers={"Set-Cookie": f"JSESSIONID={session}; Path=/"},
            )
        if path in ("/api/json", "/"):
            return self._send(200, {"mode": "NORMAL", "jobs": [{"name": n} for n in st.jobs]})
        if path == "/createItem" and method == "POST":
            name = query.get("name", "")
            if name in st.jobs:
                return self._send(400, f"A job already exists with the name '{name}'")
            st.jobs[name] = Job(name, body.decode())
            return self._send(200)
        if path == "/queue/api/json":
            items = [self._queue_json(i) for i in st.queue.values() if i.build is None]
            return self._send(200, {"items": items})
        match = re.fullmatch(r"/queue/item/(\d+)/api/json", path)
        if match:
            item = st.queue.get(int(match.group(1)))
            return self._send(200, self._queue_json(item)) if item else self._send(404, "Not Found")
        match = re.fullmatch(r"/job/([^/]+)(/.*)?", path)
        if not match or match.group(1) not in st.jobs:
            return self._send(404, "<html>Not Found</html>", "text/html")
        return self._job(method, st.jobs[match.group(1)], match.group(2) or "/", query, body)

    def _job(self, method, job, rest, query, body):
        st = self.state
        if rest == "/config.xml":
            if method == "POST":
                job.config_xml = body.decode()
                return self._send(200)
            return self._send(200, job.config_xml, "application/xml")
        if rest == "/api/json":
            builds = [self._build_json(job, b) for b in reversed(job.builds)]
            return self._send(
                200,
                {
                    "name": job.name,
                    "builds": builds,
                    "inQueue": any(i.build is None and i.job == job.name for i in st.queue.values()),
                },
            )
        if rest == "/buildWithParameters" and method == "POST":
            params = {k: v[-1] for k, v in parse_qs(body.decode()).items()}
            item = QueueItem(st.next_queue_id, job.name, params, time.monotonic() + st.queue_delay)
            st.queue[item.id] = item
            st.next_queue_id += 1
            if st.lose_next_trigger:
                st.lose_next_trigger = False
                return self._send(502, "<html>Bad Gateway</html>", "text/html")
            return self._send(201, headers={"Location": f"http://{self.headers['Host']}/queue/item/{item.id}/"})
        match = re.fullmatch(r"/(\d+)/(api/json|logText/progressiveText)", rest)
        build = next((b for b in job.builds if match and b.number == int(match.group(1))), None)
        if build is None:
            return self._send(404, "<html>Not Found</html>", "text/html")
        if match.group(2) == "api/json":
            return self._send(200, self._build_json(job, build))
        text = build.console().encode()
        start = int(query.get("start", 0))
        headers = {"X-Text-Size": str(len(text))}
        if build.building:
            headers["X-More-Data"] = "true"
        return self._send(200, text[start:], "text/plain;charset=UTF-8", headers)

    def _params_action(self, params):
        return {
            "_class": "hudson.model.ParametersAction",
            "parameters": [{"name": k, "value": v} for k, v in params.items()],
        }

    def _queue_json(self, item):
        out = {
            "id": item.id,
            "task": {"name": item.job},
            "actions": [self._params_action(item.params)],
            "cancelled": False,
        }
        if item.build:
            out["executable"] = {"number": item.build.number, "url": f"/job/{item.job}/{item.build.number}/"}
        else:
            out["why"] = "Waiting for next available executor"
        return out

    def _build_json(self, job, build):
        return {
            "number": build.number,
            "url": f"http://{self.headers['Host']}/job/{job.name}/{build.number}/",
            "building": build.building,
            "result": None if build.building else build.result,
            "actions": [self._params_action(build.params)],
        }


class JenkinsServer:
    """``with JenkinsServer(users={"alice": "token"}) as jenkins:`` -> jenkins.url, jenkins.state."""

    def __init__(self, users: dict[str, str], readers: set[str] = frozenset()):
        self.state = JenkinsState(users, readers)
        handler = type("Handler", (JenkinsHandler,), {"state": self.state})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
