"""User-facing errors: each says what is wrong and how to fix it; the CLI prints it on one line, exit 2."""


class AdvlmError(ValueError):
    """A problem with the user's input (file, task, model, flag), not a bug in advlm."""
