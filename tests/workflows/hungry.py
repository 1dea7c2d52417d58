"""Tasks that use known amounts of memory and CPU time, for the resource tests (tests/test_resources.py).

``Hungry(mb=M, cpu=C, sleep=S)`` touches M megabytes, burns C CPU seconds and sleeps S seconds, then writes into its
output what it measured itself (wall and CPU time of its run(), its process's peak memory): the figures the job's
record must agree with. Settings (image, request_memory, memory_growth ...) come from settings.json beside it.
"""

import json
import resource
import time

import b2box


class Hungry(b2box.Task):
    mb = b2box.IntParameter()
    cpu = b2box.FloatParameter(default=0.0)
    sleep = b2box.FloatParameter(default=0.0)

    def output(self):
        yield self.add_to_output("done.txt")

    def run(self):
        wall, cpu = time.perf_counter(), time.process_time()
        block = bytearray(self.mb * 2**20)
        for position in range(0, len(block), 4096):  # touched: resident, not just reserved
            block[position] = 1
        end = time.process_time() + self.cpu
        while time.process_time() < end:
            pass
        time.sleep(self.sleep)
        done = {
            "bytes": len(block),
            "wall_s": time.perf_counter() - wall,
            "cpu_s": time.process_time() - cpu,
            "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        }
        with open(self.get_output_file_name("done.txt"), "w") as handle:
            json.dump(done, handle)


class Several(b2box.WrapperTask):
    sizes = b2box.ListParameter(default=[300])
    cpu = b2box.FloatParameter(default=0.0)
    sleep = b2box.FloatParameter(default=0.0)

    def requires(self):
        for size in self.sizes:
            yield Hungry(mb=size, cpu=self.cpu, sleep=self.sleep)


if __name__ == "__main__":
    b2box.process(Several(), workers=4, batch=True)
