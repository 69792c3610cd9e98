"""
The export test: pins the ``__all__`` of every public module, checks that every public name
exists and is documented, and that the import paths users rely on keep working (also without
aiohttp installed).
"""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import importlib.resources
import inspect
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import ld_eventsource
import ld_eventsource.version

EXPECTED_ALL: dict[str, set[str]] = {
    "ld_eventsource": {"SSEClient", "AsyncSSEClient", "ClientStats", "__version__"},
    "ld_eventsource.stats": {"ClientStats"},
    "ld_eventsource.actions": {"Action", "Event", "Comment", "Start", "Fault"},
    "ld_eventsource.errors": {
        "CaseInsensitiveHeaders",
        "EventTooLargeError",
        "ExceptionWithHeaders",
        "HTTPContentTypeError",
        "HTTPProtocolError",
        "HTTPStatusError",
        "Headers",
        "ProxyError",
        "StreamTimeoutError",
    },
    "ld_eventsource.config": {
        "AsyncConnectStrategy",
        "AsyncConnectionClient",
        "AsyncConnectionResult",
        "ConnectStrategy",
        "ConnectionClient",
        "ConnectionResult",
        "DynamicQueryParams",
        "ErrorStrategy",
        "RetryDelayStrategy",
    },
    "ld_eventsource.config.connect_strategy": {
        "ConnectStrategy",
        "ConnectionClient",
        "ConnectionResult",
        "DynamicQueryParams",
    },
    "ld_eventsource.config.async_connect_strategy": {
        "AsyncConnectStrategy",
        "AsyncConnectionClient",
        "AsyncConnectionResult",
    },
    "ld_eventsource.config.error_strategy": {"ErrorStrategy"},
    "ld_eventsource.config.retry_delay_strategy": {"RetryDelayStrategy"},
    "ld_eventsource.sse_client": {"SSEClient"},
    "ld_eventsource.async_client": {"AsyncSSEClient"},
}

# Where each re-exported name is defined: the re-export must be the very same object.
DEFINED_IN: dict[tuple[str, str], str] = {
    ("ld_eventsource", "SSEClient"): "ld_eventsource.sse_client",
    ("ld_eventsource", "AsyncSSEClient"): "ld_eventsource.async_client",
    ("ld_eventsource", "ClientStats"): "ld_eventsource.stats",
    **{
        ("ld_eventsource.config", name): "ld_eventsource.config.connect_strategy"
        for name in EXPECTED_ALL["ld_eventsource.config.connect_strategy"]
    },
    **{
        ("ld_eventsource.config", name): "ld_eventsource.config.async_connect_strategy"
        for name in EXPECTED_ALL["ld_eventsource.config.async_connect_strategy"]
    },
    ("ld_eventsource.config", "ErrorStrategy"): "ld_eventsource.config.error_strategy",
    ("ld_eventsource.config", "RetryDelayStrategy"): "ld_eventsource.config.retry_delay_strategy",
}

PUBLIC_NAMES = [(module, name) for module, names in EXPECTED_ALL.items() for name in sorted(names)]


def attribute_docstring(module_name: str, name: str) -> str | None:
    """
    The docstring written under a module-level assignment (``NAME = ...`` then a string), as
    Sphinx reads it; follows ``from x import NAME`` to the defining module.
    """
    module = importlib.import_module(module_name)
    source = inspect.getsource(module)
    body = ast.parse(source).body
    for index, node in enumerate(body):
        if isinstance(node, ast.Assign):
            targets = [t.id for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            targets = [node.target.id]
        else:
            continue
        if name not in targets:
            continue
        if index + 1 < len(body):
            following = body[index + 1]
            if (
                isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)
            ):
                return following.value.value
        return None
    for node in body:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if any(alias.name == name and alias.asname in (None, name) for alias in node.names):
                return attribute_docstring(node.module, name)
    return None


def docstring_of(module_name: str, name: str) -> str | None:
    module = importlib.import_module(module_name)
    value = getattr(module, name)
    if inspect.isclass(value) or inspect.isroutine(value) or isinstance(value, ModuleType):
        doc = value.__doc__
        return doc if isinstance(doc, str) else None
    return attribute_docstring(module_name, name)


# ---------------------------------------------------------------------------------------------
# __all__ and docstrings
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("module_name", sorted(EXPECTED_ALL))
def test_module_all_is_pinned(module_name: str) -> None:
    module = importlib.import_module(module_name)
    exported = module.__all__
    assert isinstance(exported, list | tuple)
    assert len(set(exported)) == len(exported), f"duplicates in {module_name}.__all__"
    assert set(exported) == EXPECTED_ALL[module_name]


