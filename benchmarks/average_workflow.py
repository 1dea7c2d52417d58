"""The seed's average workflow at any size: ``Average`` requires BENCH_N ``Number`` tasks.

Run with BENCH_N=<tasks> and BENCH_RESULTS=<folder>, and BENCH_IMPL=b2luigi to run it with b2luigi (as a b2luigi
user's script, unchanged); the b2box that runs it is whichever ``import b2box`` finds (benchmarks/noop_rerun.py
puts another revision first on PYTHONPATH to compare two of them).
"""

import importlib
import os

b2luigi = importlib.import_module(os.environ.get("BENCH_IMPL", "b2box"))


class Number(b2luigi.Task):
    index = b2luigi.IntParameter()

    def output(self):
        yield self.add_to_output("number.txt")

    def run(self):
        with open(self.get_output_file_name("number.txt"), "w") as handle:
            handle.write(f"{self.index}\n")


class Average(b2luigi.Task):
    count = b2luigi.IntParameter()

    def requires(self):
        for index in range(self.count):
            yield self.clone(Number, index=index)

    def output(self):
        yield self.add_to_output("average.txt")

    def run(self):
        total = 0.0
        for path in self.get_input_file_names("number.txt"):
            with open(path) as handle:
                total += float(handle.read())
        with open(self.get_output_file_name("average.txt"), "w") as handle:
            handle.write(f"{total / self.count}\n")


if __name__ == "__main__":
    results = os.environ["BENCH_RESULTS"]
    b2luigi.set_setting("result_dir", results)
    b2luigi.set_setting("log_dir", os.path.join(results, "logs"))
    b2luigi.set_setting("task_file_dir", os.path.join(results, "task_files"))
    b2luigi.process(Average(count=int(os.environ["BENCH_N"])), workers=int(os.environ.get("BENCH_WORKERS", "1")))
