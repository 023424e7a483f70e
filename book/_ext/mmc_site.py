"""Small site features and fixes for the book's HTML; the browser test (tests/site/test_site.py) checks them.

Loaded through ``sphinx: local_extensions`` in ``_config.yml``.

- The Colab install guard (every chapter's first code cell, ``if "google.colab" in sys.modules: %pip install
  ...``) is only for Colab: the site leaves it out, the notebooks keep it.
- ``mmc_teach.KMeans`` and the package's other lazy names (``mmc_teach._LAZY``) are documented where they
  are defined (``mmc_teach.kmeans.KMeans``); a cross-reference to the short name resolves to that entry,
  so chapters and docstrings may write either.
- ``static/mmc_site.css``: hides the theme's duplicate top bar on wide screens (see the file).
- sphinx-thebe's inline configuration script (``const THEBE_JS_URL = ...``) ends up twice in every page
  under Jupyter Book 1, and the second copy throws "Identifier 'THEBE_JS_URL' has already been declared"
  in the browser. Keep one copy of every script.
"""

from __future__ import annotations

import os
import re
from typing import Any

from docutils import nodes

_GUARD = re.compile(r"""["']google\.colab["']\s+in\s+sys\.modules""")


def _drop_colab_guard(app: Any, doctree: nodes.document) -> None:
    for cell in doctree.findall(nodes.container):
        if "cell" in cell.get("classes", []) and cell.get("nb_element") == "cell_code":
            outputs = [child for child in cell.children if "cell_output" in child.get("classes", [])]
            if not outputs and _GUARD.search(cell.astext()):
                cell.parent.remove(cell)
            return  # only the first code cell can be the guard


def _resolve_lazy_names(app: Any, env: Any, node: Any, contnode: Any) -> Any:
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "")
    prefix, _, name = target.rpartition(".")
    if prefix != "mmc_teach":
        return None
    import mmc_teach

    module = getattr(mmc_teach, "_LAZY", {}).get(name)
    if module is None:
        return None
    domain = env.get_domain("py")
    return domain.resolve_xref(env, node["refdoc"], app.builder, node["reftype"],
                               f"mmc_teach.{module}.{name}", node, contnode)


def _dedupe_scripts(app: Any, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen: set[tuple[str, str]] = set()
    unique = []
    for script in scripts:
        # the two copies differ only in filename None versus "": compare file and attributes
        key = (getattr(script, "filename", None) or "", repr(sorted(getattr(script, "attributes", {}).items())))
        if key in seen:
            continue
        seen.add(key)
        unique.append(script)
    context["script_files"] = unique


def _add_static(app: Any) -> None:
    app.config.html_static_path.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), "static"))


def setup(app: Any) -> dict:
    app.connect("builder-inited", _add_static)
    app.add_css_file("mmc_site.css")
    app.connect("doctree-read", _drop_colab_guard)
    app.connect("missing-reference", _resolve_lazy_names)
    app.connect("html-page-context", _dedupe_scripts)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
