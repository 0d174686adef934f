"""Tool-call dialects: how tools reach a prompt without a tools-aware chat template, and how calls are
read back out of the model's text, streamed or not (docs/tool-calling.md). One dialect per module,
registered by name; `dialect_for` picks one by the model's type.

Text that could still become a call (a partial `<tool_call>` tag, a ChatGLM3 first line) is held back,
never sent as content; a block that does not parse, or names a function that is not among the tools,
stays content: nothing the model wrote is lost.
"""

from .base import ParsedCall, ToolStreamParser
from .chatglm3 import ChatGLM3Dialect, ChatGLM3StreamParser
from .hermes import HermesDialect, HermesStreamParser
from .json_calls import JsonCallsStreamParser
from .registry import dialect_for, dialects

__all__ = ["ChatGLM3Dialect", "ChatGLM3StreamParser", "HermesDialect", "HermesStreamParser",
           "JsonCallsStreamParser", "ParsedCall", "ToolStreamParser", "dialect_for", "dialects"]
