"""Writes bash completion for ``gofer`` and ``goferd`` from their argument parsers (a build step).

::

    python3 tools/completion.py OUTDIR     # writes OUTDIR/gofer and OUTDIR/goferd

The RPM build runs it and installs the files in
``/usr/share/bash-completion/completions``; made from the parsers, the
completion knows every option the installed commands take: subcommands,
option names, the choices of options that have them, and file names where
an option takes a path.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gofer.cli import goferd
from gofer.cli.main import build_parser
from tools import manpage

#: Metavars naming a file or directory: the shell completes file names there.
PATH_METAVARS = frozenset({"PATH", "FILE", "DIR", "NAME|PATH"})


def _options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [
        action
        for action in parser._actions
        if action.option_strings
        and action.help != argparse.SUPPRESS
        and not isinstance(action, argparse._SubParsersAction)
    ]


def _value_cases(options: list[argparse.Action]) -> list[str]:
    """``case "$prev"`` branches for the options that take a value."""
    cases = []
    for action in options:
        if action.nargs == 0:
            continue
        names = "|".join(action.option_strings)
        if action.choices:
            words = " ".join(str(choice) for choice in action.choices)
            cases.append(
                f'            {names}) COMPREPLY=($(compgen -W "{words}" -- "$cur")); return ;;'
            )
        elif str(action.metavar or "") in PATH_METAVARS:
            cases.append(f'            {names}) COMPREPLY=($(compgen -f -- "$cur")); return ;;')
        else:
            cases.append(f"            {names}) return ;;  # a value of the user's")
    return cases


def _words(options: list[argparse.Action]) -> str:
    return " ".join(name for action in options for name in action.option_strings)


def _function(name: str, parser: argparse.ArgumentParser) -> str:
    """A bash completion function for one command (with its subcommands, if any)."""
    subcommands = {name: sub for name, _, sub in manpage.subcommands(parser)}
    top = _options(parser)
    lines = [
        f"# bash completion for {name}; generated from its argument parser by tools/completion.py",
        f"_{name}() {{",
        '    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}"',
        '    local command="" word',
    ]
    if subcommands:
        names = " ".join(subcommands)
        lines += [
            '    for word in "${COMP_WORDS[@]:1:COMP_CWORD-1}"; do',
            f'        case "$word" in {"|".join(subcommands)}) command=$word; break ;; esac',
            "    done",
            '    if [ -z "$command" ]; then',
            f'        COMPREPLY=($(compgen -W "{names} {_words(top)}" -- "$cur"))',
            "        return",
            "    fi",
            '    case "$command" in',
        ]
        for sub_name, sub in subcommands.items():
            options = _options(sub)
            lines += [f"    {sub_name})", '        case "$prev" in', *_value_cases(options)]
            lines += [
                "        esac",
                f'        COMPREPLY=($(compgen -W "{_words(options)}" -- "$cur"))',
                "        ;;",
            ]
        lines.append("    esac")
    else:
        lines += ['    case "$prev" in', *[c[4:] for c in _value_cases(top)], "    esac"]
        lines.append(f'    COMPREPLY=($(compgen -W "{_words(top)}" -- "$cur"))')
    lines += ["}", f"complete -F _{name} {name}", ""]
    return "\n".join(lines)


def write(directory: Path) -> list[Path]:
    """Write the completion files into ``directory``; the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, parser in (("gofer", build_parser()), ("goferd", goferd.parser())):
        path = directory / name
        path.write_text(_function(name, parser))
        written.append(path)
    return written


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: tools/completion.py OUTDIR", file=sys.stderr)
        return 2
    for path in write(Path(argv[0])):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
