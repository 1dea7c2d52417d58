"""The pure parts of the HTCondor and Slurm backends: submit descriptions and status parsing."""

from __future__ import annotations

from pathlib import Path

import pytest

from b2box.batch.backends import htcondor, htcondor_ads, slurm
from b2box.batch.backends.base import JobState
from b2box.batch.waves import Wave


def test_htcondor_description_addresses_jobs_by_procid_only(tmp_path: Path) -> None:
    wave = Wave(folder=str(tmp_path / 'it\'s a "wave" dir'), jobs=())
    description = htcondor.submit_description(wave, 'my "job"', {"request_memory": "2 GB", "+AccountingGroup": '"x"'})
    assert description["executable"] == "/bin/bash"
    assert description["arguments"] == "\"'" + str(tmp_path) + '/it\'\'s a ""wave"" dir/$(ProcId)/job.sh\'"'
    assert description["output"].endswith("/$(ProcId)/log/stdout")
    assert description["environment"] == '"B2BOX_JOB_ID=$(ClusterId).$(ProcId)"'
    assert description["JobBatchName"] == "\"my 'job'\""
    assert description["request_memory"] == "2 GB" and description["+AccountingGroup"] == '"x"'


@pytest.mark.parametrize(
    ("ad", "state", "reason"),
    [
        ({"JobStatus": 1}, JobState.QUEUED, ""),
        ({"JobStatus": 2}, JobState.RUNNING, ""),
        ({"JobStatus": 4, "ExitCode": 0}, JobState.FINISHED, ""),
        ({"JobStatus": 3}, JobState.FINISHED, "removed"),
        (
            {"JobStatus": 5, "HoldReason": "Error from slot1: disk full"},
            JobState.HELD,
            "held: Error from slot1: disk full",
        ),
        ({"JobStatus": 42}, JobState.UNKNOWN, "unknown HTCondor JobStatus 42"),
    ],
)
def test_htcondor_states(ad: dict, state: JobState, reason: str) -> None:
    status = htcondor_ads.status_from_ad({"ClusterId": 1, "ProcId": 0, **ad})
    assert status.state is state and reason in status.reason


def test_htcondor_jobs_missing_from_queue_have_finished() -> None:
    found = htcondor_ads.statuses(["7.0", "7.1", "8.0"], [{"ClusterId": 7, "ProcId": 1, "JobStatus": 2}])
    assert found["7.1"].state is JobState.RUNNING
    assert found["7.0"].state is JobState.FINISHED and found["8.0"].state is JobState.FINISHED
    assert htcondor_ads.clusters_constraint(["8.0", "7.1", "7.0"]) == "member(ClusterId, {7, 8})"


SQUEUE = """\
101_0|RUNNING|None
101_1|PENDING|Resources
101_2|COMPLETING|None
101_3|REQUEUE_HOLD|job requeued in held state
101_4|OUT_OF_ME+|None
101_5|FANCY_NEW_STATE|Whatever
101_6|CANCELLED by 1000|None
garbage line without separator
"""


def test_squeue_parsing_handles_every_state_and_never_crashes() -> None:
    found = slurm.parse_squeue(SQUEUE)
    assert found["101_0"].state is JobState.RUNNING
    assert found["101_1"].state is JobState.QUEUED
    assert found["101_2"].state is JobState.RUNNING
    assert found["101_3"].state is JobState.HELD and "requeued in held state" in found["101_3"].reason
    assert found["101_4"].state is JobState.FINISHED
    assert found["101_5"].state is JobState.UNKNOWN and "FANCY_NEW_STATE" in found["101_5"].reason
    assert found["101_6"].state is JobState.FINISHED
    assert len(found) == 7


