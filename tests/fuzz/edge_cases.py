"""Schema-edge values the fuzz suite sends to each tier's chat completions as explicit cases.

Schemathesis draws from a JSON Schema, so it rarely hits values at the edge of what a server's
number types hold, and it never draws lone surrogates (its strings must encode as UTF-8). These
are the values earlier fuzz runs broke the service with (issues 8 and 12): each is valid JSON and
must get a documented answer, never a 5xx.
"""
from __future__ import annotations

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
UINT64_MAX = 2**64 - 1
SUBNORMAL_DOUBLE = 5e-324  # the smallest positive double
SUBNORMAL_FLOAT = 1e-45  # the smallest positive float32, as Java and torch round it
HUGE_DOUBLE = 1.7976931348623157e308  # the largest finite double
LONE_HIGH, LONE_LOW = "\ud800", "\udfff"

# Small enough that each case costs a few decode steps on the CPU.
MAX_TOKENS = 4
HELLO = [{"role": "user", "content": "Say hi."}]


def _chat(**fields) -> dict:
    return {"messages": HELLO, "max_tokens": 2, **fields}


# name -> request body; names say which edge each one probes and show in the suite's assertions.
CHAT_EDGE_CASES: dict[str, dict] = {
    "seed int64 min": _chat(seed=INT64_MIN),
    "seed int64 max": _chat(seed=INT64_MAX),
    "seed below int64": _chat(seed=INT64_MIN - 1),
    "seed uint64 max": _chat(seed=UINT64_MAX),
    "seed above uint64": _chat(seed=UINT64_MAX + 1),
    "max_tokens int64 max": {"messages": HELLO, "max_tokens": INT64_MAX},
    "max_tokens int64 min": {"messages": HELLO, "max_tokens": INT64_MIN},
    "max_completion_tokens above int64": {"messages": HELLO, "max_completion_tokens": INT64_MAX + 1},
    "temperature subnormal float": _chat(temperature=SUBNORMAL_FLOAT),
    "temperature subnormal double": _chat(temperature=SUBNORMAL_DOUBLE),
    "top_p subnormal double": _chat(temperature=2.0, top_p=SUBNORMAL_DOUBLE),
    "top_p subnormal double, streamed": _chat(temperature=2.0, top_p=SUBNORMAL_DOUBLE, stream=True),
    "temperature huge": _chat(temperature=HUGE_DOUBLE),
    "temperature huge negative": _chat(temperature=-HUGE_DOUBLE),
    "top_p huge": _chat(top_p=HUGE_DOUBLE),
    "model lone surrogate": _chat(model=LONE_HIGH),
    "content lone surrogate": {"messages": [{"role": "user", "content": LONE_LOW}], "max_tokens": 2},
    "content lone surrogate, streamed": {"messages": [{"role": "user", "content": LONE_HIGH + "hi"}],
                                          "max_tokens": 2, "stream": True},
    "user lone surrogate": _chat(user=LONE_HIGH),
    "stop lone surrogate": _chat(stop=[LONE_LOW]),
    "role lone surrogate": {"messages": [{"role": LONE_HIGH, "content": "hi"}], "max_tokens": 2},
}

def _text(**fields) -> dict:
    return {"prompt": "Say hi.", "max_tokens": 2, **fields}


# The legacy text completion's own edges: prompts as token ids, lists and unpaired surrogates.
COMPLETION_EDGE_CASES: dict[str, dict] = {
    "seed int64 max": _text(seed=INT64_MAX),
    "seed above uint64": _text(seed=UINT64_MAX + 1),
    "max_tokens int64 max": {"prompt": "Say hi.", "max_tokens": INT64_MAX},
    "top_p subnormal double, streamed": _text(temperature=2.0, top_p=SUBNORMAL_DOUBLE, stream=True),
    "prompt lone surrogate": _text(prompt=LONE_HIGH),
    "prompt list lone surrogate, streamed": _text(prompt=[LONE_LOW + "hi"], stream=True),
    "prompt token id int64 max": _text(prompt=[INT64_MAX]),
    "prompt token id above uint64": _text(prompt=[[UINT64_MAX + 1]]),
    "prompt token id past the vocabulary": _text(prompt=[2**31 - 1]),
    "stop lone surrogate": _text(stop=[LONE_LOW]),
    "echo with lone surrogate in stop": _text(echo=True, stop=LONE_HIGH),
}

# (method, path) -> name -> what the case sends (Case keyword arguments). An operation missing from
# a tier's OpenAPI document is skipped there; the suite asserts which cases each tier was sent.
EDGE_CASES: dict[tuple[str, str], dict[str, dict]] = {
    # `stream` stated, so that the hooks send each body exactly as written here.
    ("POST", "/v1/chat/completions"): {name: {"body": {"stream": False, **body}}
                                       for name, body in CHAT_EDGE_CASES.items()},
    ("POST", "/v1/completions"): {name: {"body": {"stream": False, **body}}
                                  for name, body in COMPLETION_EDGE_CASES.items()},
    ("POST", "/api/chat/messages"): {
        "message content lone surrogate": {"body": {"content": LONE_HIGH}},
        "message conversationId lone surrogate": {"body": {"conversationId": LONE_LOW, "content": "hi"}},
    },
    ("POST", "/admin/keys"): {
        "key name lone surrogate": {"body": {"name": LONE_HIGH}},
        "key limits int64 max": {"body": {"name": "edge", "requestsPerMinute": INT64_MAX}},
        "key limits above int64": {"body": {"name": "edge", "tokensPerMinute": INT64_MAX + 1}},
        "key limits subnormal": {"body": {"name": "edge", "maxConcurrentStreams": SUBNORMAL_DOUBLE}},
    },
    ("GET", "/admin/usage/requests"): {
        "usage limit int64 max": {"query": {"limit": INT64_MAX}},
        "usage limit above int64": {"query": {"limit": INT64_MAX + 1}},
        "usage keyId int64 min": {"query": {"keyId": INT64_MIN}},
    },
}
