"""Writes the man pages goferd(1) and gofer(1) from the argparse parsers, so they cannot drift.

::

    python -m tools.manpage man            # (re)write man/goferd.1 and man/gofer.1
    python -m tools.manpage --check man    # exit 1 when they differ from the parsers

Synopsis, options and commands come from the parsers themselves
(:func:`gofer.cli.goferd.parser`, :func:`gofer.cli.main.build_parser`); exit
statuses, environment variables and files from the constants the commands
use. The prose around them (signals, what each exit status means) is here.
The pages are committed under ``man/`` and packaged as they are;
``tests/packaging/test_manpages.py`` fails when regenerating would change them.

The output depends on nothing but the code: no date, no terminal width
(argparse's own formatter wraps at ``$COLUMNS``, so it is not used).
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from gofer import __version__
from gofer.agent.paths import ROOT_VARIABLE, Paths
from gofer.cli import goferd, mgt, rmi
from gofer.cli.main import build_parser
from gofer.messaging.adapter.registry import DEFAULT_ENV

#: The comment every page opens with.
GENERATED = (
    '.\\" Generated from the argparse parsers by tools/manpage.py; do not edit.\n'
    '.\\" Regenerate with: python -m tools.manpage man\n'
)

_DASHES = re.compile(r"(?<![\w-])-+(?=\w)")
#: ``examples:``, ``exit status:``, ``durations (-w, -x):``: a short lower-case label.
_HEADING = re.compile(r"^([a-z][a-z ]{0,30}(?: \([^)\n]*\))?):(?:\s+|$)")


def escape(text: str) -> str:
    """Text with roff's escape character made literal."""
    return text.replace("\\", "\\e")


def prose(text: str) -> str:
    """Running text: escaped, with the dashes of options (``-w``, ``--url``) as minus signs.

    Hyphens inside words (``fire-and-forget``) stay hyphens.
    """
    return _DASHES.sub(lambda match: "\\-" * len(match.group()), escape(text))


def literal(text: str) -> str:
    """Text to be typed as it is (options, commands): every ``-`` is a minus sign."""
    return escape(text).replace("-", "\\-")


def bold(text: str) -> str:
    return f"\\fB{literal(text)}\\fR"


def italic(text: str) -> str:
    return f"\\fI{literal(text)}\\fR"


def lines(text: str) -> list[str]:
    """Text lines, each safe from being read as a request (a leading ``.`` or ``'``)."""
    return [f"\\&{line}" if line.startswith((".", "'")) else line for line in text.split("\n")]


def quoted(text: str) -> str:
    """A macro argument (``.SS "gofer rmi"``)."""
    return '"' + escape(text).replace('"', "\\(dq") + '"'


@dataclasses.dataclass(frozen=True)
class Entry:
    """One item of a tagged list: its tag (roff already) and its text (plain)."""

    tag: str
    text: str


@dataclasses.dataclass(frozen=True)
class Section:
    """A section after the options and commands: a tagged list, or tagged lists by heading.

    Attributes:
        title: the section's title (``EXIT STATUS``).
        entries: a tagged list.
        parts: tagged lists under subheadings (``gofer rmi``, ``gofer mgt``).
    """

    title: str
    entries: Sequence[Entry] = ()
    parts: Sequence[tuple[str, Sequence[Entry]]] = ()


@dataclasses.dataclass(frozen=True)
class Page:
    """One man page: its parser, and what the parser does not say.

    Attributes:
        parser: the command's parser.
        summary: the NAME line's description.
        description: paragraphs after the parser's description.
        sections: the sections after the options and commands, in order.
        examples: commands for EXAMPLES, after those of the parsers' epilogs.
        epilogs: whether the parsers' epilogs go into the page (goferd's
            epilog only repeats its SIGNALS and EXIT STATUS sections).
        see_also: other pages, ``name(section)``.
    """

    parser: argparse.ArgumentParser
    summary: str
    description: Sequence[str] = ()
    sections: Sequence[Section] = ()
    examples: Sequence[str] = ()
    epilogs: bool = True
    see_also: Sequence[str] = ()

    @property
    def name(self) -> str:
        return self.parser.prog


def subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, str, argparse.ArgumentParser]]:
    """``(name, help, parser)`` of each subcommand, in the order they were added."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            for name, sub in action.choices.items():
                found.append((name, helps.get(name, ""), sub))
    return found


def _documented(actions: Iterable[argparse.Action]) -> list[argparse.Action]:
    return [
        action
        for action in actions
        if action.help != argparse.SUPPRESS and not isinstance(action, argparse._SubParsersAction)
    ]


def _metavar(action: argparse.Action) -> str:
    """The value's name: ``URL``, ``CLASS.METHOD``, or the choices as ``a|b|c`` (roff)."""
    if action.metavar is not None:
        metavar = action.metavar
        return (
            " ".join(italic(m) for m in metavar) if isinstance(metavar, tuple) else italic(metavar)
        )
    if action.choices is not None:
        return "|".join(bold(str(choice)) for choice in action.choices)
    return italic(action.dest if not action.option_strings else action.dest.upper())


def _value(action: argparse.Action) -> str:
    """What follows an option (roff), by its ``nargs``; empty for a flag."""
    metavar = _metavar(action)
    nargs = action.nargs
    if nargs == 0:
        return ""
    if nargs == "?":
        return f"[{metavar}]"
    if nargs == "*":
        return f"[{metavar} ...]"
    if nargs == "+":
        return f"{metavar} [{metavar} ...]"
    if isinstance(nargs, int):
        return " ".join([metavar] * nargs)
    return metavar


def _usage_item(action: argparse.Action) -> str:
    """One item of the synopsis, without brackets."""
    value = _value(action)
    if not action.option_strings:
        return value
    # An unbreakable space keeps an option and its value on one line.
    return bold(action.option_strings[0]) + (f"\\ {value}" if value else "")


def synopsis(parser: argparse.ArgumentParser) -> str:
    """The synopsis line of a parser (roff): optional items in brackets, choices in parentheses."""
    groups = {
        id(action): group
        for group in parser._mutually_exclusive_groups
        for action in group._group_actions
    }
    items: list[str] = []
    seen: set[int] = set()
    # Options first, then positional arguments, as argparse's usage has them.
    ordered = [a for a in parser._actions if a.option_strings]
    ordered += [a for a in parser._actions if not a.option_strings]
    for action in ordered:
        if action.help == argparse.SUPPRESS or id(action) in seen:
            continue
        if isinstance(action, argparse._SubParsersAction):
            name = action.metavar if isinstance(action.metavar, str) else "COMMAND"
            items.append(f"{italic(name)} ...")
            continue
        group = groups.get(id(action))
        if group is not None:
            members = [a for a in group._group_actions if a.help != argparse.SUPPRESS]
            seen.update(id(a) for a in members)
            inner = " | ".join(_usage_item(a) for a in members)
            items.append(f"({inner})" if group.required else f"[{inner}]")
            continue
        item = _usage_item(action)
        optional = action.option_strings and not action.required
        items.append(f"[{item}]" if optional else item)
    return f"{bold(parser.prog)} " + " ".join(items)


def _help(action: argparse.Action, prog: str) -> str:
    """The action's help with argparse's ``%(name)s`` fields filled in, as argparse does."""
    text = action.help or ""
    params = {key: value for key, value in vars(action).items() if value is not argparse.SUPPRESS}
    params["prog"] = prog
    if params.get("choices") is not None:
        params["choices"] = ", ".join(str(choice) for choice in params["choices"])
    return text % params


def option_entries(parser: argparse.ArgumentParser) -> list[tuple[str, list[Entry]]]:
    """The options of a parser by argument group: ``(group title, entries)``.

    The title is empty for argparse's own groups (positional arguments and
    options), which come first.
    """
    own = (parser._positionals, parser._optionals)
    grouped = [group for group in parser._action_groups if group in own]
    grouped += [group for group in parser._action_groups if group not in own]
    found: list[tuple[str, list[Entry]]] = []
    for group in grouped:
        entries = []
        for action in _documented(group._group_actions):
            if action.option_strings:
                value = _value(action)
                tag = ", ".join(bold(option) for option in action.option_strings)
                tag += f" {value}" if value else ""
            else:
                tag = _metavar(action) + (" ..." if action.nargs in ("*", "+") else "")
            entries.append(Entry(tag, _help(action, parser.prog)))
        if entries:
            title = "" if group in own else (group.title or "")
            if found and not title:
                found[0][1].extend(entries)
            else:
                found.append((title, entries))
    return found


@dataclasses.dataclass(frozen=True)
class Epilog:
    """An epilog split into what goes where: notes for the command, and examples."""

    notes: list[tuple[str, str]]
    examples: list[str]


