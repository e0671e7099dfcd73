"""The OpenAPI 3 document of API v1, served at ``/v1/openapi.json``.

Kept beside the routes (:mod:`gofer.gateway.api`); a unit test checks
that every route is described here and every path described is routed.
"""

from __future__ import annotations

import copy
from typing import Any

from gofer import __version__

_JSON = "application/json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {_JSON: {"schema": _ref("Error")}}}


_ERRORS = {
    "400": _error("The request is malformed: not JSON, a wrong type, an unknown member."),
    "401": _error("No credentials, or wrong ones."),
    "403": _error("The credentials do not allow calling that class on that agent."),
}

_SN = {
    "name": "sn",
    "in": "path",
    "required": True,
    "description": "The call's serial number.",
    "schema": {"type": "string", "pattern": "^[0-9a-fA-F-]{1,64}$"},
}

_WAIT = {
    "name": "wait",
    "in": "query",
    "required": False,
    "description": (
        "Seconds to wait for the call to end (a number, or like 30s, 5m);"
        " at most the gateway's max_wait."
    ),
    "schema": {"oneOf": [{"type": "number", "minimum": 0}, {"type": "string"}]},
}

_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["status", "message"],
                "properties": {
                    "status": {"type": "integer"},
                    "message": {"type": "string"},
                    "call": _ref("Call"),
                    "denied": {"type": "array", "items": {"type": "string"}},
                },
            }
        },
    },
    "CallRequest": {
        "type": "object",
        "required": ["class", "method"],
        "additionalProperties": False,
        "properties": {
            "class": {"type": "string", "minLength": 1, "maxLength": 255},
            "method": {"type": "string", "minLength": 1, "maxLength": 255},
            "args": {"type": "array", "default": []},
            "kws": {"type": "object", "default": {}},
            "cntr": _ref("Constructor"),
            "options": _ref("CallOptions"),
        },
    },
    "Constructor": {
        "type": "object",
        "description": "Arguments for the class's constructor.",
        "additionalProperties": False,
        "properties": {"args": {"type": "array"}, "kws": {"type": "object"}},
    },
    "CallOptions": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "ttl": {
                "description": (
                    "Seconds the agent has to start the call (a number, or like 30s, 5m, 2h);"
                    " the gateway's [calls] ttl by default, at most its max_ttl."
                ),
                "oneOf": [{"type": "number", "exclusiveMinimum": 0}, {"type": "string"}],
            },
            "data": {"description": "Anything JSON; the agent echoes it back."},
            "secret": {"type": "string", "description": "For @remote(secret=...) methods."},
            "user": {"type": "string", "description": "The PAM user, for @pam methods."},
            "password": {"type": "string", "description": "The PAM password."},
        },
    },
    "FanOutRequest": {
        "type": "object",
        "required": ["agents", "class", "method"],
        "additionalProperties": False,
        "properties": {
            "agents": {
                "type": "array",
                "minItems": 1,
                "maxItems": 10000,
                "items": {"type": "string", "minLength": 1},
            },
            "class": {"type": "string", "minLength": 1, "maxLength": 255},
            "method": {"type": "string", "minLength": 1, "maxLength": 255},
            "args": {"type": "array"},
            "kws": {"type": "object"},
            "cntr": _ref("Constructor"),
            "options": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "wait": {
                        "description": (
                            "The deadline of the whole fan-out, in seconds (default 60,"
                            " at most the gateway's max_wait); each request's TTL is what"
                            " is left of it."
                        ),
                        "oneOf": [{"type": "number", "exclusiveMinimum": 0}, {"type": "string"}],
                    },
                    "concurrency": {"type": "integer", "minimum": 1, "maximum": 1024},
                    "data": {},
                    "secret": {"type": "string"},
                    "user": {"type": "string"},
                    "password": {"type": "string"},
                },
            },
        },
    },
    "Call": {
        "type": "object",
        "required": ["sn", "agent", "class", "method", "state", "created", "updated"],
        "properties": {
            "sn": {"type": "string"},
            "agent": {"type": "string", "description": "The agent's queue."},
            "class": {"type": "string"},
            "method": {"type": "string"},
            "state": {
                "type": "string",
                "enum": [
                    "accepted",
                    "started",
                    "progress",
                    "succeeded",
                    "failed",
                    "rejected",
                    "expired",
                ],
                "description": (
                    "accepted: the broker has the request; started, progress: the agent runs"
                    " it; succeeded (result), failed (error: the remote exception), rejected"
                    " (error: code and description), expired (not started within its ttl)."
                ),
            },
            "created": {"type": "string", "format": "date-time"},
            "updated": {"type": "string", "format": "date-time"},
            "progress": {
                "type": "object",
                "properties": {"total": {}, "completed": {}, "details": {}},
            },
            "result": {"description": "What the method returned (succeeded only)."},
            "error": {
                "type": "object",
                "description": (
                    "failed: type, module, message, args, traceback;"
                    " rejected and expired: code, description, details."
                ),
            },
            "links": {
                "type": "object",
                "properties": {"self": {"type": "string"}, "events": {"type": "string"}},
            },
            "cancel": {"type": "string", "enum": ["requested"]},
        },
    },
    "Outcome": {
        "type": "object",
        "description": (
            "One item of a fan-out stream. status: succeeded, failed, rejected, timeout,"
            " no_queue, cancelled, error (one per agent); progress (a report of one agent);"
            " end (the last item: total, succeeded, other)."
        ),
        "required": ["status"],
        "properties": {
            "agent": {"type": "string"},
            "status": {"type": "string"},
            "sn": {"type": ["string", "null"]},
            "seconds": {"type": "number"},
            "result": {},
            "error": {"type": "object"},
            "progress": {"type": "object"},
            "total": {"type": "integer"},
            "succeeded": {"type": "integer"},
            "other": {"type": "integer"},
        },
    },
}

