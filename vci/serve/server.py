"""Run the model server: bind, load the model in the background, serve HTTP (and gRPC), drain on SIGTERM."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import shutil
import signal
import socket
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

from ..errors import ServeError, UsageError
from ..files import write_replacing
from ..modeldir import in_use
from . import logs
from .auth import Tokens
from .batching import Batcher
from .grpc_server import GrpcFrontEnd
from .http import ROUTES, HttpServer
from .metrics import TRACKS, Metrics
from .payloads import PayloadLog, PayloadSettings
from .service import LOAD_FAILED, ModelService
from .shadow import SHADOW_CONFIG, Mirror
from .sinks import preflight, sink_for
from .tracing import Tracer, TraceSettings
from .v2_grpc import METHODS as V2_METHODS
from .v2_grpc import SERVICE as V2_SERVICE
from .v2_rest import ROUTE_TEMPLATES
from .workers import serve_forked

if TYPE_CHECKING:
    from typing import Unpack  # Python 3.11+; only the type checker reads it

DEFAULT_MAX_BODY = 16 * 1024 * 1024
DEFAULT_MAX_BUFFERED = 64 * 1024 * 1024  # request bodies held at once by one server process
DEFAULT_BACKLOG = 1024  # connections the kernel queues before the server accepts them


class _Options(TypedDict):
    """The settings of :func:`run_server` that each server process (:class:`_Process`) takes."""

    host: str
    grpc_port: int | None
    ready_file: str | os.PathLike | None
    max_body: int
    max_buffered: int
    backlog: int
    threads: int
    inline_below: float
    request_timeout: float
    release_id: str | None
    track: str
    drain_timeout: float
    max_batch_size: int
    max_latency: float
    image_digest: str | None
    model_dir: str
    validate: bool
    auth: Tokens | None
    payloads: PayloadSettings | None
    tracing: TraceSettings | None


def run_server(
    model_dir: str | os.PathLike,
    *,
    host: str = "0.0.0.0",
    port: int = 8080,
    grpc_port: int | None = None,
    workers: int = 1,
    ready_file: str | os.PathLike | None = None,
    work_dir: str | os.PathLike | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY,
    max_buffered_bytes: int = DEFAULT_MAX_BUFFERED,
    backlog: int = DEFAULT_BACKLOG,
    threads: int = 4,
    inline_below: float = 0.002,
    request_timeout: float = 60.0,
    drain_timeout: float = 25.0,
    image_digest: str | None = None,
    release_id: str | None = None,
    max_batch_size: int = 0,
    max_latency: float = 0.005,
    validate: bool = True,
    auth_token_file: str | None = None,
    stop_event: threading.Event | None = None,
) -> None:
    """Serve ``model_dir`` until SIGTERM/SIGINT (or ``stop_event``), then drain and return.

    ``port=0`` / ``grpc_port=0`` pick free ports; ``ready_file`` then receives JSON
    ``{"pid", "host", "port", "grpc_port", "url", "state"}`` once the sockets listen (state
    ``loading``) and again when loading ends (``ready``, ``self_test_failed``). ``threads`` is the size
    of the pool for model calls slower than ``inline_below`` seconds on average (faster ones run on
    the event loop, see vci.serve.http; ``threads=0`` runs all inline). A client has
    ``request_timeout`` seconds to send a whole request (then 408); after a stop signal in-flight
    requests get ``drain_timeout`` seconds. A body is at most ``max_body_bytes`` (413), and the bodies
    over 64 KiB that one process holds at once at most ``max_buffered_bytes`` (503 with Retry-After
    beyond). ``backlog`` is the listen queue (the kernel caps it at net.core.somaxconn).
    ``workers > 1`` forks that many processes sharing the listening socket (call it before starting
    threads). ``image_digest`` and ``release_id`` are reported by /metadata. ``auth_token_file`` (or
    VCI_AUTH_TOKEN_FILE / VCI_AUTH_TOKEN) makes the prediction routes need a bearer token (vci.serve.auth).
    ``validate=False`` skips the check of requests against the run's input schema (vci.serve.schema_check).
    Signal handlers are
    installed only when called from the main thread.
    Raises the load error (e.g. IntegrityError for a tampered blob) when the model cannot be loaded.
    """
    if workers < 1 or threads < 0 or max_body_bytes < 1 or backlog < 1:
        raise UsageError("workers must be >= 1, threads >= 0, max_body_bytes >= 1 and backlog >= 1")
    if max_batch_size < 0 or not 0 <= max_latency <= 60:
        raise UsageError(
            f"max batch size {max_batch_size} or max latency {max_latency * 1000:g} ms is out of range",
            hint="--max-batch-size is 0 (off) or more, --max-latency-ms from 0 to 60000",
        )
    if max_buffered_bytes < max_body_bytes:
        raise UsageError(
            f"max_buffered_bytes ({max_buffered_bytes}) is less than max_body_bytes ({max_body_bytes})",
            hint="raise --max-buffered-bytes / VCI_MAX_BUFFERED_BYTES to at least the body limit",
        )
    if workers > 1 and grpc_port == 0:
        raise UsageError("gRPC with several workers needs a fixed port", hint="set --grpc-port to a number")
    auth = Tokens.from_environment(auth_token_file)  # before binding: an unreadable token file stops the start
    track = os.environ.get("VCI_TRACK") or "stable"  # the metrics' track label, set by the deploy targets
    if track not in TRACKS:
        raise UsageError(f"VCI_TRACK={track!r} is not a track", hint=f"set it to one of {', '.join(TRACKS)}")
    payloads = PayloadSettings.from_environ(os.environ)  # VCI_PAYLOAD_*: vci.serve.payloads
    tracing = TraceSettings.from_environ(os.environ)  # OTEL_*: vci.serve.tracing
    if payloads is not None:
        preflight(payloads)  # an S3 sink in an image without boto3 stops the start, saying so
    sock = bind(host, port, backlog)
    if stop_event is not None and stop_event.is_set():
        sock.close()
        return
    options = _Options(
        host=host,
        grpc_port=grpc_port,
        ready_file=ready_file,
        max_body=max_body_bytes,
        max_buffered=max_buffered_bytes,
        backlog=backlog,
        threads=threads,
        inline_below=inline_below,
        request_timeout=request_timeout,
        release_id=release_id,
        track=track,
        drain_timeout=drain_timeout,
        max_batch_size=max_batch_size,
        max_latency=max_latency,
        image_digest=image_digest,
        model_dir=str(model_dir),
        validate=validate,
        auth=auth,
        payloads=payloads,
        tracing=tracing,
    )
    owned_work = work_dir is None
    work = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="vci-work-"))
    try:
        with in_use(model_dir):  # trimming the model cache passes a directory being served
            if workers == 1:
                asyncio.run(_serve(sock, str(work), stop_event, workers=workers, **options))
            else:
                serve_forked(workers, lambda: asyncio.run(_serve(sock, str(work), None, workers=workers, **options)))
    finally:
        sock.close()
        if owned_work:
            shutil.rmtree(work, ignore_errors=True)


def bind(host: str, port: int, backlog: int = DEFAULT_BACKLOG) -> socket.socket:
    """A listening TCP socket (IPv6 when ``host`` has a colon); ServeError when the port is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server(
            (host, port), family=family, backlog=backlog, dualstack_ipv6=host == "::" and socket.has_dualstack_ipv6()
        )
    except OSError as exc:
        raise ServeError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}", hint="choose a free port with --port / VCI_PORT"
        ) from exc


