"""The settings of the gbasf2 backend: declared with b2luigi's names and defaults, and resolved for one task."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

from b2box.settings.declared import SettingGroup, default_of
from b2box.settings.general import Basf2
from b2box.settings.paths import map_folder
from b2box.settings.resolved import settings_of

if TYPE_CHECKING:
    from pydantic import Field

    from b2box.settings.types import NonNegativeInt, PathStr, PositiveFloat, PositiveInt


class Gbasf2Settings(SettingGroup):
    """The Belle II grid (gbasf2), with b2luigi's names and defaults."""

    gbasf2_setup_path: PathStr = "/cvmfs/belle.kek.jp/grid/gbasf2/pro/bashrc"
    """The gbasf2 setup script sourced before every gbasf2 command."""
    gbasf2_project_name_prefix: str | None = None
    """Prefix of the gbasf2 project names (the rest is a hash of the task)."""
    gbasf2_project_name_hash_length: Annotated[int, Field(ge=6, le=10)] = 10
    """Characters of the task hash in a project name."""
    gbasf2_input_dataset: str | list[str] | None = None
    """Grid dataset(s) the project reads (``gbasf2 -i``)."""
    gbasf2_input_dslist: PathStr | None = None
    """A file listing input datasets (``gbasf2 --input_dslist``)."""
    gbasf2_input_datafiles: list[str] = []
    """Grid files given to every job (``gbasf2 --input_datafiles``)."""
    gbasf2_n_repition_job: PositiveInt | None = None
    """Jobs of a project without input (``gbasf2 --repetition``; b2luigi's spelling)."""
    gbasf2_max_retries: NonNegativeInt = 0
    """How often each failed, stalled or killed job of a project is rescheduled before the task fails."""
    gbasf2_download_dataset: bool = True
    """Download the project's output dataset when it is done."""
    gbasf2_download_logs: bool = True
    """Download the project's job logs when it is done."""
    gbasf2_additional_files: list[PathStr] = []
    """Local files shipped with every job (``gbasf2 -f``)."""
    gbasf2_custom_steering_file: PathStr = ""
    """Your own steering file, shipped instead of the one b2box writes from the task's path."""
    gbasf2_cputime: PositiveInt | None = None
    """Expected CPU time per job in minutes (``gbasf2 --cputime``)."""
    gbasf2_evtpersec: PositiveInt | None = None
    """Expected events per second (``gbasf2 --evtpersec``)."""
    gbasf2_priority: Annotated[int, Field(ge=0, le=10)] | None = None
    """Job priority 0 to 10 (``gbasf2 --priority``)."""
    gbasf2_jobtype: str | None = None
    """Job type (``gbasf2 --jobtype``)."""
    gbasf2_basf2opt: str | None = None
    """Options handed to basf2 in every job (``gbasf2 --basf2opt``)."""
    gbasf2_input_grouping: Literal["site", "size"] | None = None
    """How input files are grouped into jobs (``gbasf2 --input_grouping``)."""
    gbasf2_lfn_sandboxfiles: bool = False
    """Sandbox files are grid files (``gbasf2 --lfn_sandboxfiles``)."""
    gbasf2_noscout: bool = False
    """Skip the scout jobs (``gbasf2 --noscout``)."""
    gbasf2_force_submission: bool = True
    """Submit without gbasf2's confirmation question (``gbasf2 --force``)."""
    gbasf2_additional_params: str | None = None
    """More ``gbasf2`` options, as one string."""
    gbasf2_additional_download_params: str = "--new"
    """Options of ``gb2_ds_get`` when the output is downloaded."""
    gbasf2_proxy_lifetime: PositiveInt = 24
    """Hours of a new grid proxy (``gb2_proxy_init -v``)."""
    gbasf2_min_proxy_lifetime: NonNegativeInt = 0
    """Hours a grid proxy must still be valid (at least a minute): a shorter one is renewed on a terminal, else
    the run stops saying how to make one."""
    gbasf2_proxy_group: str = "belle"
    """VOMS group of the proxy (``gb2_proxy_init -g``)."""
    gbasf2_project_lpn_path: str | None = None
    """Grid folder the project's output dataset goes into (``gbasf2 --output_ds <folder>/<project>``); default:
    gbasf2's, under the user's own folder."""
    gbasf2_print_status_updates: bool = True
    """Print a line whenever a project's job counts change."""
    gbasf2_status_interval: PositiveFloat = 300.0
    """Seconds between status queries of running projects (DIRAC limits how often it may be asked)."""


