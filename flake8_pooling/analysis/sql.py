"""SQL that keeps state in the database session, which transaction pooling does not carry
(facts 54, 95): what each statement is, and what works through a pooler instead.

Plain data and regular expressions only: the text prefilter and the `ast` gate use them too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class SessionState:
    kind: str  # how messages name it
    what_happens: str
    instead: str


ADVISORY_LOCK = SessionState(
    "a session advisory lock", "the lock stays on a server connection other clients then get, "
    "and the unlock runs on another one", "pg_advisory_xact_lock(), released at commit")
SET = SessionState(
    "a session-level SET", "the setting stays on the server connection and applies to the "
    "other clients that get it next", "SET LOCAL inside the transaction")
LISTEN = SessionState(
    "LISTEN", "notifications go to whichever client holds the server connection, or nobody",
    "a direct connection to PostgreSQL")
TEMP_TABLE = SessionState(
    "a temporary table that outlives its transaction", "the next transaction may run on "
    "another server connection, where the table does not exist",
    "ON COMMIT DROP, or a direct connection to PostgreSQL")
HOLD_CURSOR = SessionState(
    "a WITH HOLD cursor", "the cursor lives on a server connection the next statement may "
    "not get", "a cursor inside one transaction, or a direct connection")
PREPARE = SessionState(
    "an SQL PREPARE", "the prepared statement lives on one server connection; EXECUTE may run "
    "on another", "a parameterised query")

_STATEMENT_START = r"(?:^|;)\s*"
PATTERNS = (
    (re.compile(r"\bpg_(?:try_)?advisory_lock(?:_shared)?\s*\(", re.IGNORECASE), ADVISORY_LOCK),
    # SET name = value, SET name TO value, SET TIME ZONE ...: not "SET NULL", not prose
    (re.compile(_STATEMENT_START + r"SET\s+(?!LOCAL\b|TRANSACTION\b|CONSTRAINTS\b)"
                r"(?:SESSION\s+)?(?:TIME\s+ZONE\b|ROLE\s+\w|[A-Za-z_\"][\w.\"]*\s*(?:=|\bTO\b))",
                re.IGNORECASE), SET),
    (re.compile(r"\bset_config\s*\([^)]*,\s*false\s*\)", re.IGNORECASE), SET),
    (re.compile(_STATEMENT_START + r"LISTEN\s+\w", re.IGNORECASE), LISTEN),
    (re.compile(r"\bCREATE\s+(?:GLOBAL\s+|LOCAL\s+)?TEMP(?:ORARY)?\s+TABLE\b(?![^;]*\bON\s+"
                r"COMMIT\s+DROP\b)", re.IGNORECASE), TEMP_TABLE),
    (re.compile(r"\bWITH\s+HOLD\b", re.IGNORECASE), HOLD_CURSOR),
    (re.compile(_STATEMENT_START + r"PREPARE\s+\w+\s*(?:\(|AS\b)", re.IGNORECASE), PREPARE),
)
# SQLAlchemy's func.<name>(...) spellings of the same
FUNCTIONS = {"pg_advisory_lock": ADVISORY_LOCK, "pg_try_advisory_lock": ADVISORY_LOCK,
             "pg_advisory_lock_shared": ADVISORY_LOCK,
             "pg_try_advisory_lock_shared": ADVISORY_LOCK}
# Words a file must contain for any of the above, as SQL strings usually start them (a quote
# before SET keeps out UNSET, ASSET and prose)
WORDS = ("advisory_lock", "set_config", "TEMP TABLE", "TEMPORARY TABLE", "temp table",
         "temporary table", "WITH HOLD", "with hold", '"SET ', "'SET ", "; SET ", '"set ',
         "'set ", '"LISTEN ', "'LISTEN ", '"listen ', "'listen ", '"PREPARE ', "'PREPARE ",
         "set search_path", "set statement_timeout", "set lock_timeout", "set role ",
         "set session ", "set time zone", "set timezone", "set application_name",
         "set idle_in_transaction")


def session_state(sql: str) -> SessionState | None:
    """What session state the SQL text keeps, if any."""
    for pattern, state in PATTERNS:
        if pattern.search(sql):
            return state
    return None


# The words grouped by a stem they share: a text without "SET" is not searched for the words
# that contain it (every search is a pass over the text, and most texts have none)
_STEMS = ("SET", "set", "LISTEN", "listen", "TEMP", "temp", "HOLD", "hold", "PREPARE",
          "advisory_lock")
_GROUPS = tuple((stem, tuple(word for word in WORDS if stem in word)) for stem in _STEMS)


def mentions_session_state(text: str) -> bool:
    # SQL reaches the database through execute(), exec_driver_sql() or text() handed to them:
    # one search keeps most files from the rest
    return ("execute(" in text or "exec_driver_sql(" in text) and any(
        stem in text and any(word in text for word in words) for stem, words in _GROUPS)