def test_sbatch_arguments(tmp_path: Path) -> None:
    wave = Wave(folder=str(tmp_path / "w a v e"), jobs=())
    arguments = slurm.sbatch_arguments(wave, 3, "analysis", {"mem": "2G", "exclusive": True, "time": "01:00:00"})
    assert arguments[:2] == ["--parsable", "--array=0-2"]
    assert arguments[arguments.index("--output") + 1] == str(tmp_path / "w a v e/%a/log/stdout")
    assert "--job-name=analysis" in arguments and "--mem=2G" in arguments
    assert "--exclusive" in arguments and "--time=01:00:00" in arguments


def test_htcondor_starts_the_container_when_asked(tmp_path: Path) -> None:
    wave = Wave(folder=str(tmp_path), jobs=())
    universe = htcondor.submit_description(wave, None, {}, ("container_image", "/images/a b.sif"))
    assert universe["universe"] == "container" and universe["container_image"] == "/images/a b.sif"
    assert universe["transfer_container"] == "false" and universe["executable"] == "/bin/bash"
    site = htcondor.submit_description(wave, None, {}, ("singularity_image", '/odd "name"\\.sif'))
    assert site["+SingularityImage"] == '"/odd \\"name\\"\\\\.sif"' and site["universe"] == "vanilla"
    plain = htcondor.submit_description(wave, None, {})
    assert "container_image" not in plain and "+SingularityImage" not in plain


def test_htcondor_jobs_a_factory_has_not_made_yet_are_queued_not_finished() -> None:
    ads = [
        {"ClusterId": 9, "JobMaterializeNextProcId": 4},  # the cluster's own ad (the bindings bring it along)
        {"ClusterId": 9, "ProcId": 3, "JobStatus": 1, "JobMaterializeNextProcId": 4},
    ]
    found = htcondor_ads.statuses(["9.0", "9.3", "9.4", "9.9"], ads)
    assert found["9.0"].state is JobState.FINISHED, "made, and gone from the queue"
    assert found["9.3"].state is JobState.QUEUED
    assert found["9.4"].state is JobState.QUEUED and found["9.9"].state is JobState.QUEUED, "not made yet"


def test_limits_read_from_the_batch_systems_configuration() -> None:
    config = slurm.parse_config(
        "Configuration data as of 2026-12-06\nMaxArraySize            = 1001\nMaxJobCount = 10000\n"
    )
    limits = slurm.limits_of(config, None, None)
    assert (limits.array_size, limits.queued) == (1001, 9000) and "MaxArraySize = 1001" in limits.source
    overridden = slurm.limits_of(config, 50, 200)
    assert (overridden.array_size, overridden.queued) == (50, 200), "the settings win"
    condor = htcondor_ads.limits_of({"MAX_JOBS_PER_SUBMISSION": "20000", "MAX_JOBS_PER_OWNER": "100000"}, None)
    assert (condor.array_size, condor.queued) == (20000, 100000)


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("sbatch: error: Batch job submission failed: Invalid job array specification", "array"),
        ("sbatch: error: QOSMaxSubmitJobPerUserLimit", "queue"),
        ("sbatch: error: Batch job submission failed: Invalid partition name specified", ""),
    ],
)
def test_slurm_refusals_that_name_a_limit(message: str, kind: str) -> None:
    assert slurm.limit_of_refusal(message) == kind


def test_htcondor_refusals_that_name_a_limit() -> None:
    assert htcondor_ads.limit_of_refusal("Number of submitted jobs would exceed MAX_JOBS_PER_SUBMISSION") == "array"
    assert htcondor_ads.limit_of_refusal("would exceed MAX_JOBS_PER_OWNER") == "queue"
    assert htcondor_ads.limit_of_refusal("Requirements are not valid") == ""


def test_slurm_array_throttle(tmp_path: Path) -> None:
    wave = Wave(folder=str(tmp_path), jobs=())
    assert "--array=0-11%2" in slurm.sbatch_arguments(wave, 12, None, {}, throttle=2)
    assert "--array=0-0" in slurm.sbatch_arguments(wave, 1, None, {}, throttle=2), "no throttle that cannot bind"
