"""The generator: regenerating the protocol module from the spec gives the committed file."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from gofer.messaging.adapter.qpid.engine import spec010
from tests import brokers

ROOT = Path(__file__).resolve().parents[3]
SPEC = Path("/usr/share/amqp/specs/0-10/amqp.0-10.stripped.xml")


def _load_generator() -> ModuleType:
    location = ROOT / "tools" / "gen010.py"
    module_spec = importlib.util.spec_from_file_location("gen010", location)
    assert module_spec is not None
    assert module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    sys.modules["gen010"] = module
    module_spec.loader.exec_module(module)
    return module


gen010 = _load_generator()


def _install_specs() -> None:
    """Install Debian's amqp-specs (CI runs as root); skip elsewhere, fail in CI."""
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        message = f"{SPEC} is missing and cannot be installed here (apt-get install amqp-specs)"
        if brokers.required():
            pytest.fail(message)
        pytest.skip(message)
    install = ["apt-get", "install", "-y", "-q", "amqp-specs"]
    if subprocess.run(install, capture_output=True, check=False, timeout=600).returncode:
        subprocess.run(["apt-get", "update", "-q"], capture_output=True, check=True, timeout=600)
        subprocess.run(install, capture_output=True, check=True, timeout=600)


@pytest.fixture(scope="module")
def spec_path() -> Path:
    if not SPEC.exists():
        _install_specs()
    return SPEC


def test_regenerating_gives_the_committed_module_byte_for_byte(spec_path: Path) -> None:
    committed = Path(spec010.__file__).read_text()
    assert gen010.render(spec_path) == committed
    assert gen010.main(["--spec", str(spec_path), "--check"]) == 0


def test_check_reports_a_stale_module(spec_path: Path, tmp_path: Path) -> None:
    stale = tmp_path / "spec010.py"
    stale.write_text("# edited by hand\n")
    assert gen010.main(["--spec", str(spec_path), "--output", str(stale), "--check"]) == 1
    assert gen010.main(["--spec", str(spec_path), "--output", str(stale)]) == 0
    assert stale.read_text() == Path(spec010.__file__).read_text()


def test_the_generated_module_covers_the_spec() -> None:
    assert spec010.VERSION == (0, 10)
    assert len(spec010.CLASSES) == 10
    assert len(spec010.CONTROLS) == 25
    assert len(spec010.COMMANDS) == 59
    assert len(spec010.TYPES) == 45
    transfer = spec010.COMMANDS[0x0401]
    assert transfer is spec010.MessageTransfer
    assert transfer.PAYLOAD
    assert transfer.HEADER[0] is spec010.MessageDeliveryProperties
    assert spec010.QueueQuery.RESULT is spec010.QueueQueryResult
    assert spec010.STRUCTS[0x0801] is spec010.QueueQueryResult
    assert spec010.MessageProperties.FIELDS[3].struct is spec010.MessageReplyTo
    assert int(spec010.ExecutionErrorCode.NOT_FOUND) == 404
    assert "``ttl``, uint64" in (spec010.MessageDeliveryProperties.__doc__ or "")


def test_labels_and_doc_elements_reach_the_docstrings(tmp_path: Path) -> None:
    # The Debian file is stripped of documentation; fuller spec files carry it.
    xml = tmp_path / "mini.xml"
    xml.write_text(
        """<?xml version="1.0"?>
<amqp major="0" minor="10" port="5672">
  <type name="uint8" code="0x02" fixed-width="1"/>
  <type name="str8" code="0x85" variable-width="1"/>
  <class name="demo" code="0x9" label="a demonstration">
    <doc>What the class is for.</doc>
    <domain name="mood" type="uint8" label="how it feels">
      <enum><choice name="calm" value="0"/><choice name="loud" value="1"/></enum>
    </domain>
    <command name="shout" code="0x1" label="say something loudly">
      <doc>
        The first paragraph.

        The second paragraph.
      </doc>
      <field name="words" type="str8" label="what to say" required="true"/>
      <field name="mood" type="mood"/>
    </command>
  </class>
</amqp>
"""
    )
    text = gen010.render(xml)
    assert "demo.shout: say something loudly." in text
    assert "The first paragraph." in text
    assert "The second paragraph." in text
    assert "``words``, str8, required. What to say." in text
    assert "class DemoMood(enum.IntEnum):" in text
    assert "LOUD = 1" in text
    compile(text, "mini.py", "exec")
