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
    assert c.call("GET", "/v1/collections/nope/records", pattern=LIST)[0] == 422

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


def test_openapi_if_match_pattern_is_the_servers(openapi: OpenAPI) -> None:
    from ruamel.yaml import YAML

    from provgit.simulator.conditions import IF_MATCH_PATTERN

    with resources.as_file(resources.files("provgit") / "openapi/element-api-v1.yaml") as path:
        doc = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    assert doc["components"]["parameters"]["ifMatch"]["schema"]["pattern"] == IF_MATCH_PATTERN


def test_unsupported_method_answers_405_with_allow(simulator: Simulator, openapi: OpenAPI) -> None:
    c = Client(simulator, openapi)
    c.conn.request("POST", "/v1/element", headers={"Authorization": f"Bearer {c.token}"})
    response = c.conn.getresponse()
    body = json.loads(response.read())
    assert response.status == 405 and body["code"] == "bad_request"
    assert "GET" in (response.getheader("Allow") or "")


@pytest.mark.parametrize(
    ("limit", "status"), [("0", 400), ("1", 200), ("5000", 200), ("5001", 400)]
)
def test_list_limit_is_enforced_as_documented(
    simulator: Simulator, openapi: OpenAPI, limit: str, status: int
) -> None:
    c = Client(simulator, openapi)
    s, body = c.call("GET", "/v1/collections/cos/records", pattern=LIST, query={"limit": limit})
    assert s == status
    if status == 400:
        assert "'limit' must be from 1 to 5000" in body["message"]


def test_if_match_star_weak_and_lists_follow_rfc_9110(
    simulator: Simulator, openapi: OpenAPI
) -> None:
    c = Client(simulator, openapi)
    url = "/v1/collections/cos/records/7"
    s, rec = c.call("PUT", url, {"comment": "a"}, {"If-None-Match": "*"}, pattern=REC)
    assert s == 201
    # `*`: any revision of an existing record.
    s, rec = c.call("PUT", url, {"comment": "b"}, {"If-Match": "*"}, pattern=REC)
    assert s == 200 and rec["fields"]["comment"] == "b"
    # A weak tag never matches under If-Match, even naming the current revision.
    weak = {"If-Match": f'W/"{rec["revision"]}"'}
    s, stale = c.call("PUT", url, {"comment": "c"}, weak, pattern=REC)
    assert s == 412 and "refresh" in stale["message"]
    # A list matches when any strong tag does.
    listed = {"If-Match": f'"1", W/"2", "{rec["revision"]}"'}
    s, rec = c.call("PUT", url, {"comment": "d"}, listed, pattern=REC)
    assert s == 200 and rec["fields"]["comment"] == "d"
    # Both conditions on an existing record: If-None-Match: * fails.
    both = {"If-Match": "*", "If-None-Match": "*"}
    assert c.call("PUT", url, {}, both, pattern=REC)[0] == 412
    # Malformed: 400 naming the header and the accepted forms.
    s, bad = c.call("PUT", url, {}, {"If-Match": "twelve"}, pattern=REC)
    assert s == 400 and bad["message"].startswith("If-Match must be *")
    s, bad = c.call("PUT", url, {}, {"If-None-Match": '"3"'}, pattern=REC)
    assert s == 400 and "If-None-Match accepts only *" in bad["message"]
    # `*` on an absent record: 404, as for one tag.
    assert c.call("DELETE", url + "0", headers={"If-Match": "*"}, pattern=REC)[0] == 404
    s, gone = c.call("DELETE", url, headers={"If-Match": "*"}, pattern=REC)
    assert s == 200 and gone["key"] == "7"


