"""A workflow whose parameters, paths and environment values are hostile to shells."""

import json
import os

import b2box as b2luigi

NASTY = [
    "plain",
    "with space",
    'it\'s "quoted"',
    "$(touch /tmp/b2box-injected) `touch /tmp/b2box-injected2` ${HOME}",
    "line one\nline two",
    "ünïcødé ✓ 測試",
    "semi; rm -rf / && echo pwned | cat > x",
]


class Echo(b2luigi.Task):
    value = b2luigi.Parameter(hashed=True)

    def output(self):
        yield self.add_to_output("echo.json")

    def run(self):
        with open(self.get_output_file_name("echo.json"), "w", encoding="utf-8") as handle:
            json.dump(
                {"value": self.value, "env": os.environ.get("NASTY_VALUE"), "secret_seen": os.environ.get("API_TOKEN")},
                handle,
            )


class All(b2luigi.WrapperTask):
    def requires(self):
        for value in NASTY:
            yield Echo(value=value)


if __name__ == "__main__":
    b2luigi.set_setting("env", {"NASTY_VALUE": NASTY[3] + NASTY[4] + NASTY[2], "API_TOKEN": "hunter2-secret"})
    b2luigi.process(All())
