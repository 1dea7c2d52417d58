"""The wrapper itself: readable, valid bash, and refusing an image that is not the pinned one."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

import b2box as b2luigi
from b2box.batch import grouping
from b2box.batch.prepare import JobPreparer
from b2box.errors import B2BoxError


class Packed(b2luigi.Task):
    def output(self):
        yield self.add_to_output("packed.txt")

    def run(self):
        with open(self.get_output_file_name("packed.txt"), "w") as handle:
            handle.write("x")


def fake_sif(path: Path, content: bytes) -> str:
    path.write_bytes(content)
    return "sha256:" + hashlib.sha256(content).hexdigest()


def test_wrapper_is_valid_readable_bash(tmp_path: Path) -> None:
    env_script = tmp_path / "my env.sh"
    env_script.write_text("export X=1\n")
    b2luigi.set_setting("env_script", str(env_script))
    b2luigi.set_setting("env", {"QUOTED": "it's $(here)"})
    job = JobPreparer("local").prepare(Packed())
    text = Path(job.wrapper).read_text()
    assert subprocess.run(["bash", "-n", job.wrapper]).returncode == 0
    assert f"source '{env_script}'" in text
    assert "export QUOTED='it'\"'\"'s $(here)'" in text
    assert "b2box_record" in text and "set -u" in text
    assert "env\n" not in text and "printenv" not in text, "the wrapper never dumps the environment"


def test_pinned_sif_that_changed_before_the_job_started_is_refused(tmp_path: Path) -> None:
    image = tmp_path / "analysis.sif"
    digest = fake_sif(image, b"the image that was locked")
    b2luigi.set_setting("image", str(image))
    b2luigi.set_setting("image_digest", digest)
    job = JobPreparer("local").prepare(Packed())
    fake_sif(image, b"another image at the same path")
    finished = subprocess.run(["bash", job.wrapper], capture_output=True, text=True)
    assert finished.returncode == 74
    assert "refusing to run" in finished.stderr and digest.removeprefix("sha256:") in finished.stderr
    assert json.loads(Path(job.exit_file).read_text())["exit_code"] == 74
    assert not Path(Packed().get_output_file_name("packed.txt")).exists()


def test_pinned_sif_mismatch_is_refused_before_submission(tmp_path: Path) -> None:
    image = tmp_path / "analysis.sif"
    fake_sif(image, b"content")
    b2luigi.set_setting("image", str(image))
    b2luigi.set_setting("image_digest", "sha256:" + "1" * 64)
    with pytest.raises(B2BoxError, match=r"refusing to run: Apptainer image .*analysis\.sif is sha256:"):
        JobPreparer("local").prepare(Packed())


def test_invalid_spec_names_task_and_field(tmp_path: Path) -> None:
    b2luigi.set_setting("env", {"NOT VALID": "x"})
    with pytest.raises(B2BoxError, match=r"Packed__99914b932b: environment setting 'env': .*NOT VALID"):
        JobPreparer("local").prepare(Packed())
    b2luigi.set_setting("env", {})
    b2luigi.set_setting("runtime", "docker")
    with pytest.raises(B2BoxError, match="runtime 'docker' needs an image"):
        JobPreparer("local").prepare(Packed())


def test_htcondor_started_container_leaves_the_wrapper_without_one(tmp_path: Path) -> None:
    """htcondor_container: HTCondor starts the image, so the wrapper runs inside it and starts no container."""
    image = tmp_path / "analysis.sif"
    digest = fake_sif(image, b"an image")
    b2luigi.set_setting("image", str(image))
    b2luigi.set_setting("htcondor_container", "container_image")
    job = JobPreparer("htcondor").prepare(Packed())
    assert job.container_image == str(image) and job.container_mode == "container_image"
    assert job.identity.digest == digest, "the provenance keeps the digest checked at submission"
    text = Path(job.wrapper).read_text()
    assert " exec --cleanenv" not in text and "python3" in text
    local = JobPreparer("local").prepare(Packed())
    assert local.container_image == "" and "exec --cleanenv" in Path(local.wrapper).read_text()

    b2luigi.set_setting("image", "some/docker-image:1")
    b2luigi.set_setting("runtime", "docker")
    with pytest.raises(B2BoxError, match=r"Packed__99914b932b: htcondor_container 'container_image' starts Apptainer"):
        JobPreparer("htcondor").prepare(Packed())


def test_transfer_files_where_it_cannot_work_is_an_error_not_ignored() -> None:
    b2luigi.set_setting("transfer_files", ["/some/where/file.txt"])
    with pytest.raises(B2BoxError, match=r"Packed__99914b932b: transfer_files works with batch_system 'htcondor'"):
        JobPreparer("local").prepare(Packed())
    with pytest.raises(B2BoxError, match=r"Packed__99914b932b: transfer_files needs an Apptainer image"):
        JobPreparer("htcondor").prepare(Packed())


def test_job_bringing_its_files_along(tmp_path: Path) -> None:
    """transfer_files: the bundle holds the job's files at their paths; the wrapper binds them from $B2BOX_ROOT."""
    import tarfile

    from b2box.batch import transfer

    image = tmp_path / "analysis.sif"
    fake_sif(image, b"an image")
    extra = tmp_path / "calibration" / "constants.txt"
    extra.parent.mkdir()
    extra.write_text("42")
    b2luigi.set_setting("image", str(image))
    b2luigi.set_setting("transfer_files", [str(extra)])
    job = JobPreparer("htcondor").prepare(Packed())
    assert job.transfer
    with tarfile.open(Path(job.log_dir) / transfer.BUNDLE) as tar:
        names = tar.getnames()
        manifest = tar.extractfile(transfer.MANIFEST).read().decode()  # type: ignore[union-attr]
    for path in (str(extra), job.wrapper, str(Path(job.task_dir) / "job.json")):
        assert path.lstrip("/") in names
    assert f"b2box_wrapper={job.wrapper}" in manifest
    text = Path(job.wrapper).read_text()
    assert '--mount type=bind,source="${B2BOX_ROOT:-}"/' in text and 'cd -- "${B2BOX_ROOT:-}"' in text
    assert str(Path(job.log_dir) / "exit.json") in text and "site-packages" not in text, "nothing of the host bound"


