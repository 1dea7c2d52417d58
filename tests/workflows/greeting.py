"""A task that writes a setting of the user's own (a top-level key of a settings.json, as b2luigi allows)."""

import b2box as b2luigi


class Greet(b2luigi.Task):
    def output(self):
        yield self.add_to_output("greeting.txt")

    def run(self):
        with open(self.get_output_file_name("greeting.txt"), "w") as handle:
            handle.write(b2luigi.get_setting("greeting"))


if __name__ == "__main__":
    b2luigi.process(Greet())
