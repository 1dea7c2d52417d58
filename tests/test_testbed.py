"""Smoke tests of the testbed (ci/testbed.py): each piece runs a real job on the real software."""

from __future__ import annotations

import os
import shlex
import time
from pathlib import Path
from typing import Any

import pytest

from tests.testbed_plugin import testbed, wait_for_files

# Written by every job: the Python version it ran with and the uid it ran as.
REPORT = "import os, sys; v = sys.version_info; open(sys.argv[1], 'w').write('%d.%d %d' % (v[0], v[1], os.getuid()))"
ANALYSIS_PYTHON = "3.11"


def job_script(folder: Path, sif: str) -> Path:
    """A batch job: Python of the analysis image inside Apptainer writes out-TASK.txt into the bound folder."""
    script = folder / "job.sh"
    script.write_text(
        "#!/bin/sh\n"
        "export PATH=/usr/local/bin:/usr/bin:/bin\n"
        f"exec apptainer exec --bind {folder}:{folder} {sif} python3 -c {shlex.quote(REPORT)} {folder}/out-$1.txt\n"
    )
    script.chmod(0o755)
    return script


def check_outputs(outputs: list[Path], uid: int) -> None:
    for output in outputs:
        assert output.read_text() == f"{ANALYSIS_PYTHON} {uid}"
        assert output.stat().st_uid == uid


@pytest.mark.docker
@pytest.mark.parametrize("uid", sorted({os.getuid(), testbed.DEFAULT_UID}), ids=lambda uid: f"uid{uid}")
def test_docker_container_writes_results_as_the_given_user(
    docker_client: Any, analysis_image: str, tmp_path: Path, uid: int
) -> None:
    results = tmp_path / "results"
    results.mkdir()
    results.chmod(0o777)
    gid = os.getgid() if uid == os.getuid() else uid
    docker_client.containers.run(
        analysis_image,
        ["python3", "-c", REPORT, "/results/out.txt"],
        user=f"{uid}:{gid}",
        volumes={str(results): {"bind": "/results", "mode": "rw"}},
        network_disabled=True,
        remove=True,
    )
    check_outputs([results / "out.txt"], uid)
    assert (results / "out.txt").stat().st_gid == gid


@pytest.mark.apptainer
def test_apptainer_runs_python_of_the_analysis_image_from_a_sif(worker: Any, analysis_sif: str) -> None:
    assert Path(analysis_sif).is_file()  # made in the worker node, seen by the host at the same path
    result = worker.run(
        [
            "apptainer",
            "exec",
            analysis_sif,
            "python3",
            "-c",
            "import os, sys; print(sys.version_info[0], sys.version_info[1], os.getuid())",
        ]
    )
    assert result.stdout.split() == [*ANALYSIS_PYTHON.split("."), str(worker.uid)]


@pytest.mark.htcondor
@pytest.mark.apptainer
def test_htcondor_jobs_run_apptainer_and_write_into_the_shared_folder(
    worker: Any, analysis_sif: str, shared_tmp: Path
) -> None:
    job_script(shared_tmp, analysis_sif)
    (shared_tmp / "job.sub").write_text(
        "executable = job.sh\n"
        "arguments = $(ProcId)\n"
        "output = job.$(ProcId).out\n"
        "error = job.$(ProcId).err\n"
        "log = job.log\n"
        "should_transfer_files = NO\n"
        "queue 2\n"
    )
    submitted = worker.run(["condor_submit", "-terse", "job.sub"], cwd=shared_tmp)
    cluster = submitted.stdout.split(".")[0].strip()

    def diagnose() -> str:
        queue = worker.run(["condor_q", cluster, "-af", "ProcId", "JobStatus", "HoldReason"], check=False)
        errors = "".join(path.read_text() for path in shared_tmp.glob("job.*.err"))
        return f"condor_q: {queue.stdout}{queue.stderr}\njob stderr: {errors}\nlogs: {testbed.POOL_LOG_DIR}/condor"

    outputs = [shared_tmp / f"out-{task}.txt" for task in range(2)]
    wait_for_files(outputs, timeout=120, diagnose=diagnose)
    check_outputs(outputs, worker.uid)


@pytest.mark.slurm
@pytest.mark.apptainer
def test_slurm_jobs_run_apptainer_and_write_into_the_shared_folder(
    worker: Any, analysis_sif: str, shared_tmp: Path
) -> None:
    script = job_script(shared_tmp, analysis_sif)
    (shared_tmp / "array.sh").write_text(f"#!/bin/sh\nexec {script} $SLURM_ARRAY_TASK_ID\n")
    submitted = worker.run(
        [
            "sbatch",
            "--parsable",
            "--array=0-1",
            f"--chdir={shared_tmp}",
            f"--output={shared_tmp}/slurm-%A_%a.out",
            str(shared_tmp / "array.sh"),
        ],
        cwd=shared_tmp,
    )
    job = submitted.stdout.strip()

    def diagnose() -> str:
        queue = worker.run(["scontrol", "show", "job", job], check=False)
        logs = "".join(path.read_text() for path in shared_tmp.glob("slurm-*.out"))
        return f"{queue.stdout}{queue.stderr}\njob output: {logs}\nlogs: {testbed.POOL_LOG_DIR}/slurm"

    outputs = [shared_tmp / f"out-{task}.txt" for task in range(2)]
    wait_for_files(outputs, timeout=120, diagnose=diagnose)
    check_outputs(outputs, worker.uid)


@pytest.mark.htcondor
def test_working_tree_installs_in_the_worker_node_beside_htcondor_bindings(worker: Any) -> None:
    python = worker.install_b2box()
    result = worker.run([python, "-c", "import b2box, htcondor2; print(b2box.__file__); print(htcondor2.version())"])
    assert "/venvs/" in result.stdout and "CondorVersion" in result.stdout
    worker.run([str(Path(python).parent / "b2box"), "--help"])
    assert worker.install_b2box() == python  # cached


@pytest.mark.htcondor
def test_changed_working_tree_is_reinstalled_quickly(worker: Any, tmp_path: Path) -> None:
    source = tmp_path / "tree"
    for path in testbed.source_files(testbed.REPO):
        target = source / path.relative_to(testbed.REPO)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
    python = worker.install_b2box(source)
    probe = [python, "-c", "from b2box import _testbed_probe; print(_testbed_probe.VALUE)"]
    assert worker.run(probe, check=False).returncode != 0

    (source / "b2box" / "_testbed_probe.py").write_text("VALUE = 'changed'\n")
    start = time.monotonic()
    assert worker.install_b2box(source) == python
    elapsed = time.monotonic() - start
    assert worker.run(probe).stdout.strip() == "changed"
    assert elapsed < 30, f"reinstalling the changed tree took {elapsed:.1f} s"
