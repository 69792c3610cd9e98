"""
Sphinx configuration of the documentation site (``make docs``).

Pages are Markdown (MyST). The API reference is generated from the docstrings and type hints
by autodoc; the build is nitpicky and turns every warning into an error, so a broken
cross-reference, a page missing from the table of contents, or a public name without a
docstring fails it.
"""

from __future__ import annotations

import re
import sys
from typing import Any

from sphinx.application import Sphinx
from sphinx.errors import PycodeError
from sphinx.pycode import ModuleAnalyzer
from sphinx.util import logging

import ld_eventsource

project_pkg = "ld_eventsource"

project = "launchdarkly-eventsource"
author = "launchdarkly-eventsource contributors"
copyright = "launchdarkly-eventsource contributors"
release = ld_eventsource.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
]

# .rst only for the API stubs that autosummary generates under api/.
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build"]
templates_path = ["_templates"]

html_theme = "furo"
html_title = f"launchdarkly-eventsource {release}"

myst_enable_extensions = ["colon_fence", "deflist"]
# Links such as [The run](#the-run) go to the heading of that name.
myst_heading_anchors = 4

nitpicky = True
# The site is built offline (no intersphinx inventory can be fetched), so references to
# names of the standard library and of urllib3 / aiohttp / httpx / opentelemetry in type hints
# cannot resolve: those are left as plain text, and so are private names of this package
# (a leading underscore: not documented on purpose). Any other reference that does not
# resolve fails the build.
_EXTERNAL = "|".join(
    sorted(
        {
            *sys.stdlib_module_names,
            "urllib3",
            "aiohttp",
            "httpx",
            "multidict",
            "yarl",
            "opentelemetry",
        }
    )
)
nitpick_ignore_regex = [
    (r"py:.*", rf"({_EXTERNAL})(\..+)?"),
    (r"py:class", r"(Logger|PoolManager|ClientSession|TracebackType|Exception)"),
    # httpx's Client and AsyncClient in the signatures of the httpx() factories, imported
    # under these names (a method called httpx would hide the module's name).
    (r"py:class", r"Httpx(Async)?Client"),
    (r"py:.*", r"ld_eventsource(\.\w+)*\._\w+(\..+)?"),
    # A private alias in the signatures of ConnectStrategy.http and AsyncConnectStrategy.http:
    # a mapping of headers, or a callable returning one (their docstrings say so).
    (r"py:class", r"HeadersSource"),
]

autosummary_generate = True
autosummary_ignore_module_all = False


def _reexported_data() -> dict[str, list[str]]:
    # Module-level aliases that a module lists in __all__ but imports from another
    # (DynamicQueryParams in ld_eventsource.config): automodule skips them, so the page
    # template documents them with autodata.
    import importlib
    import inspect
    import pkgutil

    found: dict[str, list[str]] = {}
    public = [
        info.name
        for info in pkgutil.walk_packages(ld_eventsource.__path__, "ld_eventsource.")
        if not any(part.startswith("_") for part in info.name.split("."))
    ]
    for modname in [project_pkg, *public]:
        module = importlib.import_module(modname)
        own = ModuleAnalyzer.for_module(modname).find_attr_docs()
        for name in getattr(module, "__all__", ()):
            value = getattr(module, name)
            if inspect.isclass(value) or inspect.isroutine(value) or inspect.ismodule(value):
                continue
            if ("", name) not in own:
                found.setdefault(modname, []).append(name)
    return found


autosummary_context = {"reexported_data": _reexported_data()}
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
autodoc_class_signature = "mixed"

_logger = logging.getLogger(__name__)


def _undocumented(
    app: Sphinx, what: str, name: str, obj: Any, skip: bool, options: Any
) -> bool | None:
    # autodoc skips a public member that has no docstring (there is no :undoc-members:):
    # the build fails instead, so that every public name is documented.
    short = name.rsplit(".", 1)[-1]
    if not skip or short.startswith("_"):
        return None
    if what == "module" and _defining_attr_doc(name, obj):
        return False  # a re-exported alias, documented where it is defined (see below)
    _logger.warning("public name without a docstring: %s (in a %s)", name, what)
    return None


def _module_docstring(
    app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    if what != "module":
        return
    if not any(line.strip() for line in lines):
        _logger.warning("public module without a docstring: %s", name)
    # A module docstring names its classes relative to the module (:class:`Event`); its
    # first line is also shown in the table of the API page, out of that context, so the
    # names are looked up by suffix there (:class:`.Event`), which finds the same objects.
    lines[:] = [_RELATIVE_ROLE.sub(r"\1.\2", line) for line in lines]


_RELATIVE_ROLE = re.compile(r"(:(?:class|meth|attr|data|func|exc|const|obj):`)([A-Za-z])")


def _public_bases(app: Sphinx, name: str, obj: Any, options: Any, bases: list[Any]) -> None:
    # "Bases:" names public classes only: a private base is replaced by its public bases.
    public: list[Any] = []
    pending = list(bases)
    while pending:
        base = pending.pop(0)
        if getattr(base, "__name__", "").startswith("_") and isinstance(base, type):
            pending[:0] = [b for b in base.__bases__ if b.__module__.startswith(project_pkg)]
        elif base not in public:
            public.append(base)
    bases[:] = public


def _reexported_data_doc(
    app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    # A module-level alias re-exported by a package (DynamicQueryParams in
    # ld_eventsource.config) keeps the docstring written under it where it is defined.
    if what != "data" or any(line.strip() for line in lines):
        return
    doc = _defining_attr_doc(name, obj)
    if doc:
        lines.extend(doc)


def _defining_attr_doc(name: str, obj: Any) -> list[str]:
    short = name.rsplit(".", 1)[-1]
    for modname, module in sorted(sys.modules.items()):
        if not modname.startswith(project_pkg) or getattr(module, short, None) is not obj:
            continue
        try:
            docs = ModuleAnalyzer.for_module(modname).find_attr_docs()
        except PycodeError:
            continue
        if ("", short) in docs:
            return list(docs[("", short)])
    return []


def setup(app: Sphinx) -> None:
    """Hooks of this site."""
    app.connect("autodoc-process-bases", _public_bases)
    app.connect("autodoc-process-docstring", _reexported_data_doc)
    app.connect("autodoc-skip-member", _undocumented)
    app.connect("autodoc-process-docstring", _module_docstring)
