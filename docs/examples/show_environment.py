"""A workflow that records the environment its tasks ran in: the settings examples of docs/environments.md use it."""

import json
import os
import sys

import b2box


class Record(b2box.Task):
    """Writes what the task saw: Python version and the variables the settings examples set."""

    index = b2box.IntParameter()

    def output(self):
        yield self.add_to_output("environment.json")

    def run(self):
        seen = {
            "python": sys.version.split()[0],
            "setup": os.environ.get("ANALYSIS_SETUP", ""),
            "mode": os.environ.get("ANALYSIS_MODE", ""),
            "threads": os.environ.get("OMP_NUM_THREADS", ""),
            "config": os.environ.get("ANALYSIS_CONFIG", ""),
        }
        with open(self.get_output_file_name("environment.json"), "w") as handle:
            json.dump(seen, handle)


class All(b2box.WrapperTask):
    """Two records, so that two jobs show the same environment."""

    def requires(self):
        for index in range(2):
            yield Record(index=index)


if __name__ == "__main__":
    b2box.process(All())
