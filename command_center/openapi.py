"""/openapi.json, generated from the msgspec request types."""

from __future__ import annotations

from typing import Any

import msgspec

from command_center.schemas import ACTION_BODIES, ReportIncident

PROBLEM = {"$ref": "#/components/responses/Problem"}


def _errors(*codes: int) -> dict[str, Any]:
    return {str(code): PROBLEM for code in codes}


def build_openapi(extra_paths: dict[str, Any] | None = None) -> dict[str, Any]:
    types: list[Any] = [ReportIncident, *ACTION_BODIES.values()]
    refs, components = msgspec.json.schema_components(
        types, ref_template="#/components/schemas/{name}"
    )
    by_type = dict(zip(types, refs, strict=True))
    incident_ref = {"$ref": "#/components/schemas/Incident"}
    components["Incident"] = {
        "type": "object",
        "required": ["id", "version", "status", "grid", "centers"],
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "version": {"type": "integer"},
            "status": {"type": "string"},
            "grid": {"type": "string"},
            "centers": {"type": "array", "items": {"type": "string"}},
        },
    }
    components["Problem"] = {
        "type": "object",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
        },
    }

    def body(schema: dict[str, Any], required: bool = True) -> dict[str, Any]:
        return {"required": required, "content": {"application/json": {"schema": schema}}}

    def ok(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
        response: dict[str, Any] = {"description": description}
        if schema is not None:
            response["content"] = {"application/json": {"schema": schema}}
        return response

    incident_id = {"name": "incident_id", "in": "path", "required": True,
                   "schema": {"type": "string"}}
    paths: dict[str, Any] = {
        "/healthz": {"get": {"summary": "Liveness", "operationId": "healthz",
                             "responses": {"200": ok("alive", {"type": "object"})}}},
        "/api/incidents": {
            "post": {
                "summary": "Report an incident (step 1, unified intake)",
                "operationId": "reportIncident",
                "requestBody": body(by_type[ReportIncident]),
                "responses": {"201": ok("reported", incident_ref), **_errors(400, 413, 415, 422)},
            }
        },
        "/api/incidents/{incident_id}": {
            "get": {
                "summary": "An incident with its timeline",
                "operationId": "getIncident",
                "parameters": [incident_id],
                "responses": {"200": ok("the incident", incident_ref), **_errors(404)},
            }
        },
        "/api/centers": {
            "get": {"summary": "The jurisdiction tree", "operationId": "listCenters",
                    "responses": {"200": ok("tree", {"type": "object"})}}
        },
        "/api/centers/{center_id}/view": {
            "get": {
                "summary": "A center's live view",
                "operationId": "centerView",
                "parameters": [{"name": "center_id", "in": "path", "required": True,
                                "schema": {"type": "string"}}],
                "responses": {"200": ok("the view", {"type": "object"}), **_errors(404)},
            }
        },
    }
    for action, action_type in ACTION_BODIES.items():
        op_id = "".join(part.capitalize() for part in action.split("-"))
        paths[f"/api/incidents/{{incident_id}}/{action}"] = {
            "post": {
                "summary": f"{action} an incident",
                "operationId": f"incident{op_id}",
                "parameters": [incident_id],
                "requestBody": body(by_type[action_type], required=False),
                "responses": {"200": ok("the incident after the action", incident_ref),
                              **_errors(400, 404, 409, 413, 415, 422)},
            }
        }
    paths.update(extra_paths or {})
    return {
        "openapi": "3.1.0",
        "info": {"title": "Linkage command center", "version": "0.1.0"},
        "paths": paths,
        "components": {
            "schemas": components,
            "responses": {
                "Problem": {
                    "description": "RFC 9457 problem details",
                    "content": {"application/problem+json": {
                        "schema": {"$ref": "#/components/schemas/Problem"}}},
                }
            },
        },
    }
