"""advlm: adversarial training of pre-trained language models (FreeLB, SMART, TextAT, PGD, FreeAT, FGM).

The names below are imported on first use (PEP 562), so that `import advlm` and the command line's help and
listing start without torch and transformers."""

from advlm._version import __version__
from advlm.errors import AdvlmError

__all__ = [
    "AdversarialMethod",
    "AdversarialTrainer",
    "AdvlmError",
    "StepOutput",
    "__version__",
    "build_method",
    "list_methods",
    "register",
]

_LAZY = {
    "AdversarialMethod": "advlm.methods",
    "StepOutput": "advlm.methods",
    "build_method": "advlm.methods",
    "list_methods": "advlm.methods",
    "register": "advlm.methods",
    "AdversarialTrainer": "advlm.trainer",  # pulls in transformers.Trainer
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'advlm' has no attribute {name!r}")
