"""How errors are shown: the one error shape of app.errors, as the OpenAPI document states it."""

from __future__ import annotations

from marshmallow import Schema, fields


class ErrorOut(Schema):
    code = fields.String(required=True, metadata={
        "description": "stable and machine-readable: invalid_input, not_found, role_forbidden…"})
    message = fields.String(required=True, metadata={"description": "for people"})
    errors = fields.Dict(keys=fields.String(), required=True, metadata={
        "description": "field name → its messages (nested objects for nested fields); "
                       "empty when no field is to blame"})
