"""Who is who: the staff roles and the kinds of organisation.

Kept free of imports so that `cbt --help` can list them without loading the
database layer."""

ROLES = ("admin", "teacher", "reviewer", "proctor", "board")
ORG_KINDS = ("department", "school")