async def _serve(sock, work_dir: str, stop_event, *, workers: int, **options: Unpack[_Options]) -> None:
    """One server process until its stop signal; raises the load error if the model could not load."""
    index = int(os.environ.get("VCI_WORKER_INDEX", "0"))
    if workers > 1:
        work_dir = os.path.join(work_dir, f"worker-{index}")
    await _Process(sock, work_dir, index, workers, **options).run(stop_event)


class _Process:
    """The parts of one server process. With several workers, worker 0 listens at once (so /healthz
    answers during the load) and the others only once their model is ready: a loading worker never
    takes a predict."""

    def __init__(
        self,
        sock,
        work_dir: str,
        index: int,
        workers: int,
        *,
        host,
        grpc_port,
        ready_file,
        max_body,
        max_buffered,
        backlog,
        threads,
        inline_below,
        request_timeout,
        drain_timeout,
        max_batch_size,
        max_latency,
        image_digest,
        release_id,
        track,
        model_dir,
        validate,
        auth,
        payloads,
        tracing,
    ):
        self.sock, self.index, self.workers, self.host = sock, index, workers, host
        self.grpc_port, self.ready_file, self.drain_timeout = grpc_port, ready_file, drain_timeout
        self.max_body, self.threads, self.model_dir, self.backlog = max_body, threads, model_dir, backlog
        routes = (
            tuple(ROUTES)
            + tuple(f"/vci.Model/{m}" for m in ("Predict", "BatchPredict", "Health"))
            + tuple(f"/{V2_SERVICE}/{m}" for m in V2_METHODS)
            + ROUTE_TEMPLATES
        )
        self.metrics = Metrics(routes, release=release_id, track=track)
        self.service = ModelService(model_dir, work_dir, self.metrics, image_digest, release_id)
        self.service.validate = validate
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="vci-predict") if threads else None
        self.http = HttpServer(
            self.service,
            self.metrics,
            pool=self.pool,
            max_body=max_body,
            max_buffered=max_buffered,
            inline_below=inline_below,
            request_timeout=request_timeout,
        )
        self.http.auth = self.auth = auth
        if payloads is not None:
            self.http.payloads = self.metrics.payloads = PayloadLog(payloads, sink_for(payloads), self.service)
        if tracing is not None:
            self.http.tracer = self.metrics.tracer = Tracer(tracing)
        if os.environ.get(SHADOW_CONFIG):  # a release may mirror this server's traffic (vci.serve.shadow)
            self.http.mirror = self.metrics.mirror = Mirror(os.environ[SHADOW_CONFIG], auth, self.http.payloads)
        if max_batch_size > 0:
            self.service.batching = True
            self.metrics.enable_batching()
            self.http.batcher = Batcher(
                self.service,
                self.metrics,
                self.pool,
                max_batch_size=max_batch_size,
                max_latency=max_latency,
                inline_below=inline_below,
            )
        self.listener: asyncio.Server | None = None
        self.grpc: GrpcFrontEnd | None = None
        self.grpc_bound: int | None = None
        self.stop = asyncio.Event()  # set by a stop signal (see run) or a failed load

    async def run(self, stop_event) -> None:
        loop = asyncio.get_running_loop()
        _stop_signal(loop, stop_event, self.stop)
        if self.index == 0:
            await self.listen()
        threading.Thread(target=self._load, args=(loop,), name="vci-load", daemon=True).start()
        for writer in (self.http.payloads, self.http.tracer):
            if writer is not None:
                writer.start()
        await self.stop.wait()
        await _shutdown(self.listener, self.http, self.grpc, self.pool, self.drain_timeout)
        if self.service.load_error is not None:
            raise self.service.load_error

    def _load(self, loop: asyncio.AbstractEventLoop) -> None:
        """In the load thread: load the model, then tell the loop. A loaded model and the modules it
        imported stay for the process's life: frozen out of the garbage collector's generations, a
        collection on the request path no longer walks them (shorter pauses, a lower p99)."""
        self.service.load()
        if self.service.ready:
            gc.collect()
            gc.freeze()
        loop.call_soon_threadsafe(self.loaded)

    async def listen(self) -> None:
        """Accept HTTP on the shared socket and start gRPC when asked for; log and publish the ports."""
        # create_server listens on the socket again, with its own default of 100 unless told
        self.listener = await asyncio.get_running_loop().create_server(
            self.http.protocol, sock=self.sock, backlog=self.backlog
        )
        if self.grpc_port is not None:
            self.grpc = GrpcFrontEnd(
                self.service,
                self.metrics,
                max_body=self.max_body,
                threads=max(self.threads, 1) * 2,
                reuse_port=self.workers > 1,
                auth=self.auth,
                payloads=self.http.payloads,
                tracer=self.http.tracer,
            )
            self.grpc_bound = self.grpc.start(self.host, self.grpc_port)
        logs.event(
            "listening",
            host=self.host,
            port=self.sock.getsockname()[1],
            grpc_port=self.grpc_bound,
            model_dir=self.model_dir,
            pid=os.getpid(),
            worker=self.index,
        )
        if self.index == 0:
            _write_ready(self.ready_file, self.sock, self.grpc_bound, self.service.state, self.host)

    def loaded(self) -> None:
        """On the loop once loading ended: stop on failure, else publish the state or start listening."""
        if self.service.state == LOAD_FAILED:
            self.stop.set()
        elif self.index == 0:
            _write_ready(self.ready_file, self.sock, self.grpc_bound, self.service.state, self.host)
        elif self.service.ready and not self.stop.is_set():
            asyncio.get_running_loop().create_task(self._listen_late())

    async def _listen_late(self) -> None:
        try:
            await self.listen()
        except ServeError as exc:  # say a gRPC port that another process took meanwhile
            self.service.load_error = exc
            logs.event("listen_failed", "error", error=str(exc), worker=self.index)
            self.stop.set()


