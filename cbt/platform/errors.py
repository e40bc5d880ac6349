"""Errors a user can cause: a stable code for scripts and the page's JS,
and a message that says what to fix. The error middleware turns these into
an error page or a JSON body; the CLI prints the message and exits 1."""

from __future__ import annotations


class UserError(Exception):
    status = 400

    def __init__(self, code: str, message: str, *, status: int | None = None, **details):
        super().__init__(message)
        self.code = code
        self.message = message
        if status is not None:
            self.status = status
        self.details = details

    def __reduce__(self) -> tuple:
        # Pickled whole, so that an error raised in the process that reads an
        # upload (cbt.platform.uploads) arrives with its code, status and details.
        return _rebuild, (type(self), self.__dict__)

    def to_json(self) -> dict:
        body = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return {"error": body}


class NotFound(UserError):
    status = 404


class Forbidden(UserError):
    status = 403


class Conflict(UserError):
    status = 409


class TooManyRequests(UserError):
    status = 429


def _rebuild(cls: type[UserError], state: dict) -> UserError:
    error = cls.__new__(cls)
    Exception.__init__(error, state.get("message"))
    error.__dict__.update(state)
    return error


class Problem(str):
    """One of several faults reported at once (an exam file's, the builder form's).

    The string itself is the English line the file commands print and the
    error's details list, as before; `code` and `params` let a page say it in
    the reader's language (the catalogs' "problem.<code>"), and `where` names
    the field at fault in the exam file's terms ("window.opens",
    "sections[2].points"), which the page shows as the form's own label.
    """

    code: str
    where: str
    params: dict

    def __new__(cls, message: str, code: str, where: str = "", **params) -> Problem:
        self = super().__new__(cls, message)
        self.code, self.where, self.params = code, where, params
        return self

    def __reduce__(self) -> tuple:
        return _problem, (str(self), self.code, self.where, self.params)


def _problem(message: str, code: str, where: str, params: dict) -> Problem:
    return Problem(message, code, where, **params)


class FieldProblem(str):
    """One problem of an item's field, or of a line of an imported file: the
    English line (what the CLI prints), and its code (itembank's, or cbt's
    own) and values, which a page says in the reader's language through
    "item_problem.<code>". ``where`` ("items.yaml:18", "mau.xlsx: row 3,
    column 'level'") places a problem of an import; the line starts with it."""

    code: str
    params: dict
    where: str

    def __new__(cls, message: str, code: str, *, where: str = "", **params) -> FieldProblem:
        self = super().__new__(cls, f"{where}: {message}" if where else message)
        self.code, self.params, self.where, self.message = code, params, where, message
        return self

    def __reduce__(self) -> tuple:
        # Read in the upload process and pickled back: rebuilt with its code and values.
        return _field_problem, (self.message, self.code, self.where, self.params)


def _field_problem(message: str, code: str, where: str, params: dict) -> FieldProblem:
    return FieldProblem(message, code, where=where, **params)