@dataclass(frozen=True)
class GridSettings:
    """How a task goes to the Belle II grid, resolved: folders made absolute, lists as tuples, texts never None."""

    setup_path: str
    release: str  # empty: the release of the submitting environment
    project_name_prefix: str
    project_name_hash_length: int
    input_dataset: tuple[str, ...]
    input_dslist: str
    input_datafiles: tuple[str, ...]
    repetitions: int | None
    max_retries: int
    download_dataset: bool
    download_logs: bool
    additional_files: tuple[str, ...]
    custom_steering_file: str
    cputime: int | None
    evtpersec: int | None
    priority: int | None
    jobtype: str
    basf2opt: str
    input_grouping: str
    lfn_sandboxfiles: bool
    noscout: bool
    force_submission: bool
    additional_params: str
    additional_download_params: str
    proxy_lifetime: int
    min_proxy_lifetime: int
    proxy_group: str
    project_lpn_path: str
    print_status_updates: bool
    status_interval: float
    max_event: int


def grid_settings(task: Any) -> GridSettings:
    """How ``task`` goes to the grid, from its settings."""
    settings = settings_of(task)
    grid = settings.group(Gbasf2Settings)

    def text(name: str) -> str:  # an empty value counts as unset, as in b2luigi
        return str(getattr(grid, name) or default_of(name) or "")

    dataset = grid.gbasf2_input_dataset or ()
    files = grid.gbasf2_additional_files
    return GridSettings(
        setup_path=text("gbasf2_setup_path"),
        release=str(settings.group(Basf2).gbasf2_release or ""),
        project_name_prefix=text("gbasf2_project_name_prefix"),
        project_name_hash_length=int(grid.gbasf2_project_name_hash_length),
        input_dataset=(dataset,) if isinstance(dataset, str) else tuple(str(item) for item in dataset),
        input_dslist=map_folder(grid.gbasf2_input_dslist) if grid.gbasf2_input_dslist else "",
        input_datafiles=tuple(str(item) for item in grid.gbasf2_input_datafiles),
        repetitions=grid.gbasf2_n_repition_job,
        max_retries=int(grid.gbasf2_max_retries),
        download_dataset=bool(grid.gbasf2_download_dataset),
        download_logs=bool(grid.gbasf2_download_logs),
        additional_files=tuple(map_folder(str(path)) for path in ([files] if isinstance(files, str) else files)),
        custom_steering_file=map_folder(grid.gbasf2_custom_steering_file) if grid.gbasf2_custom_steering_file else "",
        cputime=grid.gbasf2_cputime,
        evtpersec=grid.gbasf2_evtpersec,
        priority=grid.gbasf2_priority,
        jobtype=text("gbasf2_jobtype"),
        basf2opt=text("gbasf2_basf2opt"),
        input_grouping=text("gbasf2_input_grouping"),
        lfn_sandboxfiles=bool(grid.gbasf2_lfn_sandboxfiles),
        noscout=bool(grid.gbasf2_noscout),
        force_submission=bool(grid.gbasf2_force_submission),
        additional_params=text("gbasf2_additional_params"),
        additional_download_params=text("gbasf2_additional_download_params"),
        proxy_lifetime=int(grid.gbasf2_proxy_lifetime),
        min_proxy_lifetime=int(grid.gbasf2_min_proxy_lifetime),
        proxy_group=text("gbasf2_proxy_group"),
        project_lpn_path=text("gbasf2_project_lpn_path"),
        print_status_updates=bool(grid.gbasf2_print_status_updates),
        status_interval=float(grid.gbasf2_status_interval),
        max_event=int(settings.group(Basf2).max_event),
    )
