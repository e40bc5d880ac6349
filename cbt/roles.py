"""Who is who: the staff roles and the kinds of organisation.

Kept free of imports so that `cbt --help` can list them without loading the
database layer."""

ROLES = ("admin", "teacher", "reviewer", "proctor", "board")
ORG_KINDS = ("department", "school")

# Who may use what, by name: the URL table (routes.py) and the handlers use
# these sets, never a set written on the spot.
ADMIN = frozenset({"admin"})
PROCTORS = frozenset({"admin", "proctor"})
# Proctors run rooms; they have no business reading the question bank.
BANK_READERS = frozenset({"admin", "teacher", "reviewer", "board"})
# Item analysis is the exam board's (and an administrator's).
BOARD = frozenset({"board", "admin"})
# Teachers build exams, run their rosters and mark essays.
TEACHERS = frozenset({"admin", "teacher"})
# Results are read by those who set the exam and by the board.
RESULTS_READERS = frozenset({"admin", "teacher", "board"})
# Items are written, and releases built, by authors; reviewers approve and sign.
AUTHORS = frozenset({"admin", "teacher", "reviewer"})
SIGNERS = frozenset({"admin", "reviewer"})
REVIEWERS = frozenset({"reviewer"})
