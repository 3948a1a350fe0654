"""advlm: adversarial training of pre-trained language models (FreeLB, SMART, TextAT, PGD, FreeAT, FGM)."""

from advlm._version import __version__
from advlm.errors import AdvlmError
from advlm.methods import AdversarialMethod, StepOutput, build_method, list_methods, register

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


def __getattr__(name: str):
    if name == "AdversarialTrainer":  # imported lazily: pulls in transformers.Trainer
        from advlm.trainer import AdversarialTrainer

        return AdversarialTrainer
    raise AttributeError(f"module 'advlm' has no attribute {name!r}")
