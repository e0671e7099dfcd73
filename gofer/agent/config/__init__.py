"""goferd's configuration: ``agent.conf`` with its ``conf.d`` drop-ins, and plugin descriptors.

Both are read once, checked, and turned into frozen dataclasses that are
passed down; nothing re-reads a file behind the daemon's back.

Reading rules, shared by every file (they keep the old gofer's files working):

- INI files are read by :mod:`configparser` with interpolation off (a ``%``
  in a password is just a ``%``), without a magic ``[DEFAULT]`` section, with
  repeated sections and keys allowed (the last value wins) and with the case
  of keys kept. Keys of the sections gofer knows are matched ignoring case;
  section names are matched exactly.
- An empty value means "not set": the default applies (``url =`` means no
  broker, as before).
- A wrong value is a :class:`~gofer.errors.ConfigError` naming the file,
  section and key, and saying what was expected.
- An unknown section or key of ``agent.conf``, or an unknown key of a known
  descriptor section, is logged as a warning and ignored, so that a newer
  file still loads in an older goferd.

Plugin descriptors are ``.conf`` or ``.ini`` (INI) or ``.json`` (an object
of sections, each an object of keys and values). Their typed, checked
values are :attr:`Descriptor.main`, :attr:`Descriptor.messaging` and
:attr:`Descriptor.model`; :attr:`Descriptor.cfg` is the file as written, for
plugins that read their own sections (``plugin.cfg.foobar.timeout``).

The package's modules: :mod:`~gofer.agent.config.files` reads and merges the
files, :mod:`~gofer.agent.config.values` turns their strings into typed values,
:mod:`~gofer.agent.config.agent_conf` builds :class:`AgentConfig`,
:mod:`~gofer.agent.config.descriptor` builds :class:`Descriptor`, and
:mod:`~gofer.agent.config.cfg` is the descriptor as written (:class:`Cfg`).
"""

from __future__ import annotations

from gofer.agent.config.agent_conf import (
    AgentConfig,
    LoggingConfig,
    MainConfig,
    ManagementConfig,
    MetricsConfig,
    PamConfig,
    load_agent_config,
)
from gofer.agent.config.cfg import Cfg, CfgSection
from gofer.agent.config.descriptor import (
    DESCRIPTOR_SUFFIXES,
    RESERVED_SECTIONS,
    Descriptor,
    MainSection,
    MessagingSection,
    ModelSection,
    descriptor_from,
    load_descriptor,
    load_descriptors,
)
from gofer.agent.config.files import RawSections

__all__ = [
    "DESCRIPTOR_SUFFIXES",
    "RESERVED_SECTIONS",
    "AgentConfig",
    "Cfg",
    "CfgSection",
    "Descriptor",
    "LoggingConfig",
    "MainConfig",
    "MainSection",
    "ManagementConfig",
    "MessagingSection",
    "MetricsConfig",
    "ModelSection",
    "PamConfig",
    "RawSections",
    "descriptor_from",
    "load_agent_config",
    "load_descriptor",
    "load_descriptors",
]
