"""The service's log output: plain lines (the default) or one JSON object per line (MODEL_SERVICE_LOG_FORMAT=json).
A JSON line carries the trace id of the span current when it was logged, or the one its record names (the request
log line is written after its request's span ended), so a log search finds the request's trace and back."""

from __future__ import annotations

import json
import logging
import sys
import time

from opentelemetry import trace

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class JsonFormatter(logging.Formatter):
    """{"time", "level", "logger", "message", "trace_id", "span_id", ...}; a record with `fields` (a dict) has them
    as its keys instead of a message (the request log line)."""

    def format(self, record: logging.LogRecord) -> str:
        line = {"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                + f".{int(record.msecs):03d}Z", "level": record.levelname, "logger": record.name}
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            line["trace_id"] = format(context.trace_id, "032x")
            line["span_id"] = format(context.span_id, "016x")
        fields = getattr(record, "fields", None)  # set by `extra=`: LogRecord has no such attribute otherwise
        if isinstance(fields, dict):
            line.update({k: v for k, v in fields.items() if v is not None or k not in line})
        else:
            line["message"] = record.getMessage()
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def configure_logging(level: str, log_format: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
