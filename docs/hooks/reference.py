"""Generated reference pages for the docs site: an MkDocs hook (mkdocs.yml, `hooks:`).

At every build it writes, into the site only (never into the repository):

- reference/cli.md      every `wt` command and option, from the Typer app itself
- reference/http.md     every HTTP route, from the FastAPI app's OpenAPI schema
- reference/openapi.json  that schema as a file

The CLI is found through the `wt` console-script entry point, not a module path, so the
pages follow the code wherever its modules move. tests/test_docs.py uses the same functions
to check that the hand-written pages mention every command, option and route.
"""

from __future__ import annotations

import inspect
import json
import sys
import tempfile
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

# ---- the command line ----------------------------------------------------------------------


def cli_command() -> Any:
    """The root click command of `wt`, through its console-script entry point."""
    import typer

    (ep,) = entry_points(group="console_scripts", name="wt")
    loaded = ep.load()
    if isinstance(loaded, typer.Typer):
        return typer.main.get_command(loaded)
    module = sys.modules[loaded.__module__]
    apps = [v for v in vars(module).values() if isinstance(v, typer.Typer)]
    named = [a for a in apps if a.info.name == "wt"] or [getattr(module, "app", None)]
    if not named or named[0] is None:
        raise RuntimeError(f"no Typer app named 'wt' in {module.__name__}")
    return typer.main.get_command(named[0])


def walk_commands(command: Any = None) -> Iterator[tuple[list[str], Any, Any]]:
    """(path, command, context) for `wt` and every command below it, depth first.

    path is ["wt"], ["wt", "transcribe"], ["wt", "voices", "add"], ...
    """
    command = command or cli_command()

    def walk(cmd: Any, path: list[str], parent: Any) -> Iterator[tuple[list[str], Any, Any]]:
        ctx = cmd.context_class(cmd, info_name=path[-1], parent=parent)
        yield path, cmd, ctx
        if hasattr(cmd, "list_commands"):  # a group (duck-typed: Typer may vendor click)
            for name in cmd.list_commands(ctx):
                sub = cmd.get_command(ctx, name)
                if sub is not None and not getattr(sub, "hidden", False):
                    yield from walk(sub, [*path, name], ctx)

    yield from walk(command, ["wt"], None)


def options_of(command: Any) -> list[Any]:
    return [
        p
        for p in command.params
        if getattr(p, "param_type_name", "") == "option" and not getattr(p, "hidden", False)
    ]


def long_flags(command: Any) -> list[str]:
    """Every --flag of a command, --no-flag forms included (not --help, which all have)."""
    flags: list[str] = []
    for p in options_of(command):
        flags += [o for o in [*p.opts, *p.secondary_opts] if o.startswith("--")]
    return flags


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ").replace("<", "&lt;").strip()


def _usage(path: list[str], command: Any) -> str:
    pieces = [" ".join(path)]
    if options_of(command):
        pieces.append("[OPTIONS]")
    for p in command.params:
        if getattr(p, "param_type_name", "") != "argument":
            continue
        name = p.name.upper() + ("..." if p.nargs == -1 else "")
        pieces.append(name if p.required else f"[{name}]")
    if hasattr(command, "list_commands"):
        pieces.append("COMMAND [ARGS]...")
    return " ".join(pieces)


def cli_markdown() -> str:
    lines = [
        "# Command-line reference",
        "",
        "Generated from the `wt` program at every build of this site: every command and every",
        "option, with its help text and default. Every command also takes `-h, --help`. The",
        "pages in the guide say what the options do together; this page is the complete list.",
        "",
    ]
    for path, command, ctx in walk_commands():
        lines += [f"## {' '.join(path)}", ""]
        help_text = inspect.cleandoc(command.help or "")
        if help_text:
            lines += [help_text, ""]
        lines += ["```", _usage(path, command), "```", ""]
        arguments = [p for p in command.params if getattr(p, "param_type_name", "") == "argument"]
        if arguments:
            lines += ["| argument | meaning |", "|---|---|"]
            for p in arguments:
                record = p.get_help_record(ctx)
                meaning = record[1] if record else ""
                lines.append(f"| `{p.name.upper()}` | {_cell(meaning)} |")
            lines.append("")
        options = options_of(command)
        if options:
            lines += ["| option | meaning |", "|---|---|"]
            for p in options:
                record = p.get_help_record(ctx)
                if not record:
                    continue
                names, meaning = record
                lines.append(f"| `{names}` | {_cell(meaning)} |")
            lines.append("")
        if hasattr(command, "list_commands"):
            subs = ", ".join(f"`{' '.join(path)} {n}`" for n in command.list_commands(ctx))
            lines += [f"Commands: {subs}.", ""]
    return "\n".join(lines)


# ---- HTTP ------------------------------------------------------------------------------------

# Routes FastAPI adds by itself; the OAuth2 redirect of the interactive docs is no API.
FASTAPI_OWN = {("GET", "/docs/oauth2-redirect")}
FASTAPI_PAGES = {
    ("GET", "/openapi.json"): "This schema (the file offered above).",
    ("GET", "/docs"): "Interactive pages of the API (Swagger UI).",
    ("GET", "/redoc"): "The API's pages (ReDoc).",
}


def http_app() -> Any:
    """The app `wt serve` runs. Building it and its schema touches no spool: the folder named
    here is never created."""
    from whisper_cli.http import app as http

    spool = Path(tempfile.gettempdir()) / "wt-docs-reference-no-spool"
    return http.create_app(http.ServeConfig(spool=spool))


def schema_routes(schema: dict) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, operations in schema["paths"].items()
        for method in operations
        if method in {"get", "post", "put", "patch", "delete"}
    }


