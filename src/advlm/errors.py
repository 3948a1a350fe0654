"""User-facing errors, each printed by the CLI on one line: `AdvlmError` for bad input (exit 2, raised before
work starts where it can be), `RunFailed` for a run that started and could not finish honestly (exit 1: it
diverged, or its results would not be trustworthy)."""


class AdvlmError(ValueError):
    """A problem with the user's input (file, task, model, flag, output folder), not a bug in advlm."""


class RunFailed(RuntimeError):
    """A run that started but failed (a non-finite loss or weights): nothing it made is reported as a result."""


class Diverged(RunFailed):
    """A run whose loss or weights turned non-finite: its checkpoints would only diverge again when resumed with
    the same settings (which resuming requires), so its output folder keeps none of what it made."""


def one_line_reason(error: BaseException) -> str:
    """An exception as `Type: what happened` on one line (an OSError's own words, else its message's first line)."""
    text = error.strerror if isinstance(error, OSError) and error.strerror else str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0] if text else 'no message'}"
