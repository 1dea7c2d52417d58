"""A workflow run in the environment images/tiny (env:tiny): it records what the Dockerfile's RUN, ENV and COPY
made, as its tasks see them (docs/environments.md, building on a node without Docker)."""

import json
import os
import sys

import b2box


class Look(b2box.Task):
    """Writes what the environment gave the task: a variable, two files, the Python that runs it."""

    index = b2box.IntParameter()

    def output(self):
        yield self.add_to_output("seen.json")

    def run(self):
        def read(path):
            return open(path).read().strip() if os.path.exists(path) else None

        seen = {
            "env": os.environ.get("TINY_GREETING"),
            "copy": read("/opt/tiny/greeting.txt"),
            "run": read("/opt/tiny/made-by-run.txt"),
            "python": sys.executable,
        }
        with open(self.get_output_file_name("seen.json"), "w") as handle:
            json.dump(seen, handle)


class All(b2box.WrapperTask):
    """Two tasks, two jobs: each sees the same environment."""

    def requires(self):
        for index in range(2):
            yield Look(index=index)


if __name__ == "__main__":
    b2box.process(All())
