"""The documentation names every command, option and HTTP route, and the README stays short.

The references of the docs site (command line, HTTP) are generated at build time by
docs/hooks/reference.py, so they list everything by construction. These tests read the
hand-written pages instead: a new command, option or route fails here until a guide says
what it does. They find the commands through the `wt` entry point and the routes through
the app `wt serve` runs, with the hook's own functions, so they follow the code wherever its
modules move. (`make test` also builds the site with `mkdocs build --strict`.)
"""

from __future__ import annotations

import importlib.util
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README_MAX_LINES = 250


def _load_reference():
    spec = importlib.util.spec_from_file_location(
        "wt_docs_reference", DOCS / "hooks" / "reference.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


reference = _load_reference()

# The hand-written page that documents each top-level command and its subcommands.
PAGE_OF = {
    "wt": "getting-started.md",  # `wt --version`
    "transcribe": "transcribe.md",
    "daemon": "daemon.md",
    "serve": "http.md",
    "submit": "companions.md",
    "status": "companions.md",
    "cancel": "companions.md",
    "wait": "companions.md",
    "result": "companions.md",
    "clean": "companions.md",
    "health": "companions.md",
    "models": "getting-started.md",
    "voices": "speakers.md",
}
HTTP_PAGE = "http.md"


def page(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def mentions(text: str, word: str) -> bool:
    """`word` as a whole token: --model is not found in --model-ttl, nor wt voices in wt voicesx."""
    return re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text) is not None


def mentions_route(text: str, method: str, path: str) -> bool:
    """`METHOD /path`, with any name for a path parameter: GET /jobs/{id} is GET /jobs/{job_id}."""
    pattern = "".join(
        r"\{[^}/\s]*\}" if part.startswith("{") else re.escape(part)
        for part in re.split(r"(\{[^}]*\})", path)
    )
    return re.search(rf"(?<![A-Z]){method}\s+{pattern}(?![\w/{{-])", text) is not None


COMMANDS = [(path, command) for path, command, _ in reference.walk_commands()]


def test_the_commands_are_found():
    # Not vacuous: the walk through the entry point sees the whole tree.
    names = {" ".join(path) for path, _ in COMMANDS}
    for expected in (
        "wt transcribe",
        "wt daemon",
        "wt serve",
        "wt voices add",
        "wt voices list",
        "wt voices remove",
        "wt models convert",
    ):
        assert expected in names
    transcribe = dict((" ".join(p), c) for p, c in COMMANDS)["wt transcribe"]
    flags = reference.long_flags(transcribe)
    assert {"--model", "--diarize", "--no-diarize", "--speaker"} <= set(flags)


@pytest.mark.parametrize("path,command", COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_every_command_and_option_is_in_its_page(path, command):
    top = path[1] if len(path) > 1 else "wt"
    assert top in PAGE_OF, (
        f"`{' '.join(path)}` is a new command: document it in a page of docs/ and add it to "
        "PAGE_OF in tests/test_docs.py"
    )
    name = PAGE_OF[top]
    text = page(name)
    if len(path) > 1:
        assert mentions(text, " ".join(path)), f"docs/{name} does not mention `{' '.join(path)}`"
    missing = [flag for flag in reference.long_flags(command) if not mentions(text, flag)]
    assert not missing, f"docs/{name} does not mention {' '.join(path)}'s {', '.join(missing)}"


def _routes():
    app = reference.http_app()
    schema = app.openapi()
    return reference.schema_routes(schema), reference.served_routes(app)


def test_every_http_route_is_documented():
    in_schema, served = _routes()
    # Not vacuous: the schema and the routes outside it are both seen.
    assert ("POST", "/jobs") in in_schema and ("POST", "/v1/audio/transcriptions") in in_schema
    assert ("GET", "/metrics") in served - in_schema
    text = page(HTTP_PAGE)
    missing = [
        f"{method} {path}"
        for method, path in sorted(in_schema | served, key=lambda r: (r[1], r[0]))
        if not mentions_route(text, method, path)
    ]
    assert not missing, f"docs/{HTTP_PAGE} does not mention the routes {', '.join(missing)}"


def test_the_generated_references_list_everything():
    cli = reference.cli_markdown()
    for path, _ in COMMANDS:
        assert f"## {' '.join(path)}\n" in cli
    http, openapi = reference.http_pages()
    in_schema, served = _routes()
    for method, path in in_schema | served:
        assert mentions_route(http, method, path), f"{method} {path}"
    assert '"openapi"' in openapi


def test_the_matchers_tell_tokens_apart():
    assert mentions("use `--model-ttl 60`", "--model-ttl")
    assert not mentions("use `--model-ttl 60`", "--model")
    assert not mentions("--no-vad", "--vad")
    assert mentions("`--vad / --no-vad`", "--vad")
    assert mentions_route("| `GET /jobs/{id}/result?format=txt` |", "GET", "/jobs/{job_id}/result")
    assert not mentions_route("`GET /jobs/{id}`", "GET", "/jobs")
    assert mentions_route("`GET /` a greeting", "GET", "/")
    assert not mentions_route("`GET /health`", "GET", "/")


def test_readme_is_a_short_front_page():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= README_MAX_LINES
    for must in ("make demo", "make test", ".ci/run", "mkdocs serve"):
        assert must in text
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        if not (ROOT / target.split("#", 1)[0]).exists():
            broken.append(target)
    assert not broken, f"README.md links to missing files: {broken}"


def _commands_in_code_blocks():
    """Every `wt ...` command line in the shell blocks of the docs and the READMEs."""
    files = [ROOT / "README.md", ROOT / "bench" / "README.md", *sorted(DOCS.glob("*.md"))]
    for file in files:
        text = file.read_text(encoding="utf-8")
        for block in re.findall(r"```(?:sh|bash)?\n(.*?)```", text, re.S):
            for line in block.splitlines():
                for part in re.split(r"&&|\|\||;|\||\$\(|\)", line.split(" #")[0]):
                    part = re.sub(r"^(sudo |\.venv/bin/|[A-Z_]+=\S+ )+", "", part.strip())
                    # Synopses ([--flag N], FILE...) are not command lines.
                    if part.startswith("wt ") and "[" not in part and "..." not in part:
                        yield file.relative_to(ROOT), part.split(" > ")[0].split(" &")[0]


def test_every_command_line_in_the_docs_parses():
    root = reference.cli_command()
    found, bad = 0, []
    for file, line in _commands_in_code_blocks():
        args = shlex.split(line)[1:]
        command, ctx, name = root, None, "wt"
        while hasattr(command, "list_commands") and args and not args[0].startswith("-"):
            group_ctx = command.context_class(command, info_name=name, parent=ctx)
            sub = command.get_command(group_ctx, args[0])
            if sub is None:
                break
            ctx, command, name, args = group_ctx, sub, args[0], args[1:]
        found += 1
        try:
            command.make_context(name, list(args), parent=ctx)
        except SystemExit:
            pass
        except Exception as exc:  # click's usage errors: no such option, a bad value, ...
            bad.append(f"{file}: {line!r}: {exc}")
    assert found >= 30  # not vacuous
    assert not bad, "\n".join(bad)
