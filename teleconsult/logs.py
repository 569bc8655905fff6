"""LOG_FORMAT: plain text lines (the default) or one JSON object per line.

A JSON line has `ts` (UTC, ISO 8601 with milliseconds), `level`, `logger`, `message`, and,
when the line was logged while working on one consult, `consult_id`
(`rooms.consults.log_context`: set by the socket.io events that name a consult, REST requests
on `/api/consults/{consult_id}/…` and the media node's calls, and inherited by the tasks they
start); `exc` holds a traceback when there is one.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from rooms.consults.log_context import current_consult

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class ConsultFilter(logging.Filter):
    """Puts the consult the running code concerns on the record (`record.consult_id`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "consult_id"):
            record.consult_id = current_consult.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        consult_id = getattr(record, "consult_id", None)
        if consult_id is not None:
            line["consult_id"] = consult_id
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exc"] = record.exc_text
        return json.dumps(line, ensure_ascii=False)


def configure_logging(log_format: str) -> None:
    """The root logger's one handler (on stderr) in this format, at INFO."""
    handler = logging.StreamHandler()
    handler.addFilter(ConsultFilter())
    handler.setFormatter(
        JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
