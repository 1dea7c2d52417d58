"""N trivial tasks for the batch-system benchmark, runnable by b2box and by b2luigi.

BENCH_IMPL (b2box|b2luigi), BENCH_N, BENCH_SYSTEM (htcondor|slurm), BENCH_STATS (file for b2box's call
counts). Settings such as the image come from the settings.json beside this file.
"""

import importlib
import json
import os
import resource

b2luigi = importlib.import_module(os.environ.get("BENCH_IMPL", "b2box"))


class Trivial(b2luigi.Task):
    index = b2luigi.IntParameter()

    def output(self):
        yield self.add_to_output("done.txt")

    def run(self):
        with open(self.get_output_file_name("done.txt"), "w") as handle:
            handle.write(str(self.index))


class AllTrivial(b2luigi.WrapperTask):
    count = b2luigi.IntParameter()

    def requires(self):
        for index in range(self.count):
            yield Trivial(index=index)


if __name__ == "__main__":
    # Inside a batch job this script runs again in the job's clean environment: no BENCH_* variables there.
    b2luigi.set_setting("batch_system", os.environ.get("BENCH_SYSTEM", "local"))
    tasks = AllTrivial(count=int(os.environ.get("BENCH_N", "0")))
    if os.environ.get("BENCH_IMPL", "b2box") == "b2box":
        result = b2luigi.process(tasks, workers=100000, batch=True, exit_on_failure=False)
        stats = result.batch_stats
        with open(os.environ.get("BENCH_STATS", "stats.json"), "w") as handle:
            json.dump(
                {
                    "submit_calls": stats.submit_calls,
                    "status_queries": stats.poll_calls,
                    "jobs": stats.jobs,
                    "success": bool(result),
                    "slowest_poll_cpu_s": stats.slowest_poll_cpu_s,
                    "submitter_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                },
                handle,
            )
    else:
        b2luigi.process(tasks, workers=min(int(os.environ.get("BENCH_N", "1")), 100), batch=True)
