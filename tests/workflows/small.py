"""A small workflow for the container tests: three numbers and their sum, plus an identity check."""

import json
import os
import platform
import sys

import b2box as b2luigi


class Number(b2luigi.Task):
    index = b2luigi.IntParameter()

    def output(self):
        yield self.add_to_output("number.json")

    def run(self):
        with open(self.get_output_file_name("number.json"), "w") as handle:
            json.dump(
                {
                    "index": self.index,
                    "python": platform.python_version(),
                    "uid": os.getuid(),
                    "executable": sys.executable,
                    "greeting": os.environ.get("GREETING"),
                    "from_env_script": os.environ.get("FROM_ENV_SCRIPT"),
                },
                handle,
            )


class Sum(b2luigi.Task):
    def requires(self):
        for index in range(3):
            yield Number(index=index)

    def output(self):
        yield self.add_to_output("sum.json")

    def run(self):
        total = 0
        for path in self.get_input_file_names("number.json"):
            with open(path) as handle:
                total += json.load(handle)["index"]
        with open(self.get_output_file_name("sum.json"), "w") as handle:
            json.dump({"sum": total}, handle)


if __name__ == "__main__":
    b2luigi.set_setting("result_dir", os.environ.get("SMALL_RESULTS", "results"))
    b2luigi.process(Sum(), workers=3)
