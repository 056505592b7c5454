"""`/__sandbox/...`: drive a separately started sandbox over HTTP."""

from __future__ import annotations

import json

from aiohttp import web
from pydantic import ValidationError

from turnout.sandbox.faults import FaultPlan
from turnout.sandbox.model_list import ModelListError
from turnout.sandbox.replies import SERVER_KEY, error_response, json_response


def add_control_routes(app: web.Application) -> None:
    app.router.add_get("/__sandbox/plan", get_plan)
    app.router.add_put("/__sandbox/plan", put_plan)
    app.router.add_get("/__sandbox/calls", get_calls)
    app.router.add_post("/__sandbox/reset", reset)
    app.router.add_post("/__sandbox/models", add_model)
    app.router.add_delete("/__sandbox/models/{model_id:.*}", remove_model)


async def get_plan(request: web.Request) -> web.StreamResponse:
    return json_response(request.app[SERVER_KEY].plan.model_dump(mode="json"))


async def put_plan(request: web.Request) -> web.StreamResponse:
    try:
        plan = FaultPlan.model_validate_json(await request.read())
    except ValidationError as exc:
        return error_response(400, f"invalid fault plan: {describe(exc)}")
    request.app[SERVER_KEY].set_plan(plan)
    return json_response(plan.model_dump(mode="json"))


async def get_calls(request: web.Request) -> web.StreamResponse:
    return json_response(request.app[SERVER_KEY].log.summary(last=100))


async def reset(request: web.Request) -> web.StreamResponse:
    request.app[SERVER_KEY].reset()
    return json_response({"ok": True})


async def add_model(request: web.Request) -> web.StreamResponse:
    try:
        entry = json.loads(await request.read())
    except ValueError:
        return error_response(400, "Invalid JSON in request body")
    if not isinstance(entry, dict):
        return error_response(400, "a model entry must be a JSON object")
    try:
        request.app[SERVER_KEY].add_model(entry)
    except ModelListError as exc:
        return error_response(400, str(exc))
    return json_response({"ok": True, "id": entry["id"]}, status=201)


async def remove_model(request: web.Request) -> web.StreamResponse:
    model_id = request.match_info["model_id"]
    try:
        request.app[SERVER_KEY].remove_model(model_id)
    except KeyError:
        return error_response(404, f"{model_id} is not in the sandbox catalogue")
    return json_response({"ok": True, "id": model_id})


def describe(exc: ValidationError) -> str:
    """One line naming every bad field, e.g. `models.x.error_ratez: Extra inputs...`."""
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "plan"
        problems.append(f"{where}: {error['msg']}")
    return "; ".join(problems)
