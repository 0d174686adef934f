"""Schemathesis hooks of the fuzz suite, loaded by `st run` (SCHEMATHESIS_HOOKS=fuzz_hooks).

- every request body asks for at most MAX_TOKENS tokens, so each case costs a few decode steps;
- half the chat and text completion bodies that do not say whether to stream ask for a stream (drawn bodies rarely
  name the optional `stream`, and streams are the other half of the chat contract);
- the explicit schema-edge cases (edge_cases.py) join the examples phase;
- the fuzzer's own API key and browser session are never deleted, disabled or rate-limited by
  the very cases it sends (else every later case would only test a 401); browser API cases carry
  the session cookie (FUZZ_SESSION_COOKIE);
- every request sent is recorded to FUZZ_RECORD (JSON lines), so the suite can count the cases
  and check that the edge values really went out.
"""
from __future__ import annotations

import json
import os
import threading
import zlib

import schemathesis
from schemathesis.core import NotSet
from edge_cases import EDGE_CASES, MAX_TOKENS

TOKEN_FIELDS = ("max_tokens", "max_completion_tokens", "maxTokens")
# Token counts above this are far past any test model's context: the server rejects them without
# generating, so they stay as drawn (schema-edge values such as int64 bounds must still be sent).
UNGENERATABLE = 1 << 20

_record_lock = threading.Lock()


def _token_count(value) -> int | None:
    """The count a lenient server reads from a drawn value (2, 2.0 and "2" are all 2), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        return int(value.strip())
    return None


def _generates(body) -> bool:
    """A chat (`messages`) or text completion (`prompt`) body: one that reaches the model."""
    return isinstance(body, dict) and ("messages" in body or "prompt" in body)


def cap_tokens(body) -> None:
    """Caps the completion budget a body asks for, and asks for one where it names none (a null
    is no budget either: the server would generate to the end of the model's context)."""
    if not _generates(body):
        return
    for field in TOKEN_FIELDS:
        if field in body:
            count = _token_count(body[field])
            if body[field] is None or (count is not None and MAX_TOKENS < count <= UNGENERATABLE):
                body[field] = MAX_TOKENS
    if not any(field in body for field in TOKEN_FIELDS):
        body["max_tokens"] = MAX_TOKENS


def ask_for_stream(body) -> None:
    """Makes half the chat bodies that leave `stream` out ask for a stream, chosen by a checksum of
    the body so that the same seed sends the same requests."""
    if _generates(body) and "stream" not in body:
        if zlib.crc32(json.dumps(body, sort_keys=True, default=repr).encode()) % 2:
            body["stream"] = True


def _use_own_credentials(case) -> None:
    """Key-changing cases go to a key that does not exist instead of the fuzzer's own; browser API
    cases carry the fuzzer's session cookie, except sign-out, which gets one of its own (signing
    out the fuzzer's session would leave every later /api case a 401)."""
    protected = os.environ.get("FUZZ_PROTECTED_KEY_ID")
    if (protected and case.operation.path.startswith("/admin/keys/")
            and case.method.upper() in ("PATCH", "DELETE")
            and str((case.path_parameters or {}).get("id")) == protected):
        case.path_parameters["id"] = int(protected) + 1_000_000
    session = os.environ.get("FUZZ_SESSION_COOKIE")
    if session and case.operation.path.startswith("/api/"):
        signing_out = case.operation.path == "/api/session" and case.method.upper() == "DELETE"
        cookie = "relay_session=fuzz-signed-out" if signing_out else session
        case.headers = {**(case.headers or {}), "Cookie": cookie}


@schemathesis.hook
def before_add_examples(context, examples: list) -> None:
    operation = context.operation
    for case_kwargs in EDGE_CASES.get((operation.method.upper(), operation.path), {}).values():
        examples.append(operation.Case(**case_kwargs))


@schemathesis.hook
def before_call(context, case, kwargs) -> None:
    cap_tokens(case.body)
    ask_for_stream(case.body)
    _use_own_credentials(case)


@schemathesis.hook
def after_call(context, case, response) -> None:
    path = os.environ.get("FUZZ_RECORD")
    if not path:
        return
    if isinstance(case.body, NotSet):  # no body
        body = None
    elif isinstance(case.body, (dict, list, str, int, float, bool, type(None))):
        body = case.body
    else:
        body = repr(case.body)
    meta = case.meta
    line = json.dumps({"phase": meta.phase.name.value if meta else None,
                       "mode": meta.generation.mode.value if meta else None,
                       "method": case.method.upper(), "path": case.operation.path, "query": case.query,
                       "body": body, "status": response.status_code}, default=repr)
    with _record_lock, open(path, "a", encoding="ascii") as record:
        record.write(line + "\n")
