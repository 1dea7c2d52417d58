"""N independent file-writing tasks under one wrapper: the shape of a large flat workflow.

Run with BENCH_IMPL=b2box or BENCH_IMPL=b2luigi, BENCH_N=<tasks>, BENCH_RESULTS=<folder>,
optionally BENCH_WORKERS and BENCH_BATCH_SYSTEM (with --batch). The same file runs under both,
as a b2luigi user's script would.
"""

import importlib
import os

b2luigi = importlib.import_module(os.environ.get("BENCH_IMPL", "b2box"))


class Write(b2luigi.Task):
    index = b2luigi.IntParameter()

    def output(self):
        yield self.add_to_output("value.txt")

    def run(self):
        with open(self.get_output_file_name("value.txt"), "w") as handle:
            handle.write(f"{self.index}\n")


class Everything(b2luigi.WrapperTask):
    count = b2luigi.IntParameter()

    def requires(self):
        for index in range(self.count):
            yield Write(index=index)


if __name__ == "__main__":
    b2luigi.set_setting("result_dir", os.environ["BENCH_RESULTS"])
    b2luigi.set_setting("log_dir", os.path.join(os.environ["BENCH_RESULTS"], "logs"))
    b2luigi.set_setting("task_file_dir", os.path.join(os.environ["BENCH_RESULTS"], "task_files"))
    if os.environ.get("BENCH_BATCH_SYSTEM"):
        b2luigi.set_setting("batch_system", os.environ["BENCH_BATCH_SYSTEM"])
    workers = int(os.environ.get("BENCH_WORKERS", "1"))
    b2luigi.process(Everything(count=int(os.environ["BENCH_N"])), workers=workers)
