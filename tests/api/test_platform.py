"""Probes, the OpenAPI document, request ids and the one error shape."""

from __future__ import annotations

import json
import logging

from tests.support.servers import free_port


def test_healthz_answers_while_the_process_is_up(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_checks_database_and_redis(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["checks"] == {"database": "ok", "redis": "ok"}


def test_readyz_is_503_naming_redis_when_redis_is_down(make_app):
    app = make_app(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["code"] == "not_ready"
    assert body["errors"] == {"redis": ["unreachable"]}


def test_readyz_is_503_naming_the_database_when_it_is_down(make_app):
    app = make_app(database_url=f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/x")
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["errors"] == {"database": ["unreachable"]}


def test_the_openapi_document_lists_the_mini_program_routes(client):
    spec = client.get("/api/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    for path in ("/api/mp/v1/auth/login", "/api/mp/v1/me", "/api/mp/v1/me/phone",
                 "/healthz", "/readyz"):
        assert path in spec["paths"], path
    assert "bearerAuth" in spec["components"]["securitySchemes"]


def test_the_docs_page_and_its_assets_are_served_locally(client):
    page = client.get("/api/docs")
    assert page.status_code == 200
    assert "/api/docs/assets/swagger-ui-bundle.js" in page.get_data(as_text=True)
    assert client.get("/api/docs/assets/swagger-ui-bundle.js").status_code == 200


def test_every_response_carries_a_request_id(client):
    generated = client.get("/healthz").headers["X-Request-ID"]
    assert len(generated) == 32
    assert client.get("/healthz", headers={"X-Request-ID": "lb-1234"}).headers[
        "X-Request-ID"] == "lb-1234"
    # An id that could inject into logs is replaced, not echoed.
    for hostile in ("a b<script>", "x" * 200):
        assert client.get("/healthz", headers={"X-Request-ID": hostile}).headers[
            "X-Request-ID"] != hostile


def test_log_lines_are_json_with_the_request_id(client, caplog):
    from app.logs import RequestContextFilter

    caplog.handler.addFilter(RequestContextFilter())
    with caplog.at_level(logging.INFO, logger="fenxiao.access"):
        client.get("/healthz", headers={"X-Request-ID": "trace-42"})
    access = [r for r in caplog.records if r.name == "fenxiao.access"]
    assert access and access[-1].request_id == "trace-42"
    assert access[-1].status == 200


def test_unknown_routes_and_methods_answer_in_the_error_shape(client):
    missing = client.get("/api/mp/v1/nope")
    assert missing.status_code == 404
    assert set(missing.get_json()) == {"code", "message", "errors"}
    assert missing.get_json()["code"] == "not_found"
    wrong_method = client.get("/api/mp/v1/auth/login")
    assert wrong_method.status_code == 405
    assert wrong_method.get_json()["code"] == "method_not_allowed"


def test_an_unexpected_error_is_a_500_without_a_stack_trace(make_app):
    app = make_app()

    @app.get("/__boom_for_test")
    def boom():
        raise RuntimeError("secret internals")

    response = app.test_client().get("/__boom_for_test")
    assert response.status_code == 500
    body = response.get_json()
    assert body["code"] == "internal_error"
    assert "secret internals" not in json.dumps(body) and "Traceback" not in json.dumps(body)
