"""A workflow on a site's own batch system, written as a b2luigi BatchProcess plug-in (as b2luigi's docs show)."""

import os
import subprocess

import b2box as b2luigi
from b2box.batch import BatchProcess, JobStatus, create_executable_wrapper, get_log_file_dir


class SubprocessProcess(BatchProcess):
    """Runs the job as a child process, like b2luigi's TestProcess."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._process = None

    def start_job(self):
        log_dir = get_log_file_dir(self.task)
        os.makedirs(log_dir, exist_ok=True)
        with open(os.path.join(log_dir, "stdout"), "w") as out, open(os.path.join(log_dir, "stderr"), "w") as err:
            self._process = subprocess.Popen([create_executable_wrapper(self.task)], stdout=out, stderr=err)
        with open(os.path.join(os.environ["PLUGIN_CALLS"]), "a") as calls:
            calls.write(f"start {self.task.task_id}\n")

    def get_job_status(self):
        if self._process is None:
            return JobStatus.aborted
        code = self._process.poll()
        if code is None:
            return JobStatus.running
        return JobStatus.aborted if code else JobStatus.successful

    def terminate_job(self):
        if self._process is not None:
            self._process.kill()


class Square(b2luigi.Task):
    batch_system = "custom"
    process_class = SubprocessProcess
    number = b2luigi.IntParameter()

    def output(self):
        yield self.add_to_output("square.txt")

    def run(self):
        if self.number == int(os.environ.get("PLUGIN_FAIL", "-1")):
            raise RuntimeError(f"square of {self.number} failed on purpose")
        with open(self.get_output_file_name("square.txt"), "w") as handle:
            handle.write(str(self.number**2))


class NoPlugin(b2luigi.Task):
    batch_system = "custom"

    def output(self):
        yield self.add_to_output("never.txt")


class All(b2luigi.WrapperTask):
    def requires(self):
        for number in range(3):
            yield Square(number=number)
        if os.environ.get("PLUGIN_MISSING"):
            yield NoPlugin()


if __name__ == "__main__":
    b2luigi.set_setting("result_dir", "results")
    b2luigi.process(All(), batch=True)