def test_returned_results_land_only_in_the_tasks_folders(tmp_path: Path) -> None:
    import io
    import tarfile

    from b2box.batch import transfer

    task = Packed()
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    output = Path(task.get_output_file_name("packed.txt"))
    with tarfile.open(log_dir / transfer.RETURNED, "w") as tar:
        for path, data in (
            (output, b"result"),
            (log_dir / "exit.json", b'{"exit_code": 0}'),
            (tmp_path / "elsewhere.txt", b"not allowed"),
        ):
            info = tarfile.TarInfo(str(path).lstrip("/"))
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    transfer.restore(task, str(log_dir))
    assert output.read_text() == "result" and (log_dir / "exit.json").is_file()
    assert not (tmp_path / "elsewhere.txt").exists() and not (log_dir / transfer.RETURNED).exists()


class Numbered(Packed):
    index = b2luigi.IntParameter()


def test_group_that_cannot_start_leaves_every_member_a_record(tmp_path: Path) -> None:
    b2luigi.set_setting("executable", ["/nowhere/python3"])
    preparer = JobPreparer("local")
    members = [preparer.prepare(Numbered(index=index)) for index in range(3)]
    group = grouping.group(preparer, members)
    finished = subprocess.run(["bash", group.wrapper], capture_output=True, text=True)
    assert finished.returncode == 72 and "has no /nowhere/python3" in finished.stderr
    for member in members:
        assert json.loads(Path(member.exit_file).read_text())["exit_code"] == 72
        assert "group job ended (exit 72) before the task ran" in Path(member.stderr).read_text()
