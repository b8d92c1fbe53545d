"""docs/extending.md works as written: its files are written, its commands and Python blocks run
in order in an empty folder, and the messages it shows are the ones printed."""

import os
import re
import shlex
from pathlib import Path

from v2gsim.cli import main

DOC = Path(__file__).resolve().parents[1] / "docs" / "extending.md"
FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>\w*)(?P<info>[^\n]*)\n(?P<body>.*?)^(?P=indent)```$", re.M | re.S)


def blocks(text: str) -> list[tuple[str, dict, str]]:
    """(language, {key: value} of the info string, body) of every fenced block, in order."""
    out = []
    for m in FENCE.finditer(text):
        info = dict(kv.split("=", 1) for kv in m["info"].split() if "=" in kv)
        body = "".join(line[len(m["indent"]):] + "\n" for line in m["body"].splitlines())
        out.append((m["lang"], info, body))
    return out


def test_the_doc_has_what_the_suite_runs():
    kinds = [(lang, "file" in info) for lang, info, _ in blocks(DOC.read_text())]
    assert kinds.count(("python", True)) >= 2 and kinds.count(("yaml", True)) >= 2
    assert ("python", False) in kinds and ("bash", False) in kinds and ("text", False) in kinds


def test_extending_md_runs_as_written(plugin_dir, monkeypatch, capsys):
    monkeypatch.chdir(plugin_dir)
    namespace: dict = {}
    printed = ""
    for lang, info, body in blocks(DOC.read_text()):
        if "file" in info:
            (plugin_dir / info["file"]).write_text(body)
        elif lang == "python":
            exec(compile(body, f"{DOC.name} python block", "exec"), namespace)  # noqa: S102
        elif lang == "bash":
            for line in body.splitlines():
                command, _, comment = line.partition("#")
                if not command.strip():
                    continue
                expected = int(m[1]) if (m := re.search(r"exit (\d+)", comment)) else 0
                argv = shlex.split(command)
                assert argv[0] == "v2gsim", line
                code = main(argv[1:])
                out = capsys.readouterr()
                printed = out.out + out.err
                assert code == expected, f"{line!r} exited {code}:\n{printed}"
        elif lang == "text":  # what the command before printed (column padding aside)
            for expected_line in body.strip().splitlines():
                assert " ".join(expected_line.split()) in " ".join(printed.split()), f"not printed: {expected_line!r}\n---\n{printed}"
    assert not os.environ.get("V2GSIM_ALLOW_PLUGINS")
