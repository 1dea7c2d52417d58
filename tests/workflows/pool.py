"""A workflow for the batch-system tests: N trivial tasks (optionally sleeping or failing) and a sum."""

import json
import os
import platform
import socket
import time

import b2box as b2luigi


class Item(b2luigi.Task):
    index = b2luigi.IntParameter()

    @property
    def htcondor_settings(self):
        marker = os.environ.get("POOL_HOLD_ONCE")
        if marker and self.index == 0 and not os.path.exists(marker):
            open(marker, "w").close()
            return {"hold": "True"}  # the first submission of item 0 is held by the schedd
        return {}

    def output(self):
        yield self.add_to_output("item.json")

    def run(self):
        if os.environ.get("POOL_RUNS"):  # every start of an item, to count how often each ran
            with open(os.environ["POOL_RUNS"], "a") as runs:
                runs.write(f"{self.index}\n")
        if os.environ.get("POOL_FAIL") == str(self.index):
            raise RuntimeError(f"item {self.index} fails on purpose")
        time.sleep(float(os.environ.get("POOL_SLEEP", "0")))
        with open(self.get_output_file_name("item.json"), "w") as handle:
            json.dump(
                {
                    "index": self.index,
                    "python": platform.python_version(),
                    "uid": os.getuid(),
                    "host": socket.gethostname(),
                    "ppid": os.getppid(),
                },
                handle,
            )


class Total(b2luigi.Task):
    count = b2luigi.IntParameter(default=int(os.environ.get("POOL_N", "6")))

    def requires(self):
        for index in range(self.count):
            yield Item(index=index)

    def output(self):
        yield self.add_to_output("total.json")

    def run(self):
        total = 0
        for path in self.get_input_file_names("item.json"):
            with open(path) as handle:
                total += json.load(handle)["index"]
        with open(self.get_output_file_name("total.json"), "w") as handle:
            json.dump({"total": total}, handle)


if __name__ == "__main__":
    b2luigi.process(Total(), workers=int(os.environ.get("POOL_WORKERS", "1000")))
