"""The baselines the notification benchmark compares against, served by the same gunicorn
configuration as the app: ``POST /bare`` answers ``{"ok": true}`` and does nothing else;
``POST /insert`` also writes one row and commits, on the same PostgreSQL as the app.

The notification handler's cost is then split: what any Flask request costs on this gunicorn
(``/bare``), what one durable write adds (``/insert``), and what the app's own work adds.
Run by ``tests.benchmarks.notify`` as ``tests.benchmarks.baseline_app:app``; the table
(``BENCH_INSERTS``) is created by the benchmark before gunicorn starts.
"""

from __future__ import annotations

import os

from flask import Flask, jsonify, request
from sqlalchemy import create_engine, text

TABLE = "bench_inserts"
CREATE_TABLE = f"""CREATE TABLE IF NOT EXISTS {TABLE} (
    id BIGSERIAL PRIMARY KEY,
    received_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    nonce TEXT NOT NULL,
    body_bytes INTEGER NOT NULL)"""
INSERT = text(f"INSERT INTO {TABLE} (nonce, body_bytes) VALUES (:nonce, :body_bytes)")

app = Flask(__name__)
# The app's engine options (pool_pre_ping, the default pool): a fair comparison.
_database_url = os.environ.get("BASELINE_DATABASE_URL")
engine = create_engine(_database_url, pool_pre_ping=True) if _database_url else None


@app.get("/healthz")
def healthz():
    return jsonify(ok=True)


@app.post("/bare")
def bare():
    # Read the body as the handler does, so both pay for receiving the same bytes.
    request.get_data()
    return jsonify(ok=True)


@app.post("/insert")
def insert():
    body = request.get_data()
    with engine.begin() as connection:  # one INSERT, one COMMIT
        connection.execute(INSERT, {"nonce": request.headers.get("Wechatpay-Nonce", ""),
                                    "body_bytes": len(body)})
    return jsonify(ok=True)