_CALL_RESPONSE = {"content": {_JSON: {"schema": _ref("Call")}}}

_PATHS: dict[str, Any] = {
    "/v1/agents/{queue}/calls": {
        "post": {
            "summary": "Call a method on one agent.",
            "description": (
                "Answers once the broker confirmed the request: 202 with Location, or 200"
                " when ?wait= is given and the call ends in time."
            ),
            "operationId": "postCall",
            "parameters": [
                {
                    "name": "queue",
                    "in": "path",
                    "required": True,
                    "description": "The agent's queue.",
                    "schema": {"type": "string"},
                },
                _WAIT,
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "description": (
                        "A retried request with the same key (and the same body) returns the"
                        " same call instead of sending another request."
                    ),
                    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                },
            ],
            "requestBody": {
                "required": True,
                "content": {_JSON: {"schema": _ref("CallRequest")}},
            },
            "responses": {
                "200": {"description": "The call ended within ?wait=.", **_CALL_RESPONSE},
                "202": {
                    "description": "The broker has the request.",
                    "headers": {"Location": {"schema": {"type": "string"}}},
                    **_CALL_RESPONSE,
                },
                **_ERRORS,
                "404": _error("No such agent queue on the broker."),
                "413": _error("The body is too large."),
                "415": _error("The body is not sent as application/json."),
                "422": _error("The Idempotency-Key was used for a different request."),
                "503": _error("The broker is unavailable."),
            },
        }
    },
    "/v1/calls/{sn}": {
        "get": {
            "summary": "A call's state, and its result or error.",
            "operationId": "getCall",
            "parameters": [_SN, _WAIT],
            "responses": {
                "200": {"description": "The call.", **_CALL_RESPONSE},
                **_ERRORS,
                "404": _error("No such call of these credentials (or no longer kept)."),
            },
        },
        "delete": {
            "summary": "Cancel a call (Admin.cancel on its agent).",
            "operationId": "cancelCall",
            "parameters": [_SN],
            "responses": {
                "202": {"description": "The cancel was sent to the agent.", **_CALL_RESPONSE},
                **_ERRORS,
                "404": _error("No such call of these credentials."),
                "409": _error("The call has ended already."),
                "503": _error("The broker is unavailable."),
            },
        },
    },
    "/v1/calls/{sn}/events": {
        "get": {
            "summary": "The call's events as Server-Sent Events; the stream ends after the last.",
            "description": (
                "Each event has an id (from 1 per call), an event name (the state it"
                " brings: accepted, started, progress, succeeded, failed, rejected, expired)"
                " and JSON data. Resume with the Last-Event-ID header (or ?after=)."
            ),
            "operationId": "getCallEvents",
            "parameters": [
                _SN,
                {
                    "name": "Last-Event-ID",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string"},
                },
                {"name": "after", "in": "query", "required": False, "schema": {"type": "integer"}},
            ],
            "responses": {
                "200": {
                    "description": "The event stream.",
                    "content": {"text/event-stream": {"schema": {"type": "string"}}},
                },
                **_ERRORS,
                "404": _error("No such call of these credentials."),
            },
        }
    },
    "/v1/calls": {
        "get": {
            "summary": "The caller's recent calls, newest first.",
            "operationId": "listCalls",
            "parameters": [
                {
                    "name": "limit",
                    "in": "query",
                    "required": False,
                    "description": "How many calls, at most.",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 50},
                }
            ],
            "responses": {
                "200": {
                    "description": "The calls.",
                    "content": {
                        _JSON: {
                            "schema": {
                                "type": "object",
                                "required": ["calls"],
                                "properties": {"calls": {"type": "array", "items": _ref("Call")}},
                            }
                        }
                    },
                },
                "400": _ERRORS["400"],
                "401": _ERRORS["401"],
            },
        },
        "post": {
            "summary": "Call a method on many agents (fan-out); outcomes are streamed.",
            "description": (
                "NDJSON (one Outcome a line) by default; Server-Sent Events (events"
                " outcome, progress, end) with Accept: text/event-stream."
            ),
            "operationId": "postFanOut",
            "requestBody": {
                "required": True,
                "content": {_JSON: {"schema": _ref("FanOutRequest")}},
            },
            "responses": {
                "200": {
                    "description": "The outcomes, as they come.",
                    "content": {
                        "application/x-ndjson": {"schema": _ref("Outcome")},
                        "text/event-stream": {"schema": {"type": "string"}},
                    },
                },
                **_ERRORS,
                "413": _error("The body is too large."),
                "415": _error("The body is not sent as application/json."),
                "429": _error("Too many fan-outs are running."),
            },
        },
    },
    "/v1/openapi.json": {
        "get": {
            "summary": "This document.",
            "operationId": "getOpenapi",
            "security": [],
            "responses": {"200": {"description": "The OpenAPI document.", "content": {_JSON: {}}}},
        }
    },
    "/": {
        "get": {
            "summary": "A page listing the caller's recent calls with their live progress.",
            "description": "It asks for a token and calls GET /v1/calls and the event streams.",
            "operationId": "getPage",
            "security": [],
            "responses": {"200": {"description": "The page.", "content": {"text/html": {}}}},
        }
    },
    "/stats": {
        "get": {
            "summary": "Counts per agent queue and outcome, broker connection, process figures.",
            "operationId": "getStats",
            "responses": {
                "200": {"description": "The figures.", "content": {_JSON: {}}},
                "401": _ERRORS["401"],
            },
        }
    },
    "/metrics": {
        "get": {
            "summary": "The figures in the Prometheus text format.",
            "operationId": "getMetrics",
            "security": [],
            "responses": {
                "200": {"description": "Metrics.", "content": {"text/plain": {}}},
            },
        }
    },
    "/healthz": {
        "get": {
            "summary": "Liveness: 200 while the gateway answers.",
            "operationId": "getHealthz",
            "security": [],
            "responses": {"200": {"description": "Alive.", "content": {_JSON: {}}}},
        }
    },
    "/readyz": {
        "get": {
            "summary": "Readiness: 200 while the gateway reads its reply queue from the broker.",
            "operationId": "getReadyz",
            "security": [],
            "responses": {
                "200": {"description": "Ready.", "content": {_JSON: {}}},
                "503": {"description": "Not connected to the broker.", "content": {_JSON: {}}},
            },
        }
    },
}

_DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "gofer gateway",
        "version": __version__,
        "description": "Call gofer agents (remote method invocation over AMQP) over HTTP.",
    },
    "paths": _PATHS,
    "components": {
        "schemas": _SCHEMAS,
        "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"},
            "basic": {
                "type": "http",
                "scheme": "basic",
                "description": "Broker credentials, when [basic] is enabled.",
            },
        },
    },
    "security": [{"bearer": []}, {"basic": []}],
}


def document() -> dict[str, Any]:
    """The OpenAPI document (a copy: callers may change it)."""
    return copy.deepcopy(_DOCUMENT)


__all__ = ["document"]
