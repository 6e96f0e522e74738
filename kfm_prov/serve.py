"""``kfm-prov serve``: the OpenLineage HTTP intake and a small read API for tools.

The write side follows the OpenLineage HTTP transport (``POST /api/v1/lineage``, ``/batch``,
``Authorization: Bearer``, ``Content-Encoding: gzip``), so a producer is pointed here by
``OPENLINEAGE_URL`` and an API key alone. Bad input never reaches a 500: a body too large
is 413 before it is read whole, a malformed or invalid event is 400 with the JSON pointer,
a missing or wrong token 401. An accepted event is in the journal on disk before the 201
(see ``openlineage.journal``). Tokens are compared in constant time and never logged;
the access log is one JSON line per request on stderr.

Starlette and uvicorn are imported here only, when the service starts.
"""

from __future__ import annotations

import hmac
import json
import os
import sys
import time
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from kfm_prov.config import LakeConfig
from kfm_prov.errors import CheckFailed, InputError, KfmProvError, NotFoundError, UsageError

TOKENS_ENV = "KFM_PROV_SERVE_TOKENS"
DEFAULT_MAX_BODY = 4 * 1024 * 1024  # an OpenLineage event is a few KiB; a batch fits easily
MAX_BATCH = 1000


def load_tokens(token_file: str | os.PathLike[str] | None = None,
                env: dict[str, str] | None = None) -> list[str]:
    """Tokens from ``KFM_PROV_SERVE_TOKENS`` (comma-separated) and a token file (one a
    line, ``#`` comments). Refuses to serve without one: the intake writes to the lake."""
    environ = os.environ if env is None else env
    tokens = [t.strip() for t in environ.get(TOKENS_ENV, "").split(",") if t.strip()]
    if token_file is not None:
        path = Path(token_file)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read the token file: {exc}", file=str(path)) from None
        tokens += [line.strip() for line in lines
                   if line.strip() and not line.lstrip().startswith("#")]
    if not tokens:
        raise UsageError(f"no API tokens: set {TOKENS_ENV} or pass --token-file",
                         hint="producers send one as their OpenLineage API key")
    if any(len(t) < 16 for t in tokens):
        raise UsageError("every API token must be at least 16 characters", field=TOKENS_ENV)
    return tokens


class _Reject(Exception):
    """An HTTP error answer with a JSON body."""

    def __init__(self, status: int, message: str, pointer: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.pointer = pointer

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.message}
        if self.pointer is not None:
            out["pointer"] = self.pointer
        return out


def _from_error(exc: KfmProvError) -> _Reject:
    status = 404 if isinstance(exc, NotFoundError) else 409 if isinstance(
        exc, CheckFailed) else 400
    message = exc.message + (f"; {exc.hint}" if exc.hint else "")
    return _Reject(status, message, exc.field)


