"""JSON files: one key per line, long mappings written a slice at a time, and never half a file."""

from __future__ import annotations

import json
import os

import pytest

from b2box import jsonio


def test_an_object_has_a_key_per_line_and_reads_back_as_json_would_write_it() -> None:
    data = {"task": "Number_3", "identity": {"code": "ab", "inputs": []}, "usage": None, "count": 3}
    text = jsonio.dumps(data)
    assert json.loads(text) == data
    assert text.splitlines() == [
        "{",
        '  "count": 3,',
        '  "identity": {"code": "ab", "inputs": []},',
        '  "task": "Number_3",',
        '  "usage": null',
        "}",
    ]
    assert jsonio.dumps([1, "a"]) == '[1, "a"]\n'
    assert jsonio.dumps({}) == "{}\n"


def test_a_long_mapping_written_in_slices_is_the_mapping_encoded_whole() -> None:
    index = {f"index={number}/number.txt": {"digest": f"{number:08x}"} for number in range(2 * jsonio._SLICE + 7)}
    data = {"entries": index, "version": 2, "small": {"a": 1}}
    pieces = list(jsonio._pieces(data))
    assert len(pieces) > 4  # (written in pieces, not as one text)
    text = "".join(pieces)
    assert json.loads(text) == data
    assert '  "entries": ' + json.dumps(index, sort_keys=True) in text


def test_a_failed_write_leaves_the_old_file_and_no_temporary_one(tmp_path: os.PathLike[str]) -> None:
    path = os.path.join(tmp_path, "record.json")
    jsonio.write_json(path, {"kept": True})
    with pytest.raises(TypeError):
        jsonio.write_json(path, {"kept": object()})
    assert jsonio.read_json(path) == {"kept": True}
    assert os.listdir(tmp_path) == ["record.json"]


def test_columns_are_more_keys_made_of_lines(tmp_path: os.PathLike[str]) -> None:
    path = os.path.join(tmp_path, "job.json")
    jsonio.write_json(path, {"a": 1}, columns={"lines": lambda: (f"line {n}" for n in range(3))})
    assert jsonio.read_json(path) == {"a": 1, "lines": "line 0\nline 1\nline 2"}
    assert jsonio.read_json(os.path.join(tmp_path, "missing.json")) is None
