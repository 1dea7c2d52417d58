"""Tasks that use known amounts of memory and CPU time, for the resource tests (tests/test_resources.py).

``Hungry(mb=M, cpu=C, sleep=S)`` touches M megabytes, burns C CPU seconds and sleeps S seconds, then writes its
output; settings (image, request_memory, memory_growth, tasks_per_job ...) come from settings.json beside it.
"""

import time

import b2box


class Hungry(b2box.Task):
    mb = b2box.IntParameter()
    cpu = b2box.FloatParameter(default=0.0)
    sleep = b2box.FloatParameter(default=0.0)

    def output(self):
        yield self.add_to_output("done.txt")

    def run(self):
        block = bytearray(self.mb * 2**20)
        for position in range(0, len(block), 4096):  # touched: resident, not just reserved
            block[position] = 1
        end = time.process_time() + self.cpu
        while time.process_time() < end:
            pass
        time.sleep(self.sleep)
        with open(self.get_output_file_name("done.txt"), "w") as handle:
            handle.write(f"{len(block)}\n")


class Several(b2box.WrapperTask):
    sizes = b2box.ListParameter(default=[300])
    cpu = b2box.FloatParameter(default=0.0)
    sleep = b2box.FloatParameter(default=0.0)

    def requires(self):
        for size in self.sizes:
            yield Hungry(mb=size, cpu=self.cpu, sleep=self.sleep)


if __name__ == "__main__":
    b2box.process(Several(), workers=4, batch=True)
