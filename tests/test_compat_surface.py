"""
The import surface of launchdarkly-eventsource 1.7.4, pinned: every public name that code
could import from a public module of 1.7.4 is importable from the same path here, and is the
very object of the module that documents it (so a compatibility path behaves exactly as the
documented one). The list is written out below, from 1.7.4's modules as released; the
reference is not imported at run time. docs/migration.md lists the same paths.

Left out on purpose (see docs/migration.md): private names, typing names, and what 1.7.4's
modules imported from elsewhere (``logging``, ``urllib3.PoolManager``, ``aiohttp``...).
"""

from __future__ import annotations

import ast
import importlib
import inspect

import pytest

from ld_eventsource.testing import status_handler
from tests.sse_server import SSEServer
from tests.test_public_api import run_python

ACTIONS = "ld_eventsource.actions"
ERRORS = "ld_eventsource.errors"
CONNECT = "ld_eventsource.config.connect_strategy"
ASYNC_CONNECT = "ld_eventsource.config.async_connect_strategy"
ERROR_STRATEGY = "ld_eventsource.config.error_strategy"
RETRY_DELAY = "ld_eventsource.config.retry_delay_strategy"

# For each public module of 1.7.4: each public name it offered, and the module that documents
# that object here. A module as value means the name is that submodule.
SURFACE_174: dict[str, dict[str, str]] = {
    "ld_eventsource": {
        "SSEClient": "ld_eventsource.sse_client",
        "AsyncSSEClient": "ld_eventsource.async_client",
    },
    "ld_eventsource.actions": {
        "Action": ACTIONS,
        "Comment": ACTIONS,
        "Event": ACTIONS,
        "Fault": ACTIONS,
        "Start": ACTIONS,
        "ExceptionWithHeaders": ERRORS,
        "Headers": ERRORS,
    },
    "ld_eventsource.async_client": {
        "AsyncSSEClient": "ld_eventsource.async_client",
        "Action": ACTIONS,
        "Event": ACTIONS,
        "Fault": ACTIONS,
        "Start": ACTIONS,
        "AsyncConnectStrategy": ASYNC_CONNECT,
        "AsyncConnectionClient": ASYNC_CONNECT,
        "AsyncConnectionResult": ASYNC_CONNECT,
        "ErrorStrategy": ERROR_STRATEGY,
        "RetryDelayStrategy": RETRY_DELAY,
    },
    "ld_eventsource.async_http": {
        "HTTPContentTypeError": ERRORS,
        "HTTPStatusError": ERRORS,
        "Headers": ERRORS,
    },
    "ld_eventsource.async_reader": {
        "Comment": ACTIONS,
        "Event": ACTIONS,
    },
    "ld_eventsource.config": {
        "ConnectStrategy": CONNECT,
        "ConnectionClient": CONNECT,
        "ConnectionResult": CONNECT,
        "ErrorStrategy": ERROR_STRATEGY,
        "RetryDelayStrategy": RETRY_DELAY,
    },
    "ld_eventsource.config.async_connect_strategy": {
        "AsyncConnectStrategy": ASYNC_CONNECT,
        "AsyncConnectionClient": ASYNC_CONNECT,
        "AsyncConnectionResult": ASYNC_CONNECT,
        "Headers": ERRORS,
    },
    "ld_eventsource.config.connect_strategy": {
        "ConnectStrategy": CONNECT,
        "ConnectionClient": CONNECT,
        "ConnectionResult": CONNECT,
        "DynamicQueryParams": CONNECT,
        "Headers": ERRORS,
    },
    "ld_eventsource.config.error_strategy": {"ErrorStrategy": ERROR_STRATEGY},
    "ld_eventsource.config.retry_delay_strategy": {"RetryDelayStrategy": RETRY_DELAY},
    "ld_eventsource.errors": {
        "ExceptionWithHeaders": ERRORS,
        "HTTPContentTypeError": ERRORS,
        "HTTPStatusError": ERRORS,
        "Headers": ERRORS,
    },
    "ld_eventsource.http": {
        "DynamicQueryParams": CONNECT,
        "HTTPContentTypeError": ERRORS,
        "HTTPStatusError": ERRORS,
    },
    "ld_eventsource.reader": {
        "Comment": ACTIONS,
        "Event": ACTIONS,
    },
    "ld_eventsource.sse_client": {
        "SSEClient": "ld_eventsource.sse_client",
        "Action": ACTIONS,
        "Comment": ACTIONS,
        "Event": ACTIONS,
        "Fault": ACTIONS,
        "Start": ACTIONS,
        "ConnectStrategy": CONNECT,
        "ConnectionClient": CONNECT,
        "ConnectionResult": CONNECT,
        "ErrorStrategy": ERROR_STRATEGY,
        "RetryDelayStrategy": RETRY_DELAY,
        "ExceptionWithHeaders": ERRORS,
        "HTTPContentTypeError": ERRORS,
        "HTTPStatusError": ERRORS,
        "Headers": ERRORS,
    },
    "ld_eventsource.version": {"VERSION": "ld_eventsource.version"},
}

