"""A small registry: `@register("freelb")` on a method class; `build_method(name, **kwargs)`; `list_methods()`."""

from __future__ import annotations

from typing import Any

from advlm.errors import AdvlmError
from advlm.methods.base import AdversarialMethod

_METHODS: dict[str, type[AdversarialMethod]] = {}


def register(name: str):
    def decorate(cls: type[AdversarialMethod]) -> type[AdversarialMethod]:
        if name in _METHODS:
            raise ValueError(f"method '{name}' is registered twice ({_METHODS[name].__name__}, {cls.__name__})")
        cls.name = name
        _METHODS[name] = cls
        return cls

    return decorate


def method_class(name: str) -> type[AdversarialMethod]:
    key = name.lower()
    if key not in _METHODS:
        raise AdvlmError(f"unknown method '{name}'; choose one of: {', '.join(_METHODS)} (see `advlm list`)")
    return _METHODS[key]


def build_method(name: str, **kwargs: Any) -> AdversarialMethod:
    """The method `name` with hyper-parameters `kwargs` (others keep their paper defaults)."""
    cls = method_class(name)
    known = {f.name for f in cls.hyperparameters()}
    unknown = sorted(set(kwargs) - known)
    if unknown:
        raise AdvlmError(
            f"method '{name}' has no hyper-parameter(s) {', '.join(unknown)}; "
            f"it takes: {', '.join(sorted(known)) or 'none'}"
        )
    from advlm.config import coerce

    defaults = {f.name: f.default for f in cls.hyperparameters()}
    kwargs = {k: coerce(k, v, defaults[k]) for k, v in kwargs.items()}
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise AdvlmError(f"bad hyper-parameters for method '{name}': {e}") from None


def list_methods() -> list[str]:
    return list(_METHODS)
