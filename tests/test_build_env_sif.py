"""`b2box build-env --apptainer` across the testbed: Docker on the host, Apptainer on the worker node.

The host has a Docker engine but no Apptainer; the worker node has Apptainer but no Docker engine, as on many
sites. The same project folder (in the shared folder) is seen by both, so the SIF is made in two steps, and a
workflow naming the environment then runs in Docker on the host and in Apptainer on the worker node, locally
and on the HTCondor pool, each job's provenance showing the locked digest.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, run_b2box
from tests.test_build_env import run_small_workflow
from tests.test_pool import provenance, run_in_pool, setup_workflow, sha256

pytestmark = [pytest.mark.docker, pytest.mark.apptainer, pytest.mark.htcondor]


def give_tree_to(folder: Path, worker: Any) -> None:
    """The worker node's user continues where the host's user (root here) stopped."""
    if os.geteuid() != 0:
        return
    for root, dirs, files in os.walk(folder):
        for name in [*dirs, *files]:
            os.chown(os.path.join(root, name), worker.uid, worker.gid)


def locked(project: Path) -> dict[str, Any]:
    return dict(json.loads((project / "b2box.lock").read_text())["environments"]["analysis"])


def test_sif_in_two_steps_then_one_environment_in_docker_apptainer_and_htcondor(
    worker: Any, shared_tmp: Path, docker_client: Any
) -> None:
    shutil.copytree(REPO / "images", shared_tmp / "images", ignore=shutil.ignore_patterns(".sif"))

    on_host = run_b2box("build-env", "--apptainer", "analysis", cwd=shared_tmp, timeout=900)
    assert on_host.returncode == 3, on_host.stderr
    assert "Apptainer is not on this machine" in on_host.stderr and "no Docker needed there" in on_host.stderr
    entry = locked(shared_tmp)
    archive = shared_tmp / "images/.sif" / f"analysis-{entry['definition'][:12]}.docker.tar"
    assert archive.is_file() and "sif" not in entry, "the image is locked and saved, the SIF still to come"

    give_tree_to(shared_tmp, worker)
    b2box = str(Path(worker.install_b2box()).parent / "b2box")
    no_docker_yet = worker.run([b2box, "build-env", "analysis"], cwd=shared_tmp, check=False)
    assert no_docker_yet.returncode == 2 and "Docker engine" in no_docker_yet.stderr
    on_worker = worker.run([b2box, "build-env", "--apptainer", "analysis"], cwd=shared_tmp, timeout=600)
    assert "(cached)" in on_worker.stdout
    entry = locked(shared_tmp)
    assert entry["sif_sha256"] == sha256(entry["sif"]) and entry["docker_id"] == locked(shared_tmp)["docker_id"]
    assert not archive.exists(), "the saved image is removed once the SIF is built"
    assert run_b2box("build-env", "--check", cwd=shared_tmp).returncode == 0

    again_on_host = run_b2box("build-env", "analysis", cwd=shared_tmp, timeout=300)
    assert again_on_host.returncode == 0 and locked(shared_tmp)["sif"] == entry["sif"], "rebuilds keep the SIF"

    record = run_small_workflow(shared_tmp / "docker", {"image": "env:analysis", "batch_system": "local"})
    assert record["image"]["runtime"] == "docker" and record["image"]["digest"] == entry["docker_id"]

    for system in ("local", "htcondor"):
        folder = shared_tmp / system
        folder.mkdir()
        give_tree_to(shared_tmp, worker)
        script = setup_workflow(
            folder,
            {"image": "env:analysis", "batch_system": system, "result_dir": "results", "batch_poll_interval": 0.5},
        )
        run_in_pool(worker, script, "--batch", env={"POOL_N": "3"})
        records = [provenance(folder, index) for index in range(3)]
        assert all(
            r["image"]["runtime"] == "apptainer"
            and r["image"]["digest"] == entry["sif_sha256"]
            and r["backend"] == system
            for r in records
        ), records
        item = json.loads((folder / "results/index=0/item.json").read_text())
        assert item["python"].startswith("3.11"), "ran in the analysis image, with b2box from the image"

    # No shared filesystem: the job brings its files along and HTCondor carries its results back.
    folder = shared_tmp / "transfer"
    folder.mkdir()
    (folder / "calibration.txt").write_text("constants")
    give_tree_to(shared_tmp, worker)
    script = setup_workflow(
        folder,
        {
            "image": "env:analysis",
            "batch_system": "htcondor",
            "result_dir": "results",
            "batch_poll_interval": 0.5,
            "transfer_files": [str(folder / "calibration.txt")],
        },
    )
    run_in_pool(worker, script, "--batch", env={"POOL_N": "3"})
    assert json.loads((folder / "results/count=3/total.json").read_text()) == {"total": 3}, "inputs went along"
    records = [provenance(folder, index) for index in range(3)]
    assert all(r["image"]["digest"] == entry["sif_sha256"] and r["exit_code"] == 0 for r in records)
    assert not list(folder.glob("logs/**/b2box-out.tar")), "what came back was unpacked"
    ads = worker.run(["condor_history", "-constraint", f'Iwd == "{folder}"', "-af", "TransferInput"], check=False)
    assert ads.stdout.count("b2box-bundle.tar") == 4, ads.stdout
