"""The child's end of the bridge protocol (docs/internals/training-bridge.md).

The protocol owns the process's original stdout: every line written there is one JSON
message. Anything else that would print to stdout (libraries, warnings) is sent to stderr,
which the worker keeps as the attempt's log and the tail of a crash report.
"""
import json
import os
import sys
import threading

from . import PROTOCOL_VERSION


class BridgeError(Exception):
    """A failure the worker reports as is. `code` is one of invalid_argument (the spec is
    wrong: not retried), failed_precondition (something this worker lacks: not retried) or
    internal (retried on another worker)."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


def invalid(message):
    return BridgeError("invalid_argument", message)


class Channel:
    """Thread-safe writer of protocol messages plus the reader of the worker's messages."""

    def __init__(self):
        out_fd = os.dup(1)
        os.dup2(2, 1)  # stray prints go to stderr from now on
        sys.stdout = sys.stderr
        self._out = os.fdopen(out_fd, "w", buffering=1, encoding="utf-8")
        self._lock = threading.Lock()
        self.finished = False  # the result or error is sent: the end of stdin is expected

    def send(self, kind, **fields):
        message = {"type": kind, **fields}
        line = json.dumps(message, separators=(",", ":"), allow_nan=False, default=str)
        with self._lock:
            self._out.write(line + "\n")
            self._out.flush()

    def log(self, message, level="info"):
        self.send("log", level=level, message=str(message))

    def read_start(self):
        """Reads the start message (the first line of stdin) and checks its version."""
        line = sys.stdin.readline()
        if not line:
            raise invalid("no start message on stdin")
        try:
            start = json.loads(line)
        except ValueError as exc:
            raise invalid(f"start message is not JSON: {exc}") from exc
        if not isinstance(start, dict) or start.get("type") != "start":
            raise invalid("the first message must be {\"type\": \"start\", ...}")
        if start.get("protocol") != PROTOCOL_VERSION:
            raise BridgeError("failed_precondition",
                              f"worker speaks protocol {start.get('protocol')!r}, "
                              f"this trainer speaks {PROTOCOL_VERSION}")
        return start

    def watch_stdin(self, on_stop):
        """After the start message: a `stop` message or the end of stdin (the worker went
        away) calls on_stop(reason) from a daemon thread."""

        def loop():
            for line in sys.stdin:
                try:
                    message = json.loads(line)
                except ValueError:
                    continue
                if isinstance(message, dict) and message.get("type") == "stop":
                    on_stop("stop requested")
                    return
            on_stop("stdin closed")

        threading.Thread(target=loop, name="bridge-stdin", daemon=True).start()
