"""Errors the CLI turns into one readable line and a distinct exit code."""

from __future__ import annotations

# Exit codes (documented in images/trainer/README.md).
EXIT_USAGE = 2  # bad arguments (argparse uses 2 as well)
EXIT_WORKSPACE = 3  # workspace missing or a previous step has not run
EXIT_TRACKING = 4  # tracking server unset, unreachable or failing


class TrainerError(Exception):
    """A failure the user can fix; `exit_code` tells the pipeline what kind."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageError(TrainerError):
    exit_code = EXIT_USAGE


class WorkspaceError(TrainerError):
    exit_code = EXIT_WORKSPACE


class TrackingError(TrainerError):
    exit_code = EXIT_TRACKING
