"""The result identity tests' workflow: three numbers and their sum, each output stamped by the run that made it.

Every output holds a ``stamp`` (a nanosecond clock and the pid), so a test sees exactly which results a run made
again. What one task runs with can be changed from outside, one task at a time:
IDENTITY_IMAGE_<i> is Number(index=i)'s image (else the settings' one), IDENTITY_FLAVOUR_<i> its variable FLAVOUR
(else "plain"), and IDENTITY_SECRET goes into every Number's variable API_TOKEN (a secret: never in a file).
IDENTITY_ROOT=<i> makes Number(index=i) the only root (to remake one input alone); IDENTITY_SLEEP_<i>=S makes
Number(index=i) write its pid to $IDENTITY_STARTED, then sleep S seconds before it writes its output.
"""

import json
import os
import time

import b2box as b2luigi


def stamp() -> str:
    return f"{time.time_ns()}-{os.getpid()}"


class Number(b2luigi.Task):
    index = b2luigi.IntParameter()

    @property
    def env(self):
        variables = {"FLAVOUR": os.environ.get(f"IDENTITY_FLAVOUR_{self.index}", "plain")}
        if os.environ.get("IDENTITY_SECRET"):
            variables["API_TOKEN"] = os.environ["IDENTITY_SECRET"]
        return variables

    @property
    def image(self):
        return os.environ.get(f"IDENTITY_IMAGE_{self.index}") or b2luigi.get_setting("image", "")

    def output(self):
        yield self.add_to_output("number.json")

    def run(self):
        pause = os.environ.get(f"IDENTITY_SLEEP_{self.index}")
        if pause:  # say so, then take a while (a test stops the run meanwhile)
            with open(os.environ["IDENTITY_STARTED"], "w") as started:
                started.write(str(os.getpid()))
            time.sleep(float(pause))
        value = {"index": self.index, "flavour": os.environ.get("FLAVOUR"), "stamp": stamp()}
        with open(self.get_output_file_name("number.json"), "w") as handle:
            json.dump(value, handle)


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
            json.dump({"sum": total, "stamp": stamp()}, handle)


if __name__ == "__main__":
    root = os.environ.get("IDENTITY_ROOT")
    b2luigi.process(Number(index=int(root)) if root else Sum(), workers=3)