def split_epilog(text: str | None) -> Epilog:
    """Split an epilog into headed blocks; drop its exit statuses (EXIT STATUS has them).

    A block is a run of lines between blank lines; ``heading: text`` or a
    ``heading:`` line over indented text names it. Examples keep their lines;
    other blocks become paragraphs.
    """
    notes: list[tuple[str, str]] = []
    examples: list[str] = []
    for block in re.split(r"\n\s*\n", (text or "").strip()):
        if not block.strip():
            continue
        match = _HEADING.match(block)
        heading = match.group(1) if match else ""
        body = block[match.end() :] if match else block
        if heading.lower() == "exit status":
            continue
        if heading.lower() == "examples":
            examples.extend(line.strip() for line in body.splitlines() if line.strip())
            continue
        notes.append((heading, " ".join(body.split())))
    return Epilog(notes, examples)


def _capitalized(title: str) -> str:
    return title[:1].upper() + title[1:]


def _tagged(entries: Iterable[Entry]) -> list[str]:
    out = []
    for entry in entries:
        out += [".TP", entry.tag, *lines(prose(entry.text))]
    return out


def _options(parser: argparse.ArgumentParser, subheading: bool) -> list[str]:
    """Tagged lists of a parser's options; its own groups under subheadings or italic lines."""
    out: list[str] = []
    for title, entries in option_entries(parser):
        if title and subheading:
            out.append(f".SS {quoted(_capitalized(title))}")
        elif title:
            out += [".PP", f"\\fI{prose(_capitalized(title))}:\\fR"]
        out += _tagged(entries)
    return out


def _notes(notes: Iterable[tuple[str, str]]) -> list[str]:
    out: list[str] = []
    for heading, text in notes:
        label = f"\\fB{prose(_capitalized(heading))}:\\fR " if heading else ""
        out += [".PP", *lines(label + prose(text))]
    return out


def _section(section: Section) -> list[str]:
    out = [f".SH {section.title}", *_tagged(section.entries)]
    for heading, entries in section.parts:
        out += [f".SS {quoted(heading)}", *_tagged(entries)]
    return out


def render(page: Page) -> str:
    """The page's roff source."""
    examples: list[str] = []
    out = _head(page) + _commands(page, examples)
    for section in page.sections:
        out += _section(section)
    out += _examples([*examples, *page.examples]) + _see_also(page.see_also)
    return GENERATED + "\n".join(out) + "\n"


def _head(page: Page) -> list[str]:
    """From the title to the top-level options."""
    parser = page.parser
    out = [
        f'.TH {page.name.upper()} 1 "" {quoted(f"gofer {__version__}")} "User Commands"',
        # Left-aligned, unhyphenated: options and paths are to be read as typed.
        ".nh",
        ".ad l",
        ".SH NAME",
        f"{literal(page.name)} \\- {prose(page.summary)}",
        ".SH SYNOPSIS",
        *lines(synopsis(parser)),
    ]
    for _, _, sub in subcommands(parser):
        out += [".PP", *lines(synopsis(sub))]
    out += [".SH DESCRIPTION", *lines(prose(parser.description or ""))]
    for paragraph in page.description:
        out += [".PP", *lines(prose(paragraph))]
    return [*out, ".SH OPTIONS", *_options(parser, subheading=True)]


def _commands(page: Page, examples: list[str]) -> list[str]:
    """The top-level epilog's notes and the COMMANDS section; epilog examples go to ``examples``."""
    epilog = split_epilog(page.parser.epilog if page.epilogs else None)
    out = _notes(epilog.notes)
    examples += epilog.examples
    commands = subcommands(page.parser)
    if commands:
        out.append(".SH COMMANDS")
    for _, summary, sub in commands:
        epilog = split_epilog(sub.epilog if page.epilogs else None)
        out += [f".SS {quoted(sub.prog)}", *lines(prose(sub.description or summary))]
        out += _options(sub, subheading=False) + _notes(epilog.notes)
        examples += epilog.examples
    return out


def _examples(commands: Sequence[str]) -> list[str]:
    if not commands:
        return []
    text = "\n".join(literal(command) for command in commands)
    return [".SH EXAMPLES", ".RS 4", ".nf", *lines(text), ".fi", ".RE"]


def _see_also(pages: Sequence[str]) -> list[str]:
    """``gofer(1)`` as a reference: the name in bold, the section as it is."""
    references = []
    for reference in pages:
        name, _, number = reference.partition("(")
        references.append(f"\\fB{literal(name)}\\fR({number}")
    return [".SH SEE ALSO", ", ".join(references)] if references else []