def served_routes(app: Any) -> set[tuple[str, str]]:
    """Every (METHOD, path) the app answers, in its schema or not (e.g. /metrics)."""
    found: set[tuple[str, str]] = set()

    def walk(routes: list, prefix: str) -> None:
        for route in routes:
            router = getattr(route, "original_router", None)  # FastAPI's included routers
            if router is not None:
                context = getattr(route, "include_context", None)
                walk(router.routes, prefix + (getattr(context, "prefix", "") or ""))
                continue
            methods = getattr(route, "methods", None) or set()
            for method in methods - {"HEAD", "OPTIONS"}:
                found.add((method, prefix + route.path))

    walk(app.routes, "")
    return found - FASTAPI_OWN


def _schema_type(schema: dict) -> str:
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if "anyOf" in schema:
        return " or ".join(_schema_type(s) for s in schema["anyOf"])
    kind = schema.get("type", "")
    if kind == "array":
        return f"array of {_schema_type(schema.get('items', {}))}"
    if schema.get("format") == "binary":
        return "file"
    if "enum" in schema:
        return " \\| ".join(f"`{v}`" for v in schema["enum"])
    return kind or "any"


def http_markdown(schema: dict, unlisted: set[tuple[str, str]], endpoints: dict) -> str:
    info = schema["info"]
    lines = [
        "# HTTP reference",
        "",
        f"Generated from the app `wt serve` runs (`create_app().openapi()`, {info['title']}"
        f" {info['version']}) at every build of this site. The schema itself:",
        "[openapi.json](openapi.json); a running server also serves it at `/openapi.json`, with",
        "interactive pages at `/docs` and `/redoc`. [HTTP](../http.md) says how the routes",
        "are used.",
        "",
    ]
    order = {"get": 0, "post": 1, "put": 2, "patch": 3, "delete": 4}
    for path, operations in schema["paths"].items():
        for method in sorted(operations, key=lambda m: order.get(m, 9)):
            op = operations[method]
            lines += [f"## {method.upper()} {path}", ""]
            tags = ", ".join(op.get("tags", []))
            lines += [f"*{op.get('summary', '')}*" + (f" ({tags})" if tags else ""), ""]
            if op.get("description"):
                lines += [op["description"], ""]
            params = op.get("parameters", [])
            if params:
                lines += ["| parameter | in | type | required | default | meaning |"]
                lines += ["|---|---|---|---|---|---|"]
                for p in params:
                    s = p.get("schema", {})
                    default = json.dumps(s["default"]) if "default" in s else ""
                    lines.append(
                        f"| `{p['name']}` | {p['in']} | {_cell(_schema_type(s))} | "
                        f"{'yes' if p.get('required') else 'no'} | {_cell(default)} | "
                        f"{_cell(p.get('description', s.get('description', '')))} |"
                    )
                lines.append("")
            body = op.get("requestBody", {}).get("content", {})
            for media, content in body.items():
                s = content.get("schema", {})
                if "$ref" in s:
                    s = schema["components"]["schemas"][s["$ref"].rsplit("/", 1)[-1]]
                props = s.get("properties", {})
                required = set(s.get("required", []))
                lines += [f"Body: `{media}`", ""]
                if props:
                    lines += ["| field | type | required | default | meaning |"]
                    lines += ["|---|---|---|---|---|"]
                    for name, f in props.items():
                        default = json.dumps(f["default"]) if "default" in f else ""
                        lines.append(
                            f"| `{name}` | {_cell(_schema_type(f))} | "
                            f"{'yes' if name in required else 'no'} | {_cell(default)} | "
                            f"{_cell(f.get('description', ''))} |"
                        )
                    lines.append("")
            responses = op.get("responses", {})
            if responses:
                codes = ", ".join(
                    f"`{code}` {r.get('description', '')}" for code, r in responses.items()
                )
                lines += [f"Responses: {codes}.", ""]
    if unlisted:
        lines += [
            "## Routes outside the schema",
            "",
            "Served by the same app, left out of the OpenAPI schema:",
            "",
            "| route | meaning |",
            "|---|---|",
        ]
        for method, path in sorted(unlisted, key=lambda r: (r[1], r[0])):
            doc = FASTAPI_PAGES.get((method, path)) or inspect.getdoc(endpoints.get((method, path)))
            doc = doc or ""
            lines.append(f"| `{method} {path}` | {_cell(doc.split(chr(10) + chr(10))[0])} |")
        lines.append("")
    return "\n".join(lines)


def _endpoints(app: Any) -> dict:
    found: dict = {}

    def walk(routes: list) -> None:
        for route in routes:
            router = getattr(route, "original_router", None)
            if router is not None:
                walk(router.routes)
                continue
            for method in getattr(route, "methods", None) or ():
                found[(method, getattr(route, "path", ""))] = getattr(route, "endpoint", None)

    walk(app.routes)
    return found


def http_pages() -> tuple[str, str]:
    """(markdown, openapi.json text) of the HTTP reference."""
    app = http_app()
    schema = app.openapi()
    unlisted = served_routes(app) - schema_routes(schema)
    markdown = http_markdown(schema, unlisted, _endpoints(app))
    return markdown, json.dumps(schema, indent=2) + "\n"


# ---- the MkDocs hook ---------------------------------------------------------------------


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    http_md, openapi = http_pages()
    for uri, content in (
        ("reference/cli.md", cli_markdown()),
        ("reference/http.md", http_md),
        ("reference/openapi.json", openapi),
    ):
        files.append(File.generated(config, uri, content=content))
    return files
