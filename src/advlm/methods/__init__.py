"""Adversarial fine-tuning methods, one file each, behind `AdversarialMethod.step`."""

from advlm.methods import vanilla  # noqa: F401, I001  (registers first: listed first)
from advlm.methods import fgm, freeat, freelb, pgd, smart, textat  # noqa: F401, E402  (register)
from advlm.methods import neftune, r3f, r4f, awp  # noqa: F401, E402, I001  (the cheaper rungs, listed after)
from advlm.methods.base import AdversarialMethod, StepOutput
from advlm.methods.registry import build_method, list_methods, method_class, register

__all__ = ["AdversarialMethod", "StepOutput", "build_method", "list_methods", "method_class", "register"]