def _statuses(values: Mapping[str, int], meanings: Mapping[str, str], where: str) -> list[Entry]:
    """Exit statuses as entries, in numeric order.

    Raises:
        ValueError: a status has no meaning here, or a meaning no status: a
            new exit status must be described before the page can be made.
    """
    if set(values) != set(meanings):
        odd = sorted(set(values) ^ set(meanings))
        raise ValueError(f"the exit statuses of {where} and their meanings here differ: {odd}")
    ordered = sorted(values, key=lambda name: values[name])
    return [Entry(bold(str(values[name])), meanings[name]) for name in ordered]


def _constants(module: object, prefix: str) -> dict[str, int]:
    """The module's integer constants whose names start with ``prefix``."""
    return {
        name: value
        for name, value in vars(module).items()
        if name.startswith(prefix) and isinstance(value, int)
    }


def goferd_page() -> Page:
    """goferd(1)."""
    paths = Paths.under("/")
    statuses = {
        name: getattr(goferd, name) for name in ("OK", "FAILED", "USAGE", "TEMPFAIL", "CONFIG")
    }
    meanings = {
        "OK": "goferd was asked to stop (SIGTERM or SIGINT) and stopped.",
        "FAILED": "goferd could not start, e.g. another goferd runs with the same root; "
        "the reason is logged.",
        "USAGE": "usage error on the command line.",
        "TEMPFAIL": "the request journal could not be written (disk full, read-only file "
        "system); goferd stopped taking requests and exited so that systemd restarts it. The "
        "messages it had not acknowledged are still on the broker (EX_TEMPFAIL of sysexits.h).",
        "CONFIG": "the configuration (agent.conf or a drop-in file) is not valid; the "
        "message names the file, section and key (EX_CONFIG of sysexits.h). Also when "
        f"{paths.run} or the journal directory belongs to another user or others may "
        "write to it, or the journal was written by a later gofer. goferd.service does "
        "not restart goferd after this status.",
    }
    modules = ", ".join(str(directory) for directory in paths.plugin_dirs)
    return Page(
        parser=goferd.parser(),
        summary="the gofer agent: serves the remote methods of its plugins over AMQP",
        description=(
            f"goferd reads {paths.config}, then every {paths.config_dir}/*.conf in sorted "
            "order, and loads the plugins whose descriptors (*.conf, *.ini or *.json) in "
            f"{paths.descriptors} are enabled. A plugin's module is named by the [main] "
            f"plugin key of its descriptor, or else found by the plugin's name in {modules}.",
            "Each plugin takes requests from its own queue on its broker. A request is "
            f"written to the journal, {paths.journal}, before the broker's message is "
            "acknowledged, and removed once its final reply is sent. After a crash, the "
            "requests that had not started are run; those that were running are answered as "
            "interrupted and not run again.",
            "goferd tells systemd when it is ready (Type=notify), and logs to the journal "
            "when systemd runs it. It is meant to be run by goferd.service: systemctl enable "
            "--now goferd.",
        ),
        sections=(
            Section(
                "SIGNALS",
                [
                    Entry(
                        f"{bold('SIGTERM')}, {bold('SIGINT')}",
                        "stop taking requests, give the running ones up to [main] "
                        "drain_timeout seconds to finish, then exit. A request still "
                        "running then is answered as interrupted at the next start.",
                    ),
                    Entry(bold("SIGHUP"), "reload the plugins (systemctl reload goferd)."),
                ],
            ),
            Section("EXIT STATUS", _statuses(statuses, meanings, "goferd")),
            Section(
                "ENVIRONMENT",
                [
                    Entry(
                        bold(ROOT_VARIABLE),
                        "the root every path of goferd lies below, when --root is not "
                        "given (default /): a goferd of one's own, for tests or containers.",
                    ),
                    Entry(
                        bold(DEFAULT_ENV),
                        "the messaging adapter for broker URLs that name none (default amqp).",
                    ),
                    Entry(
                        bold("NOTIFY_SOCKET"),
                        "set by systemd: where goferd reports that it is ready, reloading "
                        "or stopping.",
                    ),
                ],
            ),
            Section(
                "FILES",
                [
                    Entry(italic(str(paths.config)), "goferd's configuration."),
                    Entry(
                        italic(f"{paths.config_dir}/*.conf"),
                        "drop-in files read after it, in sorted order; a key set in a "
                        "later file wins.",
                    ),
                    Entry(italic(f"{paths.descriptors}/"), "the plugin descriptors."),
                    Entry(
                        italic(f"{paths.plugin_dirs[0]}/"),
                        "plugin modules, for descriptors that name no module; then "
                        + ", ".join(f"{directory}/" for directory in paths.plugin_dirs[1:])
                        + ", in that order.",
                    ),
                    Entry(italic(str(paths.journal)), "requests accepted and not yet answered."),
                    Entry(italic(str(paths.pidfile)), "goferd's process id; one goferd per root."),
                    Entry(italic(str(paths.socket)), "the socket of gofer mgt (root only)."),
                    Entry(
                        italic("/etc/sysconfig/goferd"),
                        "the environment of goferd.service: GOFERD_OPTIONS (options added "
                        "to goferd's command line), PYTHONOPTIMIZE.",
                    ),
                    Entry(italic("/usr/lib/systemd/system/goferd.service"), "the systemd unit."),
                ],
            ),
        ),
        epilogs=False,
        see_also=("gofer(1)", "systemctl(1)", "journalctl(1)", "systemd.service(5)"),
    )


