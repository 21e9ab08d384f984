"""The admin API's error answers: `{"errors": [{"code", "message"}]}` with a stable code (handled in app.py)."""

from fastapi import HTTPException


def api_error(status: int, code: str, message: str) -> HTTPException:
    """One error; the message names the parameter or field at fault (`- at \\`name\\``)."""
    return HTTPException(status, detail={"code": code, "message": message})


def api_errors(status: int, errors: list[tuple[str, str]]) -> HTTPException:
    """Several errors at once (e.g. every unknown parameter of a request)."""
    return HTTPException(status, detail=[{"code": code, "message": message} for code, message in errors])
