"""The project's one exception root.

Every error a user can cause (bad dataset name, sparsity out of range, malformed profile,
unparsable budget, unreachable storage) is a :class:`CodesignError`. Its message is one line that
names the argument, the bad value, what is allowed and how to fix it. The CLI prints that line and
exits non-zero (traceback only under ``--debug``); library code raises, it never exits.

It lives in ``costmodels`` because that package is the bottom of the dependency order
(codesign -> search -> costmodels); ``codesign`` and ``search`` re-export it.
"""

from __future__ import annotations


class CodesignError(Exception):
    """A user-facing error: the message is one line that says what is wrong and what to do."""


class ProfileError(CodesignError):
    """A device profile is missing, malformed or names unknown keys."""


class UnknownNameError(CodesignError):
    """A model, dataset, device, method or metric name is not one we know."""


class MeasurementError(CodesignError):
    """A measurement was asked for that this machine cannot make (e.g. energy without NVML/RAPL)."""


def check_fraction(name: str, value: float) -> float:
    """Return ``value`` if it is a sparsity in [0, 1), else raise a one-line error naming ``name``."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise CodesignError(f"{name} must be a number in [0, 1), got {value!r}") from None
    if not 0.0 <= v < 1.0:
        raise CodesignError(f"{name} must be in [0, 1) (a fraction of entries removed), got {value!r}")
    return v


def check_name(flag: str, value: str) -> str:
    """A name that becomes a file or folder name (profile, study): 1-100 letters, digits, ``. _ - +``, not
    starting with a dot, so it can never leave its folder (no separators, no ``..``)."""
    import re

    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9_+-][A-Za-z0-9._+-]{0,99}", value):
        raise CodesignError(f"{flag} {value!r}: a name may use letters, digits and . _ - + (1-100 characters, "
                            "not starting with '.'; no '/' or '..'), e.g. my-gpu")
    return value


def unknown(kind: str, value: str, valid: list[str] | tuple[str, ...]) -> UnknownNameError:
    """Build the standard 'unknown X' error listing the valid choices."""
    choices = ", ".join(sorted(valid))
    return UnknownNameError(f"unknown {kind} {value!r}; valid {kind}s: {choices}")


def load_failure(exc: BaseException) -> str:
    """Why ``torch.load`` could not read a file, in words (a bare ``EOFError`` or ``KeyError: 101`` tells a user
    nothing)."""
    text = str(exc)
    lines = text.strip().splitlines()
    first = (lines[0] if lines else "")[:120]
    if "Weights only load failed" in text:  # torch's weights-only unpickler refused the file
        return ("it holds pickled Python objects, not only tensors" if "GLOBAL" in text
                else "it is not a torch.save file")
    if isinstance(exc, EOFError) or "Ran out of input" in first:
        return "it is empty or ends early: truncated, or not a torch.save file"
    if (isinstance(exc, KeyError) or "invalid load key" in first or "central directory" in first
            or "not a zip" in first.lower() or "magic number" in first):
        return "it is not a torch.save file"
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__