def gofer_page() -> Page:
    """gofer(1)."""
    paths = Paths.under("/")
    rmi_meanings = {
        "EXIT_OK": "success; the result (or the serial number) is on standard output.",
        "EXIT_REMOTE": "the remote method raised an exception, or the call was not "
        "authorized, or it names no such class or method.",
        "EXIT_USAGE": "usage error.",
        "EXIT_TIMEOUT": "no reply within the wait; the serial number is printed, and a "
        "late reply carries it.",
        "EXIT_REJECTED": "the agent rejected the request; its code and description are printed.",
        "EXIT_MESSAGING": "broker or messaging error (unreachable broker, missing queue, ...).",
        "EXIT_SOME_FAILED": "several agents were called and not every one succeeded.",
        "EXIT_INTERRUPTED": "interrupted (Ctrl-C); the request may still run.",
    }
    mgt_meanings = {
        "EXIT_OK": "success.",
        "EXIT_FAILED": "goferd refused the command, or could not be reached.",
        "EXIT_USAGE": "usage error.",
    }
    return Page(
        parser=build_parser(),
        summary="call goferd agents (gofer rmi) and manage the local goferd (gofer mgt)",
        sections=(
            Section(
                "EXIT STATUS",
                parts=(
                    ("gofer rmi", _statuses(_constants(rmi, "EXIT_"), rmi_meanings, "gofer rmi")),
                    ("gofer mgt", _statuses(_constants(mgt, "EXIT_"), mgt_meanings, "gofer mgt")),
                ),
            ),
            Section(
                "ENVIRONMENT",
                [
                    Entry(
                        bold(rmi.PASSWORD_ENV),
                        "gofer rmi: the PAM password, instead of --password (which other "
                        "users can read in the process list).",
                    ),
                    Entry(
                        bold(DEFAULT_ENV),
                        "gofer rmi: the messaging adapter for broker URLs that name none "
                        "(default amqp).",
                    ),
                    Entry(
                        bold(ROOT_VARIABLE),
                        "gofer mgt: the root of the goferd to manage; its socket is then "
                        f"${ROOT_VARIABLE}{paths.socket}.",
                    ),
                ],
            ),
            Section(
                "FILES",
                [Entry(italic(str(paths.socket)), "goferd's management socket (root only).")],
            ),
        ),
        examples=("gofer mgt -s", "gofer mgt -r demo"),
        see_also=("goferd(1)",),
    )


#: The pages by file name.
PAGES = {"goferd.1": goferd_page, "gofer.1": gofer_page}


def main(argv: Sequence[str] | None = None) -> int:
    """Write the pages into a directory, or with ``--check`` compare them; the exit status."""
    cli = argparse.ArgumentParser(
        prog="python -m tools.manpage", description="Write gofer's man pages."
    )
    cli.add_argument("directory", type=Path, help="where the pages are (man)")
    cli.add_argument(
        "--check", action="store_true", help="only compare: exit 1 when a page is out of date"
    )
    args = cli.parse_args(argv)
    stale = []
    for filename, make in PAGES.items():
        path = args.directory / filename
        text = render(make())
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        stale.append(str(path))
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    if args.check and stale:
        print(
            f"out of date: {', '.join(stale)}; run: python -m tools.manpage man",
            file=sys.stderr,
        )
        return 1
    for path in stale:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