@pytest.mark.parametrize("module_name", sorted(EXPECTED_ALL))
def test_module_has_docstring(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert module.__doc__ is not None
    assert module.__doc__.strip()


@pytest.mark.parametrize(("module_name", "name"), PUBLIC_NAMES)
def test_public_name_exists_and_is_documented(module_name: str, name: str) -> None:
    module = importlib.import_module(module_name)
    assert hasattr(module, name), f"{module_name}.{name} is missing"
    doc = docstring_of(module_name, name)
    assert doc is not None, f"{module_name}.{name} has no docstring"
    assert doc.strip(), f"{module_name}.{name} has an empty docstring"


@pytest.mark.parametrize(("module_name", "name"), sorted(DEFINED_IN))
def test_reexports_are_the_defining_objects(module_name: str, name: str) -> None:
    reexported = getattr(importlib.import_module(module_name), name)
    defined = getattr(importlib.import_module(DEFINED_IN[(module_name, name)]), name)
    assert reexported is defined


def _public_members(cls: type) -> list[tuple[str, Any]]:
    """Public methods and properties that the package itself defines on ``cls``."""
    members: list[tuple[str, Any]] = []
    for klass in cls.__mro__:
        if not klass.__module__.startswith("ld_eventsource"):
            continue
        for attr, value in vars(klass).items():
            if attr.startswith("_"):
                continue
            if isinstance(value, staticmethod | classmethod):
                members.append((attr, value.__func__))
            elif isinstance(value, property) or inspect.isfunction(value):
                members.append((attr, value))
    return members


@pytest.mark.parametrize(("module_name", "name"), PUBLIC_NAMES)
def test_public_methods_and_properties_are_documented(module_name: str, name: str) -> None:
    value = getattr(importlib.import_module(module_name), name)
    if not inspect.isclass(value):
        return
    undocumented = [
        attr for attr, member in _public_members(value) if not (member.__doc__ or "").strip()
    ]
    assert undocumented == [], f"{module_name}.{name}: no docstring for {undocumented}"


def test_documented_import_paths() -> None:
    # The imports of the documented examples, as written there.
    from ld_eventsource.actions import Action, Comment, Event, Fault, Start
    from ld_eventsource.config import (
        AsyncConnectionClient,
        AsyncConnectionResult,
        AsyncConnectStrategy,
        ConnectionClient,
        ConnectionResult,
        ConnectStrategy,
        ErrorStrategy,
        RetryDelayStrategy,
    )
    from ld_eventsource.errors import HTTPContentTypeError, HTTPStatusError

    for cls in (Event, Comment, Start, Fault):
        assert issubclass(cls, Action)
    for value in (
        AsyncConnectionClient,
        AsyncConnectionResult,
        AsyncConnectStrategy,
        ConnectionClient,
        ConnectionResult,
        ConnectStrategy,
        ErrorStrategy,
        RetryDelayStrategy,
    ):
        assert inspect.isclass(value)
    assert issubclass(HTTPStatusError, Exception)
    assert issubclass(HTTPContentTypeError, Exception)


def test_clients_import_from_the_package() -> None:
    from ld_eventsource import AsyncSSEClient, SSEClient
    from ld_eventsource.async_client import AsyncSSEClient as DefinedAsync
    from ld_eventsource.sse_client import SSEClient as DefinedSync

    assert SSEClient is DefinedSync
    assert AsyncSSEClient is DefinedAsync
    assert inspect.isclass(SSEClient)
    assert inspect.isclass(AsyncSSEClient)


def test_package_dir_lists_the_clients() -> None:
    names = dir(ld_eventsource)
    assert "SSEClient" in names
    assert "AsyncSSEClient" in names
    assert "__version__" in names


def test_unknown_package_attribute_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        ld_eventsource.no_such_name  # noqa: B018


# ---------------------------------------------------------------------------------------------
# Version and packaging
# ---------------------------------------------------------------------------------------------


def test_version_matches_version_module_and_distribution() -> None:
    assert isinstance(ld_eventsource.__version__, str)
    assert ld_eventsource.__version__ == ld_eventsource.version.VERSION
    assert ld_eventsource.__version__ == importlib.metadata.version("launchdarkly-eventsource")


def test_py_typed_ships_next_to_the_package() -> None:
    package_dir = Path(ld_eventsource.__file__).parent
    assert (package_dir / "__init__.py").is_file()
    assert (package_dir / "py.typed").is_file()
    assert importlib.resources.files("ld_eventsource").joinpath("py.typed").is_file()


# ---------------------------------------------------------------------------------------------
# Imports in a fresh interpreter (with aiohttp made unimportable)
# ---------------------------------------------------------------------------------------------

NO_AIOHTTP = """
import sys
sys.modules["aiohttp"] = None  # makes "import aiohttp" raise ImportError
try:
    import aiohttp
except ImportError:
    pass
else:
    raise AssertionError("the shim did not hide aiohttp")
"""


def run_python(code: str) -> None:
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_import_package_and_config_without_aiohttp() -> None:
    run_python(
        NO_AIOHTTP
        + """
import ld_eventsource
from ld_eventsource.config import AsyncConnectStrategy, ErrorStrategy
from ld_eventsource.config import AsyncConnectionClient, AsyncConnectionResult
import ld_eventsource.config.async_connect_strategy
import ld_eventsource.config.connect_strategy
import ld_eventsource.config.error_strategy
import ld_eventsource.config.retry_delay_strategy
import ld_eventsource.actions
import ld_eventsource.errors
assert sys.modules["aiohttp"] is None
assert ld_eventsource.__version__
"""
    )


def test_import_sync_client_without_aiohttp() -> None:
    run_python(
        NO_AIOHTTP
        + """
from ld_eventsource import SSEClient
import ld_eventsource.sse_client
assert SSEClient is ld_eventsource.sse_client.SSEClient
assert sys.modules["aiohttp"] is None
"""
    )


def test_import_package_loads_neither_urllib3_nor_aiohttp() -> None:
    # The package docstring promises that ``import ld_eventsource`` needs neither until a
    # client is asked for, and the config docstring that the async names need no aiohttp.
    run_python(
        """
import sys
import ld_eventsource
assert "urllib3" not in sys.modules, "import ld_eventsource imported urllib3"
assert "aiohttp" not in sys.modules, "import ld_eventsource imported aiohttp"
from ld_eventsource.config import AsyncConnectStrategy, AsyncConnectionClient
from ld_eventsource.config import AsyncConnectionResult, ErrorStrategy, RetryDelayStrategy
import ld_eventsource.actions, ld_eventsource.errors
assert "aiohttp" not in sys.modules, "ld_eventsource.config imported aiohttp"
"""
    )