def create_app(config: LakeConfig, tokens: Sequence[str], *,
               max_body: int = DEFAULT_MAX_BODY, log: IO[str] | None = None) -> Any:
    """The ASGI application (Starlette) serving one lake."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    secrets = [t.encode("utf-8") for t in tokens]
    stream = log if log is not None else sys.stderr

    def authorized(request: Request) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            return False
        candidate = given.strip().encode("utf-8", errors="replace")
        ok = False
        for token in secrets:  # every token compared, in constant time each
            ok |= hmac.compare_digest(candidate, token)
        return ok

    def answer(status: int, body: Any) -> Response:
        return JSONResponse(body, status_code=status)

    async def read_body(request: Request) -> bytes:
        length = request.headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                raise _Reject(400, "Content-Length is not a number")
            if int(length) > max_body:
                raise _Reject(413, f"body larger than {max_body} bytes")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_body:
                raise _Reject(413, f"body larger than {max_body} bytes")
            chunks.append(chunk)
        body = b"".join(chunks)
        encoding = request.headers.get("content-encoding", "identity").strip().lower()
        if encoding in ("", "identity"):
            return body
        if encoding != "gzip":
            raise _Reject(415, f"Content-Encoding {encoding!r} is not supported; use gzip")
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            data = inflater.decompress(body, max_body + 1)
        except zlib.error:
            raise _Reject(400, "the body is not valid gzip") from None
        if len(data) > max_body or inflater.unconsumed_tail:
            raise _Reject(413, f"body larger than {max_body} bytes once decompressed")
        return data

    async def parsed(request: Request) -> Any:
        from kfm_prov.core import jsonio

        body = await read_body(request)
        try:
            return jsonio.loads(body, file="request body")
        except InputError as exc:
            raise _Reject(400, exc.message, exc.field) from None

    async def post_lineage(request: Request) -> Response:
        from kfm_prov.openlineage.events import parse_event
        from kfm_prov.openlineage.intake import accept_events

        data = await parsed(request)
        try:
            event = parse_event(data, file="request body")
            results = await run_in_threadpool(accept_events, config, [event])
        except KfmProvError as exc:
            raise _from_error(exc) from None
        result = results[0]
        note_refusals(results)
        return answer(200 if result.duplicate else 201, result.to_dict())

    async def post_batch(request: Request) -> Response:
        from kfm_prov.openlineage.intake import accept_events, parse_batch

        data = await parsed(request)
        if isinstance(data, dict) and isinstance(data.get("events"), list):
            data = data["events"]
        if not isinstance(data, list):
            raise _Reject(400, "a batch is a JSON array of events", "/")
        if len(data) > MAX_BATCH:
            raise _Reject(413, f"more than {MAX_BATCH} events in one batch")
        try:
            events = parse_batch(data, file="request body")
            results = await run_in_threadpool(accept_events, config, events)
        except KfmProvError as exc:
            raise _from_error(exc) from None
        note_refusals(results)
        status = 200 if results and all(r.duplicate for r in results) else 201
        return answer(status, {"events": [r.to_dict() for r in results]})

    def note_refusals(results: Sequence[Any]) -> None:
        for result in results:
            if result.refused:
                stream.write(json.dumps({"time": _now(), "run_id": result.run_id,
                                         "not_recorded": result.refused}) + "\n")
                stream.flush()

    def lake() -> Any:
        from kfm_prov.lake import Lake

        return Lake(config)

    async def get_lineage(request: Request) -> Response:
        artifact = request.query_params.get("artifact", "")
        direction = request.query_params.get("direction", "up")
        if not artifact.strip():
            raise _Reject(400, "artifact is required (a path, digest, run id or STAC item)",
                          "artifact")
        if direction not in ("up", "down"):
            raise _Reject(400, "direction must be up or down", "direction")

        def work() -> Any:
            return lake().trace(artifact, down=direction == "down").to_dict()

        return answer(200, await _call(work))

    async def get_runs(request: Request) -> Response:
        family = request.query_params.get("family") or None
        rows = await _call(lambda: lake().runs(family))
        return answer(200, [r.to_dict() for r in rows])

    async def get_run(request: Request) -> Response:
        run_id = request.path_params["run_id"]
        return answer(200, await _call(lambda: lake().show(run_id)))

    async def get_check(request: Request) -> Response:
        run_id = request.path_params["run_id"]
        report = await _call(lambda: lake().check(lake().resolve_run(run_id).run_id))
        return answer(200, report.to_dict())

    async def get_health(request: Request) -> Response:
        return answer(200, {"status": "ok"})

    async def get_openapi(request: Request) -> Response:
        return answer(200, openapi_document())

    async def _call(work: Any) -> Any:
        try:
            return await run_in_threadpool(work)
        except KfmProvError as exc:
            raise _from_error(exc) from None

    open_paths = {"/openapi.json", "/api/v1/health"}

    def guarded(handler: Any, path: str) -> Any:
        async def endpoint(request: Request) -> Response:
            try:
                if path not in open_paths and not authorized(request):
                    return JSONResponse({"error": "a valid bearer token is required"},
                                        status_code=401,
                                        headers={"WWW-Authenticate": "Bearer"})
                response: Response = await handler(request)
                return response
            except _Reject as reject:
                return answer(reject.status, reject.body())
        return endpoint

    routes = [
        Route("/api/v1/lineage", guarded(post_lineage, "/api/v1/lineage"), methods=["POST"]),
        Route("/api/v1/lineage/batch", guarded(post_batch, "/api/v1/lineage/batch"),
              methods=["POST"]),
        Route("/api/v1/lineage", guarded(get_lineage, "/api/v1/lineage"), methods=["GET"]),
        Route("/api/v1/runs", guarded(get_runs, "/api/v1/runs"), methods=["GET"]),
        Route("/api/v1/runs/{run_id}", guarded(get_run, "/api/v1/runs"), methods=["GET"]),
        Route("/api/v1/check/{run_id}", guarded(get_check, "/api/v1/check"), methods=["GET"]),
        Route("/api/v1/health", guarded(get_health, "/api/v1/health"), methods=["GET"]),
        Route("/openapi.json", guarded(get_openapi, "/openapi.json"), methods=["GET"]),
    ]

    async def on_error(request: Request, exc: Exception) -> Response:
        return answer(500, {"error": "internal error; see the service log"})

    app = Starlette(routes=routes, exception_handlers={Exception: on_error})
    return _AccessLog(app, stream)


class _AccessLog:
    """ASGI wrapper: one JSON line per request on stderr (never a header's value)."""

    def __init__(self, app: Any, stream: IO[str]) -> None:
        self.app = app
        self.stream = stream

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500, "bytes": 0}

        async def watch(message: Any) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            elif message["type"] == "http.response.body":
                status["bytes"] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            client = scope.get("client") or ("", 0)
            line = {"time": _now(), "remote": client[0], "method": scope.get("method"),
                    "path": scope.get("path"), "status": status["code"],
                    "bytes": status["bytes"],
                    "ms": round((time.perf_counter() - started) * 1000, 1)}
            try:
                self.stream.write(json.dumps(line) + "\n")
                self.stream.flush()
            except (OSError, ValueError):
                pass


def _now() -> str:
    from kfm_prov.core.timeutil import now_utc

    return now_utc()


