"""One task that writes its process id beside its output's folder, then sleeps: for killing its job's watcher."""

import os
import time

import b2box


class Sleeper(b2box.Task):
    def output(self):
        yield self.add_to_output("woke.txt")

    def run(self):
        with open(os.path.join(os.path.dirname(__file__), "task.pid"), "w") as handle:
            handle.write(str(os.getpid()))
        time.sleep(60)
        with open(self.get_output_file_name("woke.txt"), "w") as handle:
            handle.write("woke\n")


if __name__ == "__main__":
    b2box.process(Sleeper(), batch=True)
