"""Adversarial fine-tuning methods, one file each, behind `AdversarialMethod.step`."""

from advlm.methods import vanilla  # noqa: F401  (registers)
from advlm.methods.base import AdversarialMethod, StepOutput
from advlm.methods.registry import build_method, list_methods, method_class, register

__all__ = ["AdversarialMethod", "StepOutput", "build_method", "list_methods", "method_class", "register"]
