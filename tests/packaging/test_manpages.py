"""man/goferd.1 and man/gofer.1: what tools/manpage.py makes of the parsers, and readable."""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

import pytest

from gofer.cli import rmi
from tests.packaging.conftest import REPO, ensure_command
from tools import manpage

PAGES = sorted(manpage.PAGES)


def rendered(path: Path) -> str:
    """The page as man shows it, in plain text; groff's warnings fail the test."""
    groff = ensure_command("groff", "groff-base")
    result = subprocess.run(
        [groff, "-man", "-ww", "-Tutf8", "-P-cbou", "-rLL=100n", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stderr == ""
    # Hyphens and minus signs as typed, whatever groff's local character map.
    return result.stdout.replace("\u2010", "-").replace("\u2212", "-")


def parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    return [parser, *(sub for _, _, sub in manpage.subcommands(parser))]


@pytest.mark.parametrize("filename", PAGES)
def test_committed_page_is_what_the_parsers_make(filename: str) -> None:
    committed = (REPO / "man" / filename).read_bytes()
    assert manpage.render(manpage.PAGES[filename]()).encode() == committed, (
        f"man/{filename} is out of date: python -m tools.manpage man"
    )


@pytest.mark.parametrize("filename", PAGES)
def test_page_reads_right(filename: str) -> None:
    page = manpage.PAGES[filename]()
    text = rendered(REPO / "man" / filename)
    sections = ["NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "EXIT STATUS"]
    sections += ["ENVIRONMENT", "FILES", "SEE ALSO"]
    lines = text.splitlines()
    assert [line for line in lines if line in sections] == sections
    assert f"{page.name} - {page.summary}" in " ".join(text.split())
    for parser in parsers(page.parser):
        assert parser.prog in text
        for action in parser._actions:
            for option in action.option_strings:
                assert option in text, f"{parser.prog} {option}"


def test_gofer_page_has_its_commands_and_examples() -> None:
    text = rendered(REPO / "man/gofer.1")
    lines = text.splitlines()
    assert "COMMANDS" in lines
    assert "EXAMPLES" in lines
    assert "   gofer rmi" in lines
    assert "   gofer mgt" in lines
    assert "gofer rmi -u amqp://localhost -a demo -t Dog.bark howdy" in text
    assert "GOFER_PASSWORD" in text


def test_goferd_page_has_signals_and_files() -> None:
    text = rendered(REPO / "man/goferd.1")
    assert "SIGHUP" in text
    assert "/etc/gofer/agent.conf" in text
    assert "/var/lib/gofer/journal" in text


def test_a_new_exit_status_needs_a_meaning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rmi, "EXIT_SURPRISE", 9, raising=False)
    with pytest.raises(ValueError, match="EXIT_SURPRISE"):
        manpage.gofer_page()


def test_roff_escapes() -> None:
    assert manpage.prose("use --url or -w, fire-and-forget") == (
        "use \\-\\-url or \\-w, fire-and-forget"
    )
    assert manpage.literal("a\\b-c") == "a\\eb\\-c"
    assert manpage.lines(".hidden\n'also\nplain") == ["\\&.hidden", "\\&'also", "plain"]
    assert manpage.quoted('say "hi"') == '"say \\(dqhi\\(dq"'


def test_split_epilog_moves_exit_statuses_and_examples() -> None:
    epilog = manpage.split_epilog(
        "durations (-w): seconds.\n\nA plain paragraph\nover two lines.\n\n"
        "exit status:\n  0  fine\n\nexamples:\n  gofer rmi -a x -t A.b\n"
    )
    assert epilog.notes == [
        ("durations (-w)", "seconds."),
        ("", "A plain paragraph over two lines."),
    ]
    assert epilog.examples == ["gofer rmi -a x -t A.b"]


def test_check_and_write(tmp_path: Path) -> None:
    assert manpage.main(["--check", str(tmp_path)]) == 1
    assert manpage.main([str(tmp_path)]) == 0
    assert manpage.main(["--check", str(tmp_path)]) == 0
    assert sorted(path.name for path in tmp_path.iterdir()) == PAGES