def serve(config: LakeConfig, tokens: Sequence[str], *, host: str = "127.0.0.1",
          port: int = 5000, max_body: int = DEFAULT_MAX_BODY) -> None:
    """Record what a crash left journaled but unrecorded, then serve until interrupted."""
    import uvicorn

    from kfm_prov.openlineage.intake import recover

    for result in recover(config):
        sys.stderr.write(f"kfm-prov serve: recorded run {result.run_id} from the journal\n")
    app = create_app(config, tokens, max_body=max_body)
    sys.stderr.write(f"kfm-prov serve: listening on http://{host}:{port} for lake"
                     f" {config.root}\n")
    sys.stderr.flush()
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False,
                server_header=False, date_header=False)


# --- the OpenAPI document ------------------------------------------------------------------

def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def openapi_document() -> dict[str, Any]:
    """OpenAPI 3.0 description of the service (what schemathesis and clients read)."""
    error = {"type": "object", "required": ["error"],
             "properties": {"error": {"type": "string"}, "pointer": {"type": "string"}}}
    errors = {
        "400": _json(error, "invalid input; pointer names the field"),
        "401": _json(error, "no or wrong bearer token"),
        "404": _json(error, "no such run or artifact"),
        "409": _json(error, "refused: the run has ended and is recorded"),
        "413": _json(error, "body too large"),
        "415": _json(error, "unsupported Content-Encoding"),
    }
    accepted = {"type": "object", "required": ["digest", "duplicate"],
                "properties": {"digest": {"type": "string"},
                               "run_id": {"type": "string", "nullable": True},
                               "event_type": {"type": "string", "nullable": True},
                               "duplicate": {"type": "boolean"},
                               "recorded": {"type": "object"}, "note": {"type": "string"}}}
    event = {"type": "object", "description": "An OpenLineage 2-0-2 RunEvent, DatasetEvent or"
             " JobEvent (https://openlineage.io/spec/2-0-2/OpenLineage.json)",
             "required": ["eventTime", "producer", "schemaURL"],
             "properties": {"eventTime": {"type": "string", "format": "date-time"},
                            "producer": {"type": "string"}, "schemaURL": {"type": "string"},
                            "eventType": {"type": "string", "enum": [
                                "START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"]},
                            "run": {"type": "object", "required": ["runId"], "properties": {
                                "runId": {"type": "string", "format": "uuid"}}},
                            "job": {"type": "object", "required": ["namespace", "name"],
                                    "properties": {"namespace": {"type": "string"},
                                                   "name": {"type": "string"}}}}}
    run_id = {"name": "run_id", "in": "path", "required": True, "schema": {"type": "string"}}

    def op(summary: str, ok: dict[str, Any], codes: Sequence[str], **extra: Any) -> dict:
        responses = {**ok, **{c: errors[c] for c in codes}}
        return {"summary": summary, "security": [{"bearer": []}], "responses": responses,
                **extra}

    lineage_params = [
        {"name": "artifact", "in": "query", "required": True, "schema": {"type": "string"}},
        {"name": "direction", "in": "query", "required": False,
         "schema": {"type": "string", "enum": ["up", "down"], "default": "up"}}]
    return {
        "openapi": "3.0.3",
        "info": {"title": "kfm-prov serve", "version": "1",
                 "description": "OpenLineage intake and the lineage read API of a kfm-prov"
                                " lake."},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "paths": {
            "/api/v1/lineage": {
                "post": op("Receive one OpenLineage event",
                           {"201": _json(accepted, "journaled (and recorded if it ended"
                                                   " the run)"),
                            "200": _json(accepted, "a duplicate, recorded once")},
                           ["400", "401", "409", "413", "415"],
                           requestBody={"required": True,
                                        "content": {"application/json": {"schema": event}}}),
                "get": op("Lineage of an artifact (kfm.lineage.v1)",
                          {"200": _json({"type": "object"}, "the lineage")},
                          ["400", "401", "404"], parameters=lineage_params)},
            "/api/v1/lineage/batch": {
                "post": op("Receive a batch of OpenLineage events (all checked first)",
                           {"201": _json({"type": "object"}, "journaled"),
                            "200": _json({"type": "object"}, "all duplicates")},
                           ["400", "401", "409", "413", "415"],
                           requestBody={"required": True, "content": {"application/json": {
                               "schema": {"type": "array", "items": event}}}})},
            "/api/v1/runs": {"get": op("Recorded runs, oldest first",
                                       {"200": _json({"type": "array",
                                                      "items": {"type": "object"}}, "runs")},
                                       ["401"], parameters=[
                                           {"name": "family", "in": "query",
                                            "required": False,
                                            "schema": {"type": "string"}}])},
            "/api/v1/runs/{run_id}": {"get": op("One run in detail",
                                                {"200": _json({"type": "object"}, "the run")},
                                                ["400", "401", "404"], parameters=[run_id])},
            "/api/v1/check/{run_id}": {"get": op("The promotion gate for a run (writes"
                                                 " nothing)",
                                                 {"200": _json({"type": "object"},
                                                               "the gate report")},
                                                 ["400", "401", "404"], parameters=[run_id])},
            "/api/v1/health": {"get": {"summary": "Liveness", "responses": {
                "200": _json({"type": "object"}, "up")}}},
        },
    }
