"""b2box: b2luigi-style luigi workflows, run the same way everywhere, in identical containers.

``import b2box as b2luigi`` gives an existing b2luigi script everything it
uses: luigi's whole namespace, b2luigi's ``Task`` with its file helpers,
the parameter options (hashed, hidden, grouping), the decorators, settings
and ``process()``.
"""

from b2box.job.bootstrap import keep_http_libraries_away as _keep_away
from b2box.job.bootstrap import release as _release

# Every b2box command imports luigi first; its HTTP client's libraries (requests, tornado: about 40 ms of the 175 ms
# luigi takes to import here) are only needed to reach a central scheduler, which luigi then reaches with urllib, as
# in every job. A workflow imports them as usual.
_hidden = _keep_away()
try:
    from luigi import *  # noqa: F403 - b2luigi re-exports luigi's namespace, and so does b2box
    from luigi.util import copies
finally:
    _release(_hidden)

from b2box.api import parameters as _parameters  # noqa: E402

_parameters.install()

import functools as _functools  # noqa: E402
import warnings as _warnings  # noqa: E402
from typing import Any as _Any  # noqa: E402

import luigi as _luigi  # noqa: E402

from b2box import b2luigi_names as _b2luigi_names  # noqa: E402
from b2box.api.decorators import inherits, on_temporary_files, requires  # noqa: E402
from b2box.api.dispatch import DispatchableTask, dispatch  # noqa: E402
from b2box.api.parameters import BatchIntParameter, BoolParameter  # type: ignore[assignment]  # noqa: E402
from b2box.api.remote import (  # noqa: E402
    RemoteFileSystem,
    RemoteTarget,
    WebDAVSystem,
    WebDAVTarget,
    XRootDSystem,
    XRootDTarget,
)
from b2box.api.targets import LocalTarget as LocalTarget  # noqa: E402
from b2box.api.task import ExternalTask, Task, WrapperTask  # noqa: E402
from b2box.cli.process import process  # noqa: E402
from b2box.errors import DeprecatedSettingsWarning  # noqa: E402
from b2box.settings.lookup import clear_setting, get_setting, set_setting  # noqa: E402
from b2box.settings.sources import setting_file_iterator as _setting_file_iterator  # noqa: E402, F401
from b2box.version import __version__ as __version__  # noqa: E402

wrap_parameter = _parameters.install  # b2luigi's name; already done on import, calling it again does nothing
_b2luigi_names.serve_b2box_names()  # from b2box.basf2_helper import ...: b2luigi's module paths under b2box


@_functools.wraps(_luigi.build)  # type: ignore[no-redef]
def build(*args: _Any, **kwargs: _Any) -> _Any:
    """luigi.build, with a warning: ``process()`` is what gives b2box's behaviour."""
    _warnings.warn(
        "b2box.build is luigi.build: atomic outputs, exit codes and batch mode need b2box.process().",
        UserWarning,
        stacklevel=2,
    )
    return _luigi.build(*args, **kwargs)


__all__ = [
    *_luigi.__all__,
    "BatchIntParameter",
    "BoolParameter",
    "DeprecatedSettingsWarning",
    "DispatchableTask",
    "ExternalTask",
    "RemoteFileSystem",
    "RemoteTarget",
    "Task",
    "WebDAVSystem",
    "WebDAVTarget",
    "WrapperTask",
    "XRootDSystem",
    "XRootDTarget",
    "build",
    "clear_setting",
    "copies",
    "dispatch",
    "get_setting",
    "inherits",
    "on_temporary_files",
    "process",
    "requires",
    "set_setting",
    "wrap_parameter",
]
