"""The admin API's error answers: `{"errors": [{"code", "message"}]}` with a stable code (handled in app.py)."""

from typing import Any

from fastapi import HTTPException
from pydantic import BaseModel


def api_error(status: int, code: str, message: str) -> HTTPException:
    """One error; the message names the parameter or field at fault (`- at \\`name\\``)."""
    return HTTPException(status, detail={"code": code, "message": message})


def api_errors(status: int, errors: list[tuple[str, str]]) -> HTTPException:
    """Several errors at once (e.g. every unknown parameter of a request)."""
    return HTTPException(status, detail=[{"code": code, "message": message} for code, message in errors])


class ErrorItem(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    """The body of every refusal."""

    errors: list[ErrorItem]


def _declared(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


# Declared on every admin operation: what the handlers in app.py and the token check really answer.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _declared("Invalid request (a parameter, field or body refused; the message names it)"),
    401: _declared("Missing or invalid admin token"),
    404: _declared("Not found"),
}

# Declared on the operations that refuse a clash with what exists (a name taken, a purpose or output in use).
CONFLICT: dict[int | str, dict[str, Any]] = {409: _declared("Conflict with what exists (the message says what)")}


def without_422(schema: dict[str, Any]) -> dict[str, Any]:
    """FastAPI documents 422 for validation errors; Kaon answers 400 (`ERROR_RESPONSES`): drop the 422s."""
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            if isinstance(operation, dict):
                operation.get("responses", {}).pop("422", None)
    components = schema.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    return schema