def test_unknown_collection_is_422_for_every_method(simulator: Simulator, openapi: OpenAPI) -> None:
    c = Client(simulator, openapi)
    url = "/v1/collections/workflows/records/w1"  # an IVR form, not a call server's
    answers = [
        c.call("GET", url, pattern=REC),
        c.call("PUT", url, {}, {"If-None-Match": "*"}, pattern=REC),
        c.call("DELETE", url, pattern=REC),
        c.call("GET", "/v1/collections/workflows/records", pattern=LIST),
    ]
    assert [s for s, _ in answers] == [422, 422, 422, 422]
    assert all(b["refusals"][0]["form"] == "workflows" for _, b in answers)


def test_since_ahead_of_the_element_asks_for_a_resync_not_too_old(
    simulator: Simulator, openapi: OpenAPI
) -> None:
    c = Client(simulator, openapi)
    revision = c.call("GET", "/v1/element")[1]["revision"]
    s, body = c.call("GET", "/v1/changes", query={"since": str(revision + 5)})
    assert s == 410 and body["code"] == "feed_too_old"
    assert "ahead of element cs1" in body["message"] and "too old" not in body["message"]
    assert "resync" in body["message"]
    assert c.call("GET", "/v1/changes", query={"since": "-1"})[0] == 400
    assert c.call("GET", "/v1/changes", query={"since": "0", "limit": "0"})[0] == 400


def test_batch_takes_an_integral_number_as_if_revision(
    simulator: Simulator, openapi: OpenAPI
) -> None:
    c = Client(simulator, openapi)
    op = {"op": "put", "collection": "cos", "key": "4", "fields": {}, "if_revision": None}
    s, first = c.call("POST", "/v1/batch", {"ops": [op]})
    rev = first["results"][0]["revision"]
    again = {**op, "fields": {"comment": "x"}, "if_revision": float(rev)}
    s, second = c.call("POST", "/v1/batch", {"ops": [again]})
    assert s == 200 and second["results"][0]["ok"] is True
    for bad in (1.5, True, "3", -1, 2**63):
        s, refused = c.call("POST", "/v1/batch", {"ops": [{**op, "if_revision": bad}]})
        assert s == 400 and "if_revision must be null or an integer" in refused["message"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"offline": "false"}, "offline must be true or false, got a string"),
        ({"token_revoked": 0}, "token_revoked must be true or false, got a number"),
        ({"locked": 1}, "locked must be true or false, got a number"),
        ({"latency_ms": "5"}, "latency_ms must be a number, got a string"),
        ({"latency_ms": True}, "latency_ms must be a number, got a boolean"),
        ({"error_rate": 2}, "error_rate is a share of requests, 0 to 1"),
        ({"jitter_ms": -1}, "jitter_ms must be a number of 0 or more"),
        ({"ofline": True}, "unknown fault(s) 'ofline'; known: latency_ms"),
        ({"refuse": "cos/1"}, "refuse must be a list of {collection, key}, got a string"),
        ({"refuse": ["cos/1"]}, "refuse[0] must be an object, got a string"),
        ({"refuse": [{"collection": "cos"}]}, "refuse[0] needs collection and key"),
        ({"refuse": [{"collection": "c", "key": "k", "x": 1}]}, "refuse[0] has unknown name"),
        (["offline"], "the request body must be a JSON object of faults"),
        ({"error_rate": 0.5, "offline": "yes"}, "offline must be true or false"),
        ({"refuse_reason": None}, "refuse_reason must be a string, got null"),
    ],
)
def test_admin_faults_refuses_a_bad_body_and_changes_nothing(
    simulator: Simulator, openapi: OpenAPI, body: Any, message: str
) -> None:
    c = Client(simulator, openapi)
    before = c.call("GET", "/admin/faults")[1]
    s, answer = c.call("POST", "/admin/faults", body)
    assert s == 400 and answer["code"] == "bad_request"
    assert answer["message"] == f"bad faults: {message}" or message in answer["message"]
    assert "indices" not in answer["message"] and "Traceback" not in answer["message"]
    assert c.call("GET", "/admin/faults")[1] == before
    assert c.call("GET", "/v1/element")[1]["state"] == "running"
