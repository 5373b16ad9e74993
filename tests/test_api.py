"""The public API is exactly what __all__ says."""

from __future__ import annotations

import inspect

import neardup


def test_public_names_are_exactly_all():
    """Every name in __all__ exists, __all__ is sorted, and no other public name leaks."""
    assert neardup.__all__ == sorted(neardup.__all__)
    for name in neardup.__all__:
        assert hasattr(neardup, name)
    public = {n for n in dir(neardup) if not n.startswith("_") and not inspect.ismodule(getattr(neardup, n))}
    assert public == set(neardup.__all__)


def test_errors_subclass_builtins():
    """Library errors are catchable as the built-in exceptions callers expect."""
    assert issubclass(neardup.ConfigError, ValueError)
    assert issubclass(neardup.InputError, ValueError)
    assert issubclass(neardup.RecordError, neardup.InputError)
    assert issubclass(neardup.IndexFormatError, neardup.NearDupError)


def test_every_public_class_function_and_method_says_what_it_is_for():
    """Each exported function and class, and each public method and property of an exported class,
    has a docstring (help() and the API reference are built from them)."""
    import inspect

    undocumented = []
    for name in neardup.__all__:
        exported = getattr(neardup, name)
        if not (inspect.isclass(exported) or inspect.isfunction(exported)):
            continue
        if not inspect.getdoc(exported):
            undocumented.append(name)
        if inspect.isclass(exported):
            for member, value in vars(exported).items():
                function = value.fget if isinstance(value, property) else getattr(value, "__func__", value)
                if not member.startswith("_") and callable(function) and not function.__doc__:
                    undocumented.append(f"{name}.{member}")
    assert undocumented == []