# Submodules that 1.7.4 offered as attributes of their package once the package was imported.
SUBMODULE_ATTRIBUTES: dict[str, set[str]] = {
    "ld_eventsource": {"actions", "config", "errors", "http", "reader", "sse_client", "version"},
    "ld_eventsource.config": {"connect_strategy", "error_strategy", "retry_delay_strategy"},
}

# The modules that exist only for 1.7.4's import paths: re-exports, nothing else.
COMPAT_MODULES = [
    "ld_eventsource.async_http",
    "ld_eventsource.async_reader",
    "ld_eventsource.http",
    "ld_eventsource.reader",
]

SURFACE = [
    (module, name, documented)
    for module, names in SURFACE_174.items()
    for name, documented in sorted(names.items())
]


@pytest.mark.parametrize(("module_name", "name", "documented"), SURFACE)
def test_name_imports_from_its_174_path_as_the_documented_object(
    module_name: str, name: str, documented: str
) -> None:
    # The import statement itself, as code written against 1.7.4 spells it.
    namespace: dict[str, object] = {}
    exec(f"from {module_name} import {name}", namespace)
    expected = getattr(importlib.import_module(documented), name)
    assert namespace[name] is expected


@pytest.mark.parametrize("documented", sorted({d for _, _, d in SURFACE}))
def test_documented_modules_define_or_document_their_names(documented: str) -> None:
    # The "documented object" of each name lives in a documented (non-compatibility) module
    # that lists it in __all__.
    assert documented not in COMPAT_MODULES
    module = importlib.import_module(documented)
    names = {name for _, name, d in SURFACE if d == documented}
    assert names <= set(module.__all__)


@pytest.mark.parametrize(
    ("package", "name"),
    sorted((package, name) for package, names in SUBMODULE_ATTRIBUTES.items() for name in names),
)
def test_submodule_is_an_attribute_after_importing_the_package(package: str, name: str) -> None:
    # In a fresh interpreter, so that no earlier import has set the attribute already.
    run_python(
        f"""
        import {package}
        value = {package}.{name}
        import {package}.{name} as expected
        assert value is expected, (value, expected)
        assert "{name}" in dir({package})
        """
    )


def test_package_import_still_loads_neither_urllib3_nor_aiohttp() -> None:
    # The submodule attributes are imported on access, not by ``import ld_eventsource``.
    run_python(
        """
        import sys
        import ld_eventsource
        for name in ("actions", "config", "errors", "http", "reader", "sse_client"):
            assert f"ld_eventsource.{name}" not in sys.modules, name
        assert "urllib3" not in sys.modules
        assert "aiohttp" not in sys.modules
        ld_eventsource.actions, ld_eventsource.config, ld_eventsource.errors
        ld_eventsource.http, ld_eventsource.reader
        assert "urllib3" not in sys.modules
        ld_eventsource.sse_client
        assert "aiohttp" not in sys.modules
        """
    )


