"""The fault suite's workflow: N steps and a total; each step can hang, crash or read a secret on request.

A step's output reads ``started`` then ``finished <text>``; every start of a step appends ``<index> <pid>`` to
$FAULT_RUNS, so a test can count how often each task ran.
FAULT_<index> chooses what step <index> does: ``hang`` (writes its pid to $FAULT_READY, then sleeps), ``sleep:S``,
``gate`` (waits until the file $FAULT_GATE exists, at most 300 s),
``fail`` (raises), ``os_exit`` (a C++ library's way of ending a process), ``segfault``, ``secret`` (writes the
length of $API_TOKEN, never the value; ``secret:hang`` then hangs), ``secret:NAME`` (the length of $NAME).
FAULT_N is the number of steps (default 3).
"""

import ctypes
import os
import time

import b2box as b2luigi


def _note_run(index: int) -> None:
    with open(os.environ["FAULT_RUNS"], "a") as handle:
        handle.write(f"{index} {os.getpid()}\n")


class Step(b2luigi.Task):
    index = b2luigi.IntParameter()

    def output(self):
        yield self.add_to_output("step.txt")

    def run(self):
        _note_run(self.index)
        mode = os.environ.get(f"FAULT_{self.index}", "")
        text = str(self.index)
        with open(self.get_output_file_name("step.txt"), "w") as handle:
            handle.write("started\n")
            handle.flush()
            if mode == "hang":
                with open(os.environ["FAULT_READY"], "w") as ready:
                    ready.write(str(os.getpid()))
                time.sleep(600)
            elif mode == "gate":
                deadline = time.time() + 300
                while not os.path.exists(os.environ["FAULT_GATE"]) and time.time() < deadline:
                    time.sleep(0.1)
            elif mode.startswith("sleep:"):
                time.sleep(float(mode.split(":", 1)[1]))
            elif mode == "fail":
                raise RuntimeError(f"step {self.index} fails on purpose")
            elif mode == "os_exit":
                os._exit(0)
            elif mode == "segfault":
                ctypes.string_at(0)
            elif mode.startswith("secret"):
                name = mode.partition(":")[2] if mode not in ("secret", "secret:hang") else "API_TOKEN"
                text = f"token of {len(os.environ.get(name, ''))} characters"
                if mode == "secret:hang":
                    handle.write(f"{text}\n")
                    handle.flush()
                    with open(os.environ["FAULT_READY"], "w") as ready:
                        ready.write(str(os.getpid()))
                    time.sleep(600)
            handle.write(f"finished {text}\n")


class Total(b2luigi.Task):
    count = b2luigi.IntParameter(default=int(os.environ.get("FAULT_N", "3")))

    def requires(self):
        for index in range(self.count):
            yield Step(index=index)

    def output(self):
        yield self.add_to_output("total.txt")

    def run(self):
        with open(self.get_output_file_name("total.txt"), "w") as handle:
            handle.write(str(len(self.get_input_file_names("step.txt"))))


if __name__ == "__main__":
    b2luigi.process(Total(), workers=int(os.environ.get("FAULT_WORKERS", "4")))
