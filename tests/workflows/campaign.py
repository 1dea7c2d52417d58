"""A campaign of 1,000 batch jobs with failures, for the report test (tests/test_report_run.py).

600 ``Simulate`` jobs, 300 ``Reconstruct`` jobs (each needs two simulations) and 100 ``Merge`` jobs (each needs
three reconstructions); each touches a known amount of memory and sleeps a little. Some fail: every 97th simulation
raises, every 50th reconstruction is killed by SIGKILL; what needs them is blocked.
"""

import os
import signal
import time

import b2box


def touch(megabytes):
    block = bytearray(megabytes * 2**20)
    for position in range(0, len(block), 4096):
        block[position] = 1
    return len(block)


class Simulate(b2box.Task):
    i = b2box.IntParameter()
    request_memory = "128 MB"

    def output(self):
        yield self.add_to_output("events.txt")

    def run(self):
        size = touch(4 + self.i % 7 * 4)
        time.sleep(0.01 * (self.i % 5))
        if self.i % 97 == 13:
            raise ValueError(f"generator seed {self.i} is cursed")
        with open(self.get_output_file_name("events.txt"), "w") as handle:
            handle.write(f"{size}\n")


class Reconstruct(b2box.Task):
    i = b2box.IntParameter()
    request_memory = "256 MB"

    def requires(self):
        yield Simulate(i=2 * self.i)
        yield Simulate(i=2 * self.i + 1)

    def output(self):
        yield self.add_to_output("tracks.txt")

    def run(self):
        size = touch(16 + self.i % 4 * 12)
        if self.i % 50 == 7:
            os.kill(os.getpid(), signal.SIGKILL)
        with open(self.get_output_file_name("tracks.txt"), "w") as handle:
            handle.write(f"{size}\n")


class Merge(b2box.Task):
    j = b2box.IntParameter()
    request_memory = "64 MB"

    def requires(self):
        for i in range(3 * self.j, 3 * self.j + 3):
            yield Reconstruct(i=i)

    def output(self):
        yield self.add_to_output("merged.txt")

    def run(self):
        touch(5)
        with open(self.get_output_file_name("merged.txt"), "w") as handle:
            handle.write("merged\n")


class Campaign(b2box.WrapperTask):
    def requires(self):
        for j in range(100):
            yield Merge(j=j)


if __name__ == "__main__":
    b2box.process(Campaign(), workers=16, batch=True)