def test_async_modules_are_not_package_attributes_until_imported() -> None:
    # As in 1.7.4, where touching them before importing them raised AttributeError; here
    # that keeps ``hasattr(ld_eventsource, ...)`` from importing aiohttp.
    run_python(
        """
        import ld_eventsource
        for name in ("async_client", "async_http", "async_reader"):
            assert not hasattr(ld_eventsource, name), name
        """
    )


def test_every_174_path_imports_without_aiohttp() -> None:
    lines = [
        "import sys",
        'sys.modules["aiohttp"] = None  # makes "import aiohttp" raise ImportError',
        *(
            f"from {module} import {name}"
            for module, name, _ in SURFACE
            if name != "AsyncSSEClient" and module != "ld_eventsource.async_client"
        ),
        'assert sys.modules["aiohttp"] is None',
    ]
    run_python("\n".join(lines))


@pytest.mark.parametrize("module_name", COMPAT_MODULES)
def test_compat_module_is_a_documented_thin_reexport(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert module.__doc__ is not None
    assert module.__doc__.lstrip().startswith("Compatibility module")
    assert "docs/migration.md" in module.__doc__
    assert set(module.__all__) == set(SURFACE_174[module_name])
    # No logic: a docstring, imports from the package, and __all__; nothing else.
    tree = ast.parse(inspect.getsource(module))
    for node in tree.body[1:]:
        if isinstance(node, ast.ImportFrom):
            assert node.module is not None
            assert node.module.startswith("ld_eventsource.")
            assert node.module not in COMPAT_MODULES
        else:
            assert isinstance(node, ast.Assign), ast.dump(node)
            assert [ast.unparse(t) for t in node.targets] == ["__all__"]
    public = {name for name in vars(module) if not name.startswith("_")}
    assert public == set(module.__all__)


def test_sse_client_keeps_its_all() -> None:
    # The extra names are importable from sse_client, as in 1.7.4, but its star-import and
    # its documented API stay the client alone.
    module = importlib.import_module("ld_eventsource.sse_client")
    assert module.__all__ == ["SSEClient"]


def test_http_error_from_a_real_server_is_caught_through_the_174_paths() -> None:
    # What the SDK does: catch the client's error by the class imported from ld_eventsource.http.
    from ld_eventsource.http import HTTPStatusError

    # 1.7.4 code imports Fault from sse_client, which keeps it out of its __all__.
    from ld_eventsource.sse_client import Fault, SSEClient  # type: ignore[attr-defined]
    from ld_eventsource.sse_client import HTTPStatusError as FromSSEClient

    with (
        SSEServer(status_handler(503, headers={"Retry-After": "3"})) as server,
        SSEClient(server.url) as client,
    ):
        try:
            client.start()
        except HTTPStatusError as error:
            caught: Exception = error
        else:
            pytest.fail("no HTTPStatusError")
    assert isinstance(caught, FromSSEClient)
    assert caught.status == 503
    assert caught.headers is not None and caught.headers["retry-after"] == "3"
    assert Fault(caught).headers == caught.headers


@pytest.mark.parametrize("name", ["SSEClient", "AsyncSSEClient"])
def test_methods_of_a_client_can_be_replaced_on_the_instance(name: str) -> None:
    # Code written against 1.7.4 (LaunchDarkly's SDK tests among it) patches a client's
    # methods on the instance, as with any Python object.
    import ld_eventsource

    client = getattr(ld_eventsource, name)("http://127.0.0.1:9/")
    closed: list[bool] = []
    client.close = lambda: closed.append(True)
    client.close()
    assert closed == [True]
    client.extra = 1
    assert client.extra == 1
