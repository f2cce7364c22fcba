"""Expected failures: each carries what happened and what the user can do about it.

Anything raised as a WtError reaches the user as one line (CLI) or as
`error: {type, message}` in a job's status.json (spool), never as a traceback.
"""

from __future__ import annotations


class WtError(Exception):
    """Base of expected failures. `kind` is the stable machine-readable error type."""

    kind = "error"

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class InputNotFound(WtError):
    kind = "input_not_found"


class NotAudio(WtError):
    kind = "not_audio"


class EmptyAudio(WtError):
    kind = "empty_audio"


class InputRefused(WtError):
    """Inputs the spool will not read: symlinks, FIFOs, devices, oversized files."""

    kind = "input_refused"


class IncompleteInput(WtError):
    """A spool input smaller or larger than the size its sidecar declared."""

    kind = "incomplete_input"


class InvalidOptions(WtError):
    kind = "invalid_options"


class ModelNotFound(WtError):
    kind = "model_not_found"


class ModelUnavailable(WtError):
    """A known model that cannot be obtained here (offline, corrupt, missing extra)."""

    kind = "model_unavailable"


class EngineUnavailable(WtError):
    kind = "engine_unavailable"


class OutputError(WtError):
    kind = "output_error"


class Canceled(WtError):
    kind = "canceled"
