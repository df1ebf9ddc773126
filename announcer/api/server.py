"""HTTP API (aiohttp): /metrics, /healthz, /v1/status, /v1/fleet, /v1/slots, POST /v1/drain,
/v1/undrain, /v1/reload and /v1/slots/release."""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import time
from typing import Any, TypeVar

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..core import Drain, Undrain
from ..core.slots import SlotRefused
from ..logs import get_logger
from .context import ApiState
from .fleet import fleet_document
from .status import status_document

__all__ = ["ApiState", "DrainBody", "build_app"]

log = get_logger("api")
MAX_BODY_BYTES = 64 * 1024
ANSWER_MARGIN_S = 5.0
STALL_AFTER_S = 5.0


class DrainBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    vips: list[str] | None = Field(default=None, max_length=10000)
    reason: str = Field(default="", max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")
    persist: bool = True
    # a drain past the VIPs' budget (fleet.drain_min_serving); undrain ignores it
    force: bool = False


class ReleaseBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slots: list[str] = Field(min_length=1, max_length=64)
    # hand a slot over although no other host is seen to back it
    force: bool = False


STATE: web.AppKey[ApiState] = web.AppKey("state", ApiState)


def _error(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


def _authorized(request: web.Request) -> bool:
    token = request.app[STATE].token
    if token is None:
        return True
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )


async def metrics_handler(request: web.Request) -> web.Response:
    body = generate_latest(request.app[STATE].metrics.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def healthz(request: web.Request) -> web.Response:
    age = time.monotonic() - request.app[STATE].owner.heartbeat
    if age > STALL_AFTER_S:
        return web.Response(status=503, text=f"event loop stalled for {age:.1f}s\n")
    return web.Response(text="ok\n")


async def status(request: web.Request) -> web.Response:
    state = request.app[STATE]
    document = status_document(state.owner.state, state.reconciler, state.pending(), state.bfd)
    document["drain_state"] = state.drain_state()
    return web.json_response(document, dumps=_dumps)


def _dumps(value: Any) -> str:
    return json.dumps(value, indent=2)


async def fleet(request: web.Request) -> web.Response:
    document = fleet_document(request.app[STATE].owner.state)
    return web.json_response(document, dumps=_dumps)


async def slots(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATE].slots(), dumps=_dumps)


Body = TypeVar("Body", bound=BaseModel)


async def _body(request: web.Request, model: type[Body]) -> Body | web.Response:
    """A POST's body, once the change is allowed and authorised: bounded, validated."""
    if not request.app[STATE].posts_allowed:
        return _error(503, "changes are disabled: api.token_file is unreadable or empty")
    if not _authorized(request):
        return _error(401, "missing or wrong bearer token")
    raw = await request.content.read(MAX_BODY_BYTES + 1)
    if len(raw) > MAX_BODY_BYTES:
        return _error(413, "request body too large")
    try:
        return model.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        problems = [f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors()]
        return _error(400, "invalid request body", problems=problems)


async def release_slots(request: web.Request) -> web.Response:
    body = await _body(request, ReleaseBody)
    if isinstance(body, web.Response):
        return body
    hand_over = request.app[STATE].hand_over
    if hand_over is None:
        return _error(501, "slots cannot be handed over here")
    try:
        released = await hand_over(body.slots, body.force)
    except SlotRefused as exc:
        return _error(409, str(exc))
    return web.json_response({"released": released})


async def _drain_body(request: web.Request) -> DrainBody | web.Response:
    body = await _body(request, DrainBody)
    if isinstance(body, web.Response):
        return body
    if body.vips is not None:
        if not body.vips:
            # an empty list is almost surely a script's bug: it must not mean "every VIP"
            return _error(400, "vips is empty: leave it out to mean every VIP")
        known = request.app[STATE].owner.state.spec.by_prefix
        unknown = [vip for vip in body.vips if _normalise(vip) not in known]
        if unknown:
            return _error(400, "unknown VIPs", unknown=unknown)
        body.vips = [_normalise(vip) for vip in body.vips]
    return body


def _normalise(prefix: str) -> str:
    try:
        return str(ipaddress.ip_network(prefix, strict=False))
    except ValueError:
        return prefix


def _source(request: web.Request) -> str:
    return request.headers.get("X-Announcer-Client", "api")[:32] or "api"


async def drain(request: web.Request) -> web.Response:
    body = await _drain_body(request)
    if isinstance(body, web.Response):
        return body
    state = request.app[STATE]
    number, answered = state.drain_request()
    event = Drain(
        None if body.vips is None else tuple(body.vips),
        body.reason or "drained through the API",
        _source(request),
        time.time(),
        body.persist,
        budget=not body.force,
        request=number,
    )
    await state.owner.submit(event)
    spec = state.owner.state.spec
    # under a budget the answer comes once the other hosts' drains were seen (fleet.settle)
    wait = (spec.fleet.settle_s if spec.fleet else 0.0) + ANSWER_MARGIN_S
    try:
        verdict = await asyncio.wait_for(answered, wait)
    except TimeoutError:
        state.drain_answers.pop(number, None)
        return _error(503, "the drain was not answered in time; see /v1/status")
    if not verdict.granted:
        return _error(
            409,
            "drain refused: too few other hosts would serve (force to drain anyway)",
            refused=dict(verdict.refused),
            fleet=fleet_document(state.owner.state, [prefix for prefix, _ in verdict.refused]),
        )
    answer: dict[str, Any] = {"drained": _targets(request, body.vips)}
    saved = state.drain_state()
    if body.persist and saved is not None:
        answer["persisted"] = saved["saved"]
        if not saved["saved"]:
            answer["warning"] = (
                f"the drain is in force but kept in memory only ({saved['error']}): "
                "a restart of the plugin would announce again"
            )
    return web.json_response(answer)


async def undrain(request: web.Request) -> web.Response:
    body = await _drain_body(request)
    if isinstance(body, web.Response):
        return body
    event = Undrain(None if body.vips is None else tuple(body.vips), _source(request))
    await request.app[STATE].owner.submit(event)
    return web.json_response({"undrained": _targets(request, body.vips)})


def _targets(request: web.Request, vips: list[str] | None) -> list[str]:
    if vips is not None:
        return vips
    return [vip.prefix for vip in request.app[STATE].owner.state.spec.vips]


async def reload(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if not state.posts_allowed:
        return _error(503, "changes are disabled: api.token_file is unreadable or empty")
    if not _authorized(request):
        return _error(401, "missing or wrong bearer token")
    if state.reload is None:
        return _error(501, "reload is not available")
    problems = await state.reload()
    if problems:
        return _error(400, "invalid configuration; the running one stays", problems=problems)
    return web.json_response({"reloaded": True})


def build_app(state: ApiState) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[STATE] = state
    app.router.add_get("/metrics", metrics_handler)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/v1/status", status)
    app.router.add_get("/v1/fleet", fleet)
    app.router.add_post("/v1/drain", drain)
    app.router.add_post("/v1/undrain", undrain)
    app.router.add_post("/v1/reload", reload)
    app.router.add_get("/v1/slots", slots)
    app.router.add_post("/v1/slots/release", release_slots)
    return app
