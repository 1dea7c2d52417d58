"""Sphinx configuration of b2box's documentation: ``.venv/bin/sphinx-build -W docs docs/_build/html``."""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))
sys.path.insert(0, str(HERE.parent))

project = "b2box"
author = "the b2box developers"
copyright = "2026, the b2box developers"

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx_click",
    "settings_reference",
    "error_catalog",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
exclude_patterns = ["_build", "examples/README.md"]
html_theme = "pydata_sphinx_theme"
html_title = "b2box"
html_theme_options = {"navigation_depth": 2, "show_toc_level": 2}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "undoc-members": False}
suppress_warnings = ["myst.header"]
autodoc_inherit_docstrings = False  # luigi docstrings refer to labels of luigi's own documentation
smartquotes = False  # commands and settings in the text are shown exactly as typed
