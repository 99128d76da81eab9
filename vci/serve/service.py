"""The served model: its background load and self-test, its readiness, and JSON-in/JSON-out calls.

Both front ends (HTTP and gRPC) call :meth:`ModelService.call` with the raw request bytes and get a
:class:`Reply` whose status is an HTTP status; the gRPC side maps it to a gRPC code. Failure policy:

- a model directory that fails verification, or a class that cannot be unpickled or instantiated,
  is fatal: the error is logged (``model_load_failed``) and the server exits with the error's exit
  code (9 for a tampered blob), because no retry can fix those bytes;
- a model that loads but whose ``model_test()`` raises stays up, never ready: ``/readyz`` and
  ``/predict`` answer 503 with the reason (``state`` ``self_test_failed``), so a launcher stops waiting at
  once and the logs explain it.

Either failure is logged (with the frames of the user's own code, see vci.serve.logs) before the state
changes, so whoever sees the state can read the reason in the log. A failed call answers per
vci.serve.failures.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from .. import __version__
from ..errors import ModelError, ServeError, VciError
from ..jsonwire import encode_compact
from ..modeldir import load_model, read_manifest
from ..trust import keys_from_environ, verify_model_dir_signature
from . import failures, logs
from .drift import Drift
from .schema_check import input_check
from .tracing import Trace

JSON = "application/json"
LOADING, READY, TEST_FAILED, LOAD_FAILED = "loading", "ready", "self_test_failed", "load_failed"


@dataclass(slots=True)
class Reply:
    """What a route answers: an HTTP status, the body bytes, their content type and extra header lines."""

    status: int
    body: bytes
    content_type: str = JSON
    headers: str = ""  # whole header lines ("Name: value\r\n"), e.g. the V2 binary extension's length


class Codec(Protocol):
    """Another protocol's request to the model and back (one object per request; vci.serve.v2_rest)."""

    def decode(self, service: ModelService, body: bytes, request_id: str) -> Any: ...  # the model's input or a Reply
    def run(self, model: Any, data: Any) -> Any: ...
    def run_batch(self, model: Any, items: list) -> Any: ...
    def encode(self, result: Any, request_id: str) -> Reply: ...


def error_reply(status: int, message: str, request_id: str) -> Reply:
    return Reply(status, json.dumps({"error": message, "request_id": request_id}).encode())


def moving_average(average: float | None, seconds: float) -> float:
    """``average`` with one more timing folded in (weight 0.2; the first timing when there is none): the
    call times that decide whether model calls and batches run on the loop or in the pool."""
    return seconds if average is None else average + 0.2 * (seconds - average)


