"""Problems found in item files, and the errors the library raises.

A `Problem` is something wrong with the *content* a teacher wrote; checks
collect every problem and report them all at once. An `ItembankError` stops
an operation (a bad signature, a wrong passphrase ...). Both carry a stable
`code` so that the web pages and tests can tell cases apart without parsing
English.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong in an item file, shown as ``file:line: message``.

    `field` names the item field at fault ("level", "options.B",
    "statements.c.answer" ...), so that the spreadsheet importer can turn it
    into a column name. `column` is set only by that importer, and then the
    problem prints as ``file: row N, column 'C': message``.
    """

    file: str
    line: int | None
    code: str
    message: str
    field: str | None = None
    column: str | None = None

    @property
    def where(self) -> str:
        """``file:line``, or ``file: row N, column 'C'`` for a spreadsheet row."""
        if self.column is not None:  # a spreadsheet row; "" when no single column is at fault
            return f"{self.file}: row {self.line}" + (f", column '{self.column}'" if self.column else "")
        if self.line is None:
            return self.file
        return f"{self.file}:{self.line}"

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


class ItembankError(Exception):
    """An operation could not be done; `message` says why and how to fix it."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple:
        # Pickled whole (code, message and any subclass's fields), so that an
        # error raised in another process (cbt.platform.uploads) arrives as it was.
        return _rebuild, (type(self), self.__dict__)


def _rebuild(cls: type[Exception], state: dict) -> Exception:
    error = cls.__new__(cls)
    Exception.__init__(error, state.get("message"))
    error.__dict__.update(state)
    return error


class ProblemsError(ItembankError):
    """An operation refused because the content has problems (listed)."""

    def __init__(self, code: str, message: str, problems: Iterable[Problem]) -> None:
        super().__init__(code, message)
        self.problems = list(problems)


class KeyFileError(ItembankError):
    """A key file is missing, unreadable, encrypted with another passphrase ..."""


class SignError(ProblemsError):
    """Signing refused: the release has problems or unapproved items."""


class VerifyError(ItembankError):
    """A release is not exactly what its trusted signer signed.

    `files` lists the paths concerned (changed, missing or extra files).
    """

    def __init__(self, code: str, message: str, files: Iterable[str] = ()) -> None:
        super().__init__(code, message)
        self.files = list(files)


class ReleaseInvalidError(ProblemsError):
    """A verified release whose items do not pass validation."""


class PackError(ItembankError):
    """A folder cannot be packed (not signed, or changed since signing)."""


class SealError(ItembankError):
    """Sealing or unsealing failed: wrong key, mistyped key, damaged file ..."""


class XlsxError(ProblemsError):
    """A spreadsheet of items has problems (each with its row and column)."""
