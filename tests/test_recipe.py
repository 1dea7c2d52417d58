"""Dockerfile -> Apptainer definition (b2box.env.recipe, with the real spython): what is translated, what is refused
with one line naming the file, the line and the fix, and what is dropped with a warning. No testbed needed."""

from __future__ import annotations

from pathlib import Path

import pytest

from b2box.env.recipe import convert
from b2box.errors import B2BoxError

BASE = "FROM 127.0.0.1:5000/python:3.11-slim-bookworm\n"


def dockerfile(tmp_path: Path, text: str) -> Path:
    (tmp_path / "greeting.txt").write_text("hello\n")
    (tmp_path / "folder").mkdir(exist_ok=True)
    path = tmp_path / "Dockerfile"
    path.write_text(text)
    return path


def sections(definition: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {"header": []}
    current = "header"
    for line in definition.splitlines():
        if line.startswith("%"):
            current = line.split()[0]
            found[current] = []
        elif line.strip():
            found[current].append(line)
    return found


def test_from_run_env_copy_workdir_translate_as_docker_builds_them(tmp_path: Path) -> None:
    text, warnings = convert(
        dockerfile(
            tmp_path,
            BASE + "ENV GREETING=hello \\\n    TINY_HOME=/opt/tiny\n"
            "WORKDIR /opt/tiny\n"
            "COPY greeting.txt copied.txt\n"
            'RUN ["python3", "-c", "print(1)"]\n'
            "RUN python3 -c 'import os; print(os.environ[\"GREETING\"])' > from-run.txt\n"
            'LABEL purpose="a test"\n'
            'CMD ["python3"]\n',
        )
    )
    parts = sections(text)
    assert "Bootstrap: docker" in parts["header"] and "From: 127.0.0.1:5000/python:3.11-slim-bookworm" in text
    assert parts["%files"] == ["greeting.txt /opt/tiny/copied.txt"], "a relative destination is in the WORKDIR"
    post = parts["%post"]
    assert post[:2] == ["export GREETING=hello", "export TINY_HOME=/opt/tiny"], "ENV reaches RUN's processes"
    assert post.index("cd /opt/tiny") < post.index("python3 -c 'print(1)'"), "RUN runs in the WORKDIR"
    assert "export GREETING=hello" in parts["%environment"]
    assert parts["%labels"] == ["purpose a test"], "one label a line, NAME VALUE"
    assert 'exec python3 "$@"' in parts["%runscript"], "CMD is the command, not a script for bash"
    assert warnings == []


@pytest.mark.parametrize(
    ("lines", "line", "said"),
    [
        ("ARG BASE=python\nFROM ${BASE}:3.11\n", 1, "ARG before FROM (an ARG used in FROM) is not translated"),
        (BASE + "RUN true\nFROM debian:bookworm\n", 3, "a second FROM (a multi-stage build)"),
        (BASE + "COPY --from=build /x /x\n", 2, "COPY --from (a multi-stage build) is not translated"),
        (BASE + "USER nobody\n", 2, "USER is not translated: Apptainer runs %post as root"),
        (BASE + 'SHELL ["/bin/bash", "-c"]\n', 2, "SHELL is not translated: Apptainer runs %post with /bin/sh"),
        (BASE + "COPY --chown=1:1 greeting.txt /g\n", 2, "COPY --chown=1:1 is not translated"),
        (BASE + "ADD https://example.org/x.tar.gz /opt/\n", 2, "ADD of a URL"),
        (BASE + "ADD data.tar.gz /opt/\n", 2, "ADD of an archive (data.tar.gz) unpacks it in Docker"),
        (BASE + "COPY folder /opt/folder\n", 2, "COPY of the folder folder is not translated"),
        (BASE + "\n\nCOPY missing.txt /opt/\n", 4, "COPY of missing.txt: there is no such file"),
        (BASE + "RUN --mount=type=cache,target=/c true\n", 2, "RUN --mount=type=cache,target=/c is not translated"),
        (BASE + "RUN <<EOF\ntrue\nEOF\n", 2, "RUN with a here-document is not translated"),
        ("FROM --platform=linux/amd64 debian\n", 1, "FROM --platform=linux/amd64 is not translated"),
        (BASE + "FOO bar\n", 2, "FOO is not a Dockerfile instruction b2box translates"),
    ],
)
def test_untranslatable_instruction_is_one_line_with_file_line_and_fix(
    tmp_path: Path, lines: str, line: int, said: str
) -> None:
    path = dockerfile(tmp_path, lines)
    with pytest.raises(B2BoxError) as refused:
        convert(path)
    message = str(refused.value)
    assert message.startswith(f"{path}:{line}: ") and said in message, message
    assert "\n" not in message and f"or write {tmp_path / 'apptainer.def'}" in message


@pytest.mark.parametrize(
    ("instruction", "said"),
    [
        ("EXPOSE 8080", "EXPOSE ignored: ports are not part of an Apptainer image"),
        ("HEALTHCHECK CMD curl -f http://localhost/", "HEALTHCHECK ignored: Apptainer has no health checks"),
        ("STOPSIGNAL SIGTERM", "STOPSIGNAL ignored"),
        ("VOLUME /data", "VOLUME ignored"),
        ("ONBUILD RUN make", "ONBUILD ignored: it acts only on images built FROM this one"),
    ],
)
def test_run_time_only_instruction_is_dropped_with_a_warning(tmp_path: Path, instruction: str, said: str) -> None:
    path = dockerfile(tmp_path, BASE + "RUN echo built > /built\n" + instruction + "\n")
    text, warnings = convert(path)
    assert len(warnings) == 1 and warnings[0].startswith(f"{path}:3: {said}"), warnings
    assert sections(text)["%post"] == ["echo built > /built"] and "%test" not in text, "none of it is built"


def test_copy_after_run_warns_that_files_come_first(tmp_path: Path) -> None:
    path = dockerfile(tmp_path, BASE + "RUN mkdir /opt/x\nCOPY greeting.txt /opt/x/\n")
    text, warnings = convert(path)
    assert "greeting.txt /opt/x/greeting.txt" in sections(text)["%files"]
    assert len(warnings) == 1 and warnings[0].startswith(f"{path}:3: COPY after RUN: Apptainer copies files before")


def test_arg_after_from_is_an_exported_variable_with_its_default(tmp_path: Path) -> None:
    text, _ = convert(dockerfile(tmp_path, BASE + "ARG RELEASE=2611\nARG UNSET\nRUN echo $RELEASE > /release\n"))
    assert sections(text)["%post"] == ["export RELEASE=2611", "echo $RELEASE > /release"]


def test_no_from_and_other_escape_character_are_refused(tmp_path: Path) -> None:
    with pytest.raises(B2BoxError, match=r"Dockerfile: no FROM line"):
        convert(dockerfile(tmp_path, "# nothing\n"))
    with pytest.raises(B2BoxError, match=r"Dockerfile:1: '# escape=`' is not translated"):
        convert(dockerfile(tmp_path, "# escape=`\n" + BASE))


def test_hand_written_apptainer_def_is_built_as_it_is(tmp_path: Path) -> None:
    from b2box.env.apptainer_build import definition_text
    from b2box.env.build import definitions

    folder = tmp_path / "images" / "mine"
    folder.mkdir(parents=True)
    written = "Bootstrap: docker\nFrom: debian:bookworm\n\n%post\n    useradd analyst\n"
    (folder / "apptainer.def").write_text(written)
    (found,) = definitions(tmp_path, ["mine"])  # a folder with a definition and no Dockerfile is an environment
    said: list[str] = []
    assert definition_text(found, said.append) == (written, str(folder / "apptainer.def")) and said == []


def test_generated_definition_says_where_it_came_from_and_how_to_edit_it(tmp_path: Path) -> None:
    from b2box.env.apptainer_build import definition_text
    from b2box.env.build import Definition

    dockerfile(tmp_path, BASE + "EXPOSE 80\nCOPY greeting.txt /g\n")
    said: list[str] = []
    text, source = definition_text(Definition("tiny", tmp_path), said.append)
    assert source == str(tmp_path / "Dockerfile") and said == [
        f"warning: {tmp_path / 'Dockerfile'}:2: EXPOSE ignored: ports are not part of an Apptainer image"
    ]
    assert text.startswith(
        f"# Made by b2box from {tmp_path / 'Dockerfile'} with spython. To change it, copy it to "
        f"{tmp_path / 'apptainer.def'}"
    )
    assert "greeting.txt /g" in text