class ModelService:
    """One model instance shared by all requests, loaded once by :meth:`load`."""

    def __init__(
        self, model_dir: str, work_dir: str, metrics, image_digest: str | None = None, release_id: str | None = None
    ):
        self.model_dir, self.work_dir, self.metrics = model_dir, work_dir, metrics
        self.image_digest, self.release_id = image_digest, release_id
        self.state, self.reason = LOADING, "the model is loading"
        self.load_error: BaseException | None = None
        self.model: Any = None  # an instance of the run's model class, which can be any class
        self.manifest: dict | None = None
        self.digest: str | None = None
        self.predict_seconds: float | None = None  # moving average of a model call; None until one is timed
        # the seam for input schemas: (data, batch) -> why it does not match (answered 422), or None
        self.input_check: Callable[[Any, bool], str | None] | None = None
        self.batching = False  # set when /predict requests are batched: the model must have batch_predict
        self.validate = True  # check requests against the run's input schema (vci.serve.schema_check)
        self.drift: Drift | None = None  # the input and output distributions, once loaded (vci.serve.drift)
        self.openapi: tuple[dict | None, bytes] | None = None  # (manifest, /openapi.json), see vci.serve.docs_page

    @property
    def ready(self) -> bool:
        return self.state == READY

    def load(self) -> None:
        """Verify, unpickle, instantiate and self-test the model; never raises (see the module doc)."""
        start = time.perf_counter()
        try:
            self._verify_signature()
            model, manifest, digest = load_model(self.model_dir, self.work_dir)
        except BaseException as exc:  # noqa: BLE001 - even SystemExit in __init__ must not hang the load
            self.load_error = (
                exc
                if isinstance(exc, VciError)
                else ServeError(
                    f"the model in {self.model_dir} could not be loaded: {type(exc).__name__}: {exc}",
                    hint="check the model class and its artifacts with `vci serve RUN_ID` locally",
                )
            )
            if isinstance(exc, VciError):  # a known refusal (tampered blob, no manifest): no traceback
                logs.event("model_load_failed", "error", error=str(exc), code=exc.code, model_dir=self.model_dir)
            else:
                logs.failure("model_load_failed", exc, model_dir=self.model_dir)
            self.state, self.reason = LOAD_FAILED, str(self.load_error)
            return
        if self.batching and not callable(getattr(model, "batch_predict", None)):
            self._refuse_unbatchable(type(model).__name__)
            return
        self.model, self.manifest, self.digest = model, manifest, digest
        self.input_check = input_check(manifest, self.validate)
        self.drift = Drift.from_manifest(manifest)
        self.drift.start()
        self.metrics.drift = self.drift
        device = self.device
        logs.event(
            "model_loaded",
            model_dir=self.model_dir,
            run_id=manifest.get("id"),
            model_digest=digest,
            seconds=round(time.perf_counter() - start, 3),
            **({"device": device} if device else {}),
        )
        self._self_test()
        self.metrics.model_load_seconds = time.perf_counter() - start
        self.metrics.model_ready = self.ready

    def _verify_signature(self) -> None:
        """With trusted keys given (``VCI_TRUSTED_KEYS``), the run's signature is checked before anything
        is unpickled: a manifest edited in the store, or signed by another key, is never loaded."""
        keys = keys_from_environ()
        if keys:
            manifest, _ = read_manifest(self.model_dir)
            verify_model_dir_signature(self.model_dir, manifest, keys)

    def _refuse_unbatchable(self, class_name: str) -> None:
        self.load_error = ServeError(
            f"batching is on (max batch size above 0) but the model class {class_name} has no batch_predict(items)",
            hint="define batch_predict(items) -> list of results, or turn batching off "
            "(--max-batch-size 0 / VCI_MAX_BATCH_SIZE=0, or remove the environment's batching setting)",
        )
        logs.event("model_load_failed", "error", error=str(self.load_error), code=self.load_error.code)
        self.state, self.reason = LOAD_FAILED, str(self.load_error)

    def _self_test(self) -> None:
        test = getattr(self.model, "model_test", None)
        if test is None:
            self.state, self.reason = READY, "ready"
            logs.event("model_test", result="absent")
            return
        started = time.perf_counter()
        try:
            test()
        except BaseException as exc:  # noqa: BLE001 - a failed self-test of any kind blocks readiness
            logs.failure("model_test", exc, result="failed")
            self.state, self.reason = TEST_FAILED, f"model_test() failed: {type(exc).__name__}: {exc}"
            return
        self.predict_seconds = time.perf_counter() - started
        self.state, self.reason = READY, "ready"
        logs.event("model_test", result="passed", seconds=round(self.predict_seconds, 6))

    @property
    def device(self) -> str | None:
        """Where the model computes, when it says (a framework adapter's ``device``: ``cuda:0``, ``cpu``)."""
        device = getattr(self.model, "device", None)
        return device if isinstance(device, str) else None

    def metadata(self) -> dict:
        manifest = self.manifest or {}
        data = {
            "project": manifest.get("project"),
            "run_id": manifest.get("id"),
            "model_digest": self.digest,
            "vci_version": __version__,
            "state": self.state,
            "model_class": (manifest.get("model") or {}).get("class"),
        }
        if self.device:
            data["device"] = self.device
        if self.image_digest:
            data["image_digest"] = self.image_digest
        if self.release_id:
            data["release_id"] = self.release_id
        return data

    def call(
        self, body: bytes, batch: bool, request_id: str, codec: Codec | None = None, trace: Trace | None = None
    ) -> Reply:
        """Decode ``body``, run predict (or batch_predict) and encode the result; map every failure.
        ``codec`` decodes, calls and encodes another protocol's request (vci.serve.v2_rest's V2 infer);
        ``trace`` (vci.serve.tracing) gets the decode, predict and encode spans.

        Never raises: even a model calling sys.exit() answers 500 and the server goes on."""
        try:
            return self._call(body, batch, request_id, codec, trace)
        except BaseException as exc:  # noqa: BLE001 - the last guard between a model and the server
            return error_reply(500, failures.predict_failed(exc, request_id, batch), request_id)

    def _call(self, body: bytes, batch: bool, request_id: str, codec=None, trace: Trace | None = None) -> Reply:
        begun = time.perf_counter()
        data = self._decode(body, batch, request_id) if codec is None else codec.decode(self, body, request_id)
        started = time.perf_counter()
        if trace is not None:
            trace.spans.append(("decode", begun, started))
        if isinstance(data, Reply):
            return data
        try:
            if codec is not None:
                result = codec.run(self.model, data)
            else:
                result = self._batch(data) if batch else self.model.predict(data)
        except ModelError as exc:
            return error_reply(exc.status, exc.message, request_id)
        except Exception as exc:
            return error_reply(500, failures.predict_failed(exc, request_id, batch), request_id)
        finally:
            ended = self._timed(started)
            if trace is not None:
                trace.spans.append(("predict", started, ended))
        reply = self._encode(result, request_id) if codec is None else codec.encode(result, request_id)
        if self.drift is not None and reply.status == 200:
            self._drifted(data, result, batch, codec is not None)
        if trace is not None:
            trace.span("encode", ended)
        return reply

    def _drifted(self, data: Any, result: Any, batch: bool, tensors: bool) -> None:
        """Offer an answered prediction to the drift statistics (V2's numpy arrays are converted there)."""
        assert self.drift is not None
        if tensors:
            self.drift.offer_tensors(data, result)
        elif batch:
            self.drift.offer_all(data, result)
        else:
            self.drift.offer(data, result)

    def _decode(self, body: bytes, batch: bool, request_id: str) -> Any:
        """The request's JSON value, or the Reply that refuses it (not ready, not JSON, not a list, 422)."""
        if not self.ready:
            return error_reply(503, f"the model is not ready: {self.reason}", request_id)
        try:
            data = json.loads(body)
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError alike
            return error_reply(400, f"the request body is not valid JSON: {exc}", request_id)
        except RecursionError:
            return error_reply(400, "the request body is nested too deeply", request_id)
        if batch and not isinstance(data, list):
            return error_reply(400, "batch-predict takes a JSON list of inputs", request_id)
        if self.input_check is not None and (mismatch := self.input_check(data, batch)) is not None:
            return error_reply(422, mismatch, request_id)
        return data

    def _encode(self, result: Any, request_id: str) -> Reply:
        try:
            return Reply(200, encode_compact(result))
        except (TypeError, ValueError, RecursionError) as exc:
            return error_reply(500, failures.unencodable(result, exc, request_id), request_id)

    def _timed(self, started: float) -> float:
        """Fold one model call's time into the moving average (a racy update from two threads only blurs it);
        return the time it ended."""
        ended = time.perf_counter()
        self.predict_seconds = moving_average(self.predict_seconds, ended - started)
        return ended

    def call_many(
        self, requests: list[tuple[bytes, str]], codecs: list[Codec] | None = None, traces: list | None = None
    ) -> list[Reply]:
        """Answer several /predict bodies with one ``batch_predict`` call, a Reply per request in order
        (``codecs``: one per request, all of one protocol, as in :meth:`call`; ``traces``: one Trace or
        None per request, each getting its decode, predict and encode spans: the batch call is each one's
        predict).

        A body that does not decode is refused alone; when the batch call raises (or answers a list of
        another length), each of its requests is answered by ``predict`` on its own, as without batching,
        so one bad item fails only its own request. Never raises."""
        try:
            none = [None] * len(requests)
            return self._call_many(requests, codecs or none, traces or none)
        except BaseException as exc:  # noqa: BLE001 - the last guard between a model and the server
            return [error_reply(500, failures.predict_failed(exc, rid, False), rid) for _, rid in requests]

    def _call_many(self, requests: list[tuple[bytes, str]], codecs: list, traces: list) -> list[Reply]:
        decoded = []
        for (body, rid), codec, trace in zip(requests, codecs, traces, strict=True):
            begun = time.perf_counter()
            decoded.append(self._decode(body, False, rid) if codec is None else codec.decode(self, body, rid))
            if trace is not None:
                trace.span("decode", begun)
        good = [i for i, data in enumerate(decoded) if not isinstance(data, Reply)]
        started = time.perf_counter()
        results = self._batch_results([decoded[i] for i in good], codecs[0]) if good else []
        ended = time.perf_counter()
        replies = list(decoded)  # the refusals stay, the decoded values are replaced by their answers
        for n, i in enumerate(good):
            (body, rid), codec, trace = requests[i], codecs[i], traces[i]
            if results is None:  # each on its own: _call records its spans
                replies[i] = self._call(body, False, rid, codec, trace)
                continue
            encoding = time.perf_counter()
            replies[i] = self._encode(results[n], rid) if codec is None else codec.encode(results[n], rid)
            if self.drift is not None and replies[i].status == 200:
                self._drifted(decoded[i], results[n], False, codec is not None)
            if trace is not None:
                trace.spans.append(("predict", started, ended))
                trace.span("encode", encoding)
        return replies

    def _batch_results(self, items: list, codec: Codec | None = None) -> Any:
        """``batch_predict(items)``, or None (logged) when it raised or did not answer one result per item."""
        started = time.perf_counter()
        try:
            results = self.model.batch_predict(items) if codec is None else codec.run_batch(self.model, items)
        except Exception as exc:
            logs.failure("batch_predict_failed", exc, size=len(items))
            return None
        finally:
            self._timed(started)
        count = len(results) if hasattr(results, "__len__") and not isinstance(results, (str, bytes, dict)) else None
        if count != len(items):
            logs.event("batch_predict_failed", "error", error=f"{len(items)} items got {count} results")
            return None
        return results

    def _batch(self, items: list):
        batch_predict = getattr(self.model, "batch_predict", None)
        if batch_predict is not None:
            return batch_predict(items)
        return [self.model.predict(item) for item in items]
