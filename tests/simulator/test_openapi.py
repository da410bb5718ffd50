"""The simulator answers as the OpenAPI document says, for every status code."""

from __future__ import annotations

import http.client
import json
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import pytest
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse

from .conftest import RETENTION, Simulator

pytestmark = pytest.mark.slow

# The document's server URL; requests are validated as if sent there.
SPEC_HOST = "http://127.0.0.1:8080"


@pytest.fixture(scope="module")
def openapi() -> OpenAPI:
    # Loading validates the document itself against the OpenAPI 3.1 schema.
    with resources.as_file(resources.files("provgit") / "openapi/element-api-v1.yaml") as path:
        return OpenAPI.from_file_path(str(path))


class Client:
    """Raw HTTP to the simulator; every answer is checked against the document."""

    def __init__(self, sim: Simulator, spec: OpenAPI) -> None:
        parts = urlsplit(sim.url)
        self.conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
        self.token = sim.token
        self.spec = spec
        self.seen: set[int] = set()

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        *,
        token: str | None = "default",
        pattern: str | None = None,
        query: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        sent = dict(headers or {})
        token = self.token if token == "default" else token
        if token:
            sent["Authorization"] = f"Bearer {token}"
        data = None if body is None else json.dumps(body).encode()
        if data is not None:
            sent["Content-Type"] = "application/json"
        target = path
        if query:
            target += "?" + "&".join(f"{k}={v}" for k, v in query.items())
        self.conn.request(method, target, body=data, headers=sent)
        response = self.conn.getresponse()
        raw = response.read()
        request = MockRequest(
            SPEC_HOST,
            method.lower(),
            path,
            path_pattern=pattern,
            args=query or {},
            headers={k.lower(): v for k, v in sent.items()},
            data=data or b"",
        )
        self.spec.validate_response(
            request,
            MockResponse(
                raw,
                status_code=response.status,
                headers=dict(response.getheaders()),
                content_type=response.getheader("Content-Type", "").split(";")[0],
            ),
        )
        self.seen.add(response.status)
        return response.status, json.loads(raw) if raw else None


REC = "/v1/collections/{collection}/records/{key}"
LIST = "/v1/collections/{collection}/records"


def test_simulator_answers_match_the_openapi_document(
    simulator: Simulator, openapi: OpenAPI
) -> None:
    c = Client(simulator, openapi)
    s, info = c.call("GET", "/v1/element")
    assert s == 200 and info["state"] == "running"
    assert c.call("GET", "/v1/element", token="wrong")[0] == 401
    assert c.call("GET", "/v1/element", token=None)[0] == 401

    create = {"If-None-Match": "*"}
    s, cos = c.call("PUT", "/v1/collections/cos/records/1", {"comment": "x"}, create, pattern=REC)
    assert s == 201
    assert c.call("PUT", "/v1/collections/cos/records/1", {}, create, pattern=REC)[0] == 409
    stale = {"If-Match": f'"{cos["revision"] + 9}"'}
    assert c.call("PUT", "/v1/collections/cos/records/1", {}, stale, pattern=REC)[0] == 412
    fresh = {"If-Match": f'"{cos["revision"]}"'}
    s, cos = c.call("PUT", "/v1/collections/cos/records/1", {"comment": "y"}, fresh, pattern=REC)
    assert s == 200
    assert c.call("PUT", "/v1/collections/cos/records/1", {}, pattern=REC)[0] == 428
    assert c.call("PUT", "/v1/collections/cos/records/2", [1], create, pattern=REC)[0] == 400
    s, refused = c.call("PUT", "/v1/collections/cos/records/200", {}, create, pattern=REC)
    assert s == 422 and refused["refusals"][0]["form"] == "Class of Service Options"
    assert (
        c.call("PUT", "/v1/collections/cos/records/9", {}, {"If-Match": "3"}, pattern=REC)[0] == 404
    )
    assert c.call("GET", "/v1/collections/cos/records/1", pattern=REC)[0] == 200
    assert c.call("GET", "/v1/collections/cos/records/404", pattern=REC)[0] == 404

    s, page = c.call("GET", "/v1/collections/cos/records", pattern=LIST, query={"limit": "1"})
    assert s == 200 and page["next_cursor"] is None and len(page["records"]) == 1
    assert c.call("GET", "/v1/collections/nope/records", pattern=LIST)[0] == 404

    s, feed = c.call("GET", "/v1/changes", query={"since": str(info["revision"])})
    assert s == 200 and len(feed["changes"]) == 2
    assert c.call("GET", "/v1/changes", query={"since": "x"})[0] == 400
    s, batch = c.call(
        "POST",
        "/v1/batch",
        {
            "ops": [
                {"op": "put", "collection": "cos", "key": "2", "fields": {}, "if_revision": None},
                {"op": "put", "collection": "cos", "key": "2", "fields": {}},
                {"op": "delete", "collection": "cos", "key": "2", "if_revision": 1},
            ]
        },
    )
    assert s == 200 and [r["ok"] for r in batch["results"]] == [True, False, False]
    assert [r.get("status") for r in batch["results"]] == [None, 409, 412]
    assert c.call("POST", "/v1/batch", {"nope": 1})[0] == 400
    s, gone = c.call(
        "DELETE",
        "/v1/collections/cos/records/2",
        headers={"If-Match": str(batch["results"][0]["revision"])},
        pattern=REC,
    )
    assert s == 200 and gone["key"] == "2"
    assert c.call("DELETE", "/v1/collections/cos/records/2", pattern=REC)[0] == 404

    c.call(
        "POST",
        "/v1/batch",
        {
            "ops": [
                {"op": "put", "collection": "locations", "key": f"L{i}", "fields": {}}
                for i in range(RETENTION + 1)
            ]
        },
    )
    assert c.call("GET", "/v1/changes", query={"since": str(info["revision"])})[0] == 410

    assert c.call("POST", "/admin/faults", {"locked": True})[0] == 200
    assert c.call("PUT", "/v1/collections/cos/records/3", {}, create, pattern=REC)[0] == 423
    assert c.call("POST", "/admin/faults", {"offline": True})[0] == 200
    assert c.call("GET", "/v1/element")[1]["state"] == "offline"
    assert c.call("GET", "/v1/collections/cos/records", pattern=LIST)[0] == 503
    assert (
        c.call("POST", "/admin/faults", {"offline": False, "locked": False, "error_rate": 1})[0]
        == 200
    )
    assert c.call("GET", "/v1/element")[0] == 500
    s, faults = c.call("GET", "/admin/faults")
    assert s == 200 and faults["error_rate"] == 1
    assert (
        c.call("POST", "/admin/edit", {"op": "put", "collection": "cos", "key": "5", "fields": {}})[
            0
        ]
        == 200
    )
    assert c.call("POST", "/admin/reset")[0] == 200

    assert {200, 201, 400, 401, 404, 409, 410, 412, 422, 423, 428, 500, 503} <= c.seen
