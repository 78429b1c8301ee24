"""Log lines in weave-npc's format: `INFO: 2026/11/26 07:01:29.272583 message`."""

from __future__ import annotations

import logging
import sys
from datetime import datetime

_LEVELS = {"DEBUG": "DEBU", "INFO": "INFO", "WARNING": "WARN", "ERROR": "ERRO", "CRITICAL": "FATA"}


class WeaveFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created).strftime("%Y/%m/%d %H:%M:%S.%f")
        return f"{_LEVELS.get(record.levelname, record.levelname)}: {stamp} {record.getMessage()}"


def setup(level: str = "info") -> logging.Logger:
    logger = logging.getLogger("netpolcheck.npc")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(WeaveFormatter())
    logger.handlers[:] = [handler]
    logger.setLevel(level.upper())
    logger.propagate = False
    return logger
