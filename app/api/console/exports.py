"""Exports in the console (finance and owner): ask for one, watch its progress, download it."""

from __future__ import annotations

from flask import g, send_file
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from app.api.pagination import PageArgs, page_body, page_of
from app.clients import settings
from app.database import utcnow
from app.models.export import EXPORT_FORMATS, EXPORT_KINDS
from app.security import console_login_required
from app.services import exports as export_service

blp = Blueprint("console_exports", __name__, url_prefix="/api/console/v1",
                description="Exports")
BEARER = [{"bearerAuth": []}]
# Exports carry money and personal data: finance and the owner take them, operators do not.
EXPORTERS = ("owner", "finance")
EXPORT_STATUSES = ("queued", "running", "done", "failed")


class ExportIn(Schema):
    kind = fields.String(required=True, validate=validate.OneOf(EXPORT_KINDS),
                         metadata={"description": "income: the quarterly income report"})
    format = fields.String(required=True, validate=validate.OneOf(EXPORT_FORMATS))
    since_on = fields.Date(data_key="from", metadata={
        "description": "first day (the merchant's date), included; not for income"})
    until_on = fields.Date(data_key="to", metadata={
        "description": "last day (the merchant's date), included; not for income"})
    quarter = fields.String(validate=validate.Regexp(r"^\d{4}Q[1-4]$"), metadata={
        "description": "income only, required there: e.g. 2026Q1"})


class ExportOut(Schema):
    id = fields.Integer()
    kind = fields.String()
    format = fields.String()
    status = fields.String(metadata={"description": "queued | running | done | failed"})
    since_on = fields.String(data_key="from", allow_none=True)
    until_on = fields.String(data_key="to", allow_none=True)
    quarter = fields.String(allow_none=True)
    rows_written = fields.Integer()
    rows_total = fields.Integer(allow_none=True)
    percent = fields.Integer(metadata={"description": "0-100; 100 only when done"})
    file_name = fields.String(metadata={"description": "the download's file name"})
    error = fields.String(metadata={"description": "why it failed, when it did"})
    created_at = fields.DateTime()
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)
    download_url = fields.String(allow_none=True)


class ExportListArgs(PageArgs):
    status = fields.String(validate=validate.OneOf(EXPORT_STATUSES))


def export_body(export) -> dict:
    params = export.params or {}
    done = export.status == "done"
    return {
        "id": export.id, "kind": export.kind, "format": export.format,
        "status": export.status, "since_on": params.get("from"), "until_on": params.get("to"),
        "quarter": params.get("quarter"), "rows_written": export.rows_written,
        "rows_total": export.rows_total, "percent": export_service.percent(export),
        "file_name": export.file_name, "error": export.error,
        "created_at": export.created_at, "started_at": export.started_at,
        "finished_at": export.finished_at,
        "download_url": f"{blp.url_prefix}/exports/{export.id}/file" if done else None,
    }


@blp.route("/exports", methods=["POST"])
@console_login_required(*EXPORTERS)
@blp.arguments(ExportIn)
@blp.response(202, ExportOut)
@blp.alt_response(409, description="five exports already wait or run (too_many_exports)")
@blp.doc(security=BEARER)
def create(body):
    """Ask for an export: it is queued and written in the background; poll it for progress."""
    return export_body(export_service.create_export(
        merchant_id=g.merchant_id, staff_id=g.staff.id, kind=body["kind"], fmt=body["format"],
        since_on=body.get("since_on"), until_on=body.get("until_on"),
        quarter=body.get("quarter"), now=utcnow()))


@blp.route("/exports", methods=["GET"])
@console_login_required(*EXPORTERS)
@blp.arguments(ExportListArgs, location="query")
@blp.response(200, page_of(ExportOut))
@blp.doc(security=BEARER)
def list_exports(args):
    """This merchant's exports, newest first."""
    items, total = export_service.list_exports(
        merchant_id=g.merchant_id, status=args.get("status"), page=args["page"],
        per_page=args["per_page"])
    return page_body([export_body(e) for e in items], total, args)


@blp.route("/exports/<int:export_id>", methods=["GET"])
@console_login_required(*EXPORTERS)
@blp.response(200, ExportOut)
@blp.doc(security=BEARER)
def show(export_id):
    """One export: status, rows written of rows total, percent."""
    return export_body(export_service.get_export(merchant_id=g.merchant_id,
                                                 export_id=export_id))


@blp.route("/exports/<int:export_id>/file", methods=["GET"])
@console_login_required(*EXPORTERS)
@blp.response(200, description="The file (text/csv, UTF-8 with BOM; or XLSX), streamed",
              content_type="application/octet-stream")
@blp.alt_response(409, description="not finished yet (export_not_ready)")
@blp.doc(security=BEARER)
def download(export_id):
    """Download a finished export."""
    path, name, content_type = export_service.finished_file(
        merchant_id=g.merchant_id, export_id=export_id, root=settings().instance_dir)
    return send_file(path, mimetype=content_type, as_attachment=True, download_name=name,
                     max_age=0)