def _stop_signal(loop: asyncio.AbstractEventLoop, stop_event: threading.Event | None, stop: asyncio.Event) -> None:
    """Have SIGTERM/SIGINT (main thread only) or the caller's threading.Event set ``stop``."""

    def on_signal(sig: signal.Signals) -> None:
        logs.event("signal", signal=sig.name)
        stop.set()

    def on_stop_event(event: threading.Event) -> None:
        event.wait()
        loop.call_soon_threadsafe(stop.set)

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_signal, sig)
    if stop_event is not None:
        threading.Thread(target=on_stop_event, args=(stop_event,), name="vci-stop", daemon=True).start()


async def _shutdown(listener, http: HttpServer, grpc_front, pool, drain_timeout: float) -> None:
    """Stop accepting, let in-flight requests finish (at most ``drain_timeout`` s), then close."""
    logs.event("draining", in_flight=http.metrics.in_flight, timeout_s=drain_timeout)
    deadline = asyncio.get_running_loop().time() + drain_timeout
    if listener is not None:
        listener.close()
    grpc_done = grpc_front.stop(drain_timeout) if grpc_front else None
    await http.drain(drain_timeout)
    if grpc_done is not None:
        await asyncio.get_running_loop().run_in_executor(None, grpc_done.wait, drain_timeout + 1)
    if pool is not None:
        pool.shutdown(wait=False, cancel_futures=True)
    for writer in (http.payloads, http.tracer):  # the requests just answered: their records and spans
        if writer is not None:
            left = max(deadline - asyncio.get_running_loop().time(), 0.5)
            await asyncio.get_running_loop().run_in_executor(None, writer.close, left)
    logs.event("stopped")


def _write_ready(ready_file, sock, grpc_port, state: str, host: str) -> None:
    """Atomically write the ready file (JSON) so a launcher learns the ports and the state."""
    if not ready_file:
        return
    port = sock.getsockname()[1]
    shown = "127.0.0.1" if host in ("", "0.0.0.0") else ("::1" if host == "::" else host)
    url_host = f"[{shown}]" if ":" in shown else shown
    data = {
        "pid": int(os.environ.get("VCI_SUPERVISOR_PID", os.getpid())),
        "host": host,
        "port": port,
        "grpc_port": grpc_port,
        "url": f"http://{url_host}:{port}",
        "state": state,
    }
    path = Path(ready_file)
    write_replacing(path, json.dumps(data))
