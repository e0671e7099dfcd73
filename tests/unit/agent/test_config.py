"""agent.conf with conf.d drop-ins, and plugin descriptors, read from real files."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from gofer.agent.config import (
    AgentConfig,
    Cfg,
    Descriptor,
    ManagementConfig,
    load_agent_config,
    load_descriptor,
    load_descriptors,
)
from gofer.agent.paths import Paths
from gofer.errors import ConfigError
from gofer.messaging.adapter.model import Address

SECRET = "s3cret-Pa55"


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    return Paths.under(tmp_path)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def descriptor(paths: Paths, name: str, text: str) -> Descriptor:
    return load_descriptor(write(paths.descriptors / name, text))


def config_error(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_descriptor(path)
    return caught.value


# agent.conf -------------------------------------------------------------------------------


def test_missing_agent_conf_means_defaults(paths: Paths, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="gofer.agent.config"):
        config = load_agent_config(paths)
    assert config == AgentConfig(management=ManagementConfig(socket=paths.socket))
    assert config.management.enabled is False
    assert (config.management.host, config.management.port) == ("localhost", 5650)
    assert config.pam.service == "passwd"
    assert (config.main.monitor, config.main.drain_timeout) == (False, 30.0)
    assert dict(config.logging.levels) == {}
    assert config.files == ()
    assert str(paths.config) in caplog.text


def test_guide_management_example(paths: Paths) -> None:
    write(paths.config, "[management]\nenabled=1\nhost=localhost\nport=5650\n")
    config = load_agent_config(paths)
    assert config.management == ManagementConfig(
        enabled=True, host="localhost", port=5650, socket=paths.socket
    )
    assert config.files == (paths.config,)


def test_conf_d_merges_over_agent_conf_in_name_order(paths: Paths) -> None:
    write(paths.config, "[management]\nenabled=0\nhost=alpha\nport=1000\n[pam]\nservice=login\n")
    write(paths.config_dir / "20-later.conf", "[management]\nport=3000\n")
    write(paths.config_dir / "10-first.conf", "[management]\nhost=beta\nport=2000\n")
    write(paths.config_dir / "30-ignored.conf.rpmnew", "[management]\nport=4000\n")
    write(paths.config_dir / ".hidden.conf", "[management]\nport=5000\n")
    write(paths.config_dir / "README", "not configuration")
    config = load_agent_config(paths)
    assert (config.management.host, config.management.port) == ("beta", 3000)
    assert config.management.enabled is False
    assert config.pam.service == "login"
    assert config.files == (
        paths.config,
        paths.config_dir / "10-first.conf",
        paths.config_dir / "20-later.conf",
    )


def test_conf_d_without_agent_conf(paths: Paths) -> None:
    write(paths.config_dir / "management.conf", "[management]\nenabled=1\n")
    assert load_agent_config(paths).management.enabled is True


def test_guide_logging_examples(paths: Paths) -> None:
    write(paths.config, "[logging]\ngofer.agent=DEBUG\ngofer.messaging=DEBUG\n")
    write(paths.config_dir / "root.conf", "[logging]\nroot=DEBUG\n")
    levels = load_agent_config(paths).logging.levels
    assert dict(levels) == {
        "gofer.agent": logging.DEBUG,
        "gofer.messaging": logging.DEBUG,
        "root": logging.DEBUG,
    }


def test_logging_levels_any_case_and_old_names(paths: Paths) -> None:
    write(
        paths.config,
        "[logging]\na=critical\nb=Error\nc=fatal\nd=info\ne=warn\nf=WARNING\nMyPlugin=debug\n",
    )
    levels = load_agent_config(paths).logging.levels
    assert dict(levels) == {
        "a": logging.CRITICAL,
        "b": logging.ERROR,
        "c": logging.FATAL,
        "d": logging.INFO,
        "e": logging.WARNING,
        "f": logging.WARNING,
        "MyPlugin": logging.DEBUG,  # logger names keep their case
    }


@pytest.fixture
def restore_levels() -> Iterator[None]:
    names = (None, "gofer.test_config_apply")
    saved = [logging.getLogger(name).level for name in names]
    yield
    for name, level in zip(names, saved):
        logging.getLogger(name).setLevel(level)


@pytest.mark.usefixtures("restore_levels")
def test_logging_apply_sets_levels(paths: Paths) -> None:
    write(paths.config, "[logging]\nroot=error\ngofer.test_config_apply=debug\n")
    load_agent_config(paths).logging.apply()
    assert logging.getLogger().level == logging.ERROR
    assert logging.getLogger("gofer.test_config_apply").level == logging.DEBUG


def test_unknown_level_names_file_section_and_key(paths: Paths) -> None:
    write(paths.config, "[logging]\ngofer=DEBUG\n")
    dropin = write(paths.config_dir / "x.conf", "[logging]\ngofer.rmi=LOUD\n")
    with pytest.raises(ConfigError) as caught:
        load_agent_config(paths)
    error = caught.value
    assert (error.path, error.section, error.key) == (str(dropin), "logging", "gofer.rmi")
    assert "LOUD" in str(error)
    assert "DEBUG" in str(error)  # says what was expected


def test_main_section(paths: Paths) -> None:
    write(paths.config, "[main]\nmonitor=yes\ndrain_timeout=2m\n")
    main = load_agent_config(paths).main
    assert (main.monitor, main.drain_timeout) == (True, 120.0)


def test_socket_can_be_moved_or_disabled(paths: Paths, tmp_path: Path) -> None:
    # Like every path, an explicit socket moves below the root (--root).
    write(paths.config, "[management]\nsocket=/var/run/mgt.sock\n")
    assert load_agent_config(paths).management.socket == paths.root / "var/run/mgt.sock"
    write(paths.config, "[management]\nsocket=\n")
    assert load_agent_config(paths).management.socket is None


@pytest.mark.parametrize(
    ("section", "key", "value", "expected"),
    [
        ("management", "enabled", "maybe", "expected a boolean"),
        ("management", "port", "http", "expected an integer from 1 to 65535"),
        ("management", "port", "70000", "expected an integer from 1 to 65535"),
        ("management", "socket", "run/goferd.sock", "expected an absolute path"),
        ("main", "monitor", "2", "expected a boolean"),
        ("main", "drain_timeout", "soon", "expected seconds"),
        ("main", "drain_timeout", "-1", "expected seconds"),
    ],
)
def test_agent_type_errors_name_file_section_and_key(
    paths: Paths, section: str, key: str, value: str, expected: str
) -> None:
    write(paths.config, f"[{section}]\n{key}={value}\n")
    with pytest.raises(ConfigError, match=expected) as caught:
        load_agent_config(paths)
    error = caught.value
    assert (error.path, error.section, error.key) == (str(paths.config), section, key)
    assert str(paths.config) in str(error)


def test_unknown_sections_and_keys_are_warned_not_fatal(
    paths: Paths, caplog: pytest.LogCaptureFixture
) -> None:
    write(paths.config, "[management]\nenabled=1\ncolour=blue\n[future]\nthing=1\n")
    with caplog.at_level(logging.WARNING, logger="gofer.agent.config"):
        config = load_agent_config(paths)
    assert config.management.enabled is True
    assert "colour" in caplog.text
    assert "[future]" in caplog.text
    assert str(paths.config) in caplog.text


def test_known_keys_ignore_case(paths: Paths) -> None:
    write(paths.config, "[management]\nEnabled=1\nPORT=6000\n")
    management = load_agent_config(paths).management
    assert (management.enabled, management.port) == (True, 6000)


def test_broken_agent_conf_names_the_file(paths: Paths) -> None:
    write(paths.config, f"url=amqp://gofer:{SECRET}@broker\n[management]\n")
    with pytest.raises(ConfigError) as caught:
        load_agent_config(paths)
    assert caught.value.path == str(paths.config)
    assert "line 1" in str(caught.value)
    assert SECRET not in str(caught.value)  # line text never quoted


def test_unreadable_agent_conf_names_the_file(paths: Paths) -> None:
    paths.config.mkdir(parents=True)  # a directory cannot be read as a file, even by root
    with pytest.raises(ConfigError, match="cannot read") as caught:
        load_agent_config(paths)
    assert caught.value.path == str(paths.config)


def test_agent_conf_not_utf8(paths: Paths) -> None:
    paths.config.parent.mkdir(parents=True)
    paths.config.write_bytes(b"[pam]\nservice=\xff\n")
    with pytest.raises(ConfigError, match="UTF-8"):
        load_agent_config(paths)


def test_interpolation_is_off_and_default_is_an_ordinary_section(paths: Paths) -> None:
    write(paths.config, "[DEFAULT]\nservice=x\n[pam]\nservice=50%(off)s\n")
    assert load_agent_config(paths).pam.service == "50%(off)s"


# Plugin descriptors: the user guide's examples --------------------------------------------

GUIDE_MESSAGING = """\
[main]
enabled=1

[messaging]
url=qpid+amqp://localhost

[model]
queue=123
"""

GUIDE_ACCEPT = """\
[main]
enabled=1
accept=*
"""

GUIDE_FOOBAR = """\
[main]
enabled=1

[messaging]
url=qpid+amqp://localhost

[model]
queue=123

[foobar]
timeout=100
"""

GUIDE_PLUGIN_CONF = """\
[main]
enabled=1

[messaging]
url=amqp://localhost
uuid=test
"""

GUIDE_PYTHON_PATH = """\
[main]
enabled=1
plugin=application.agent.plugin.py

[messaging]
url=amqp://localhost
uuid=zoo
"""

GUIDE_EXTENDS = """\
[main]
enabled=1
extends=animals
"""

GUIDE_MYPLUGIN = """\
[main]
enabled = 1

[messaging]
url=qpid+amqp://localhost

[model]
queue=123
"""


def test_guide_messaging_example(paths: Paths) -> None:
    loaded = descriptor(paths, "demo.conf", GUIDE_MESSAGING)
    assert loaded.name == "demo"
    assert loaded.enabled is True
    assert loaded.main.threads == 1
    assert loaded.main.latency == 0.0
    assert (loaded.main.accept, loaded.main.forward, loaded.main.plugin) == ((), (), None)
    url = loaded.messaging.url
    assert url is not None
    assert (url.adapter, url.scheme, url.host, url.port) == ("qpid", "amqp", "localhost", 5672)
    assert loaded.messaging.host_validation is True
    assert loaded.messaging.heartbeat == 10.0
    assert (loaded.model.managed, loaded.model.queue, loaded.model.expiration) == (2, "123", None)
    assert loaded.model.address == Address("", "123")


def test_guide_example_without_messaging(paths: Paths) -> None:
    loaded = descriptor(paths, "forwarder.conf", GUIDE_ACCEPT)
    assert loaded.main.accept == ("*",)
    assert loaded.messaging.url is None
    assert loaded.messaging.broker() is None
    assert loaded.model.queue is None
    assert loaded.model.address is None


def test_guide_user_section_example(paths: Paths) -> None:
    loaded = descriptor(paths, "myplugin.conf", GUIDE_FOOBAR)
    assert loaded.cfg.foobar.timeout == "100"
    assert loaded.cfg().foobar.timeout == "100"  # the guide's Plugin.find(...).cfg() form
    assert set(loaded.user_sections) == {"foobar"}


def test_guide_uuid_examples(paths: Paths, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="gofer.agent.config"):
        plugin = descriptor(paths, "plugin.conf", GUIDE_PLUGIN_CONF)
    assert (plugin.messaging.uuid, plugin.model.queue) == ("test", "test")
    assert "deprecated" in caplog.text
    zoo = descriptor(paths, "zoo.conf", GUIDE_PYTHON_PATH)
    assert zoo.main.plugin == "application.agent.plugin.py"
    assert zoo.model.queue == "zoo"


def test_guide_extends_and_spaced_keys(paths: Paths) -> None:
    assert descriptor(paths, "dog.conf", GUIDE_EXTENDS).main.extends == ("animals",)
    assert descriptor(paths, "myplugin.conf", GUIDE_MYPLUGIN).enabled is True


def test_guide_ssl_example(paths: Paths) -> None:
    loaded = descriptor(
        paths,
        "tls.conf",
        "[messaging]\nurl=ssl://broker.example.com:5674\n"
        "cacert=/tmp/redhat/qpid/ca.crt\nclientcert=/tmp/redhat/qpid/client.crt\n",
    )
    broker = loaded.messaging.broker()
    assert broker is not None
    assert (broker.url.tls, broker.url.port, broker.heartbeat) == (True, 5674, 10.0)
    assert broker.tls.cacert == "/tmp/redhat/qpid/ca.crt"
    assert broker.tls.clientcert == "/tmp/redhat/qpid/client.crt"
    assert broker.tls.host_validation is True
    assert loaded.enabled is False  # no [main]: not enabled, as before


# Plugin descriptors: every key ------------------------------------------------------------


def test_every_key(paths: Paths) -> None:
    loaded = descriptor(
        paths,
        "full.conf",
        "[main]\nenabled=on\nname=zoo\nplugin=zoo.agent\nthreads=4\nlatency=1.5\n"
        "accept=dog, cat,,\nforward=*\nextends=animals,plants\n"
        "[messaging]\nurl=amqps://gofer@broker\nuuid=old\ncacert=/ca.pem\n"
        "clientcert=/c.pem\nclientkey=/k.pem\nhost_validation=false\n"
        "authenticator=zoo.auth:Signer\nheartbeat=0\n"
        "[model]\nmanaged=1\nqueue=amq.direct/zoo\nexpiration=10m\n",
    )
    main, messaging, model = loaded.main, loaded.messaging, loaded.model
    assert (main.enabled, main.name, main.plugin) == (True, "zoo", "zoo.agent")
    assert (main.threads, main.latency) == (4, 1.5)
    assert (main.accept, main.forward, main.extends) == (
        ("dog", "cat"),
        ("*",),
        ("animals", "plants"),
    )
    assert (messaging.cacert, messaging.clientcert, messaging.clientkey) == (
        "/ca.pem",
        "/c.pem",
        "/k.pem",
    )
    assert messaging.host_validation is False
    assert messaging.authenticator == "zoo.auth:Signer"
    assert messaging.heartbeat == 0.0
    broker = messaging.broker()
    assert broker is not None
    assert broker.heartbeat is None  # 0 turns heartbeats off
    assert (model.managed, model.queue, model.expiration) == (1, "amq.direct/zoo", 600.0)
    assert model.address == Address("amq.direct", "zoo")  # queue wins over uuid


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", True),
        ("0", False),
        ("TRUE", True),
        ("False", False),
        ("yes", True),
        ("No", False),
        ("on", True),
        ("OFF", False),
        ("", False),
    ],
)
def test_booleans(paths: Paths, text: str, expected: bool) -> None:
    assert descriptor(paths, "b.conf", f"[main]\nenabled={text}\n").enabled is expected


def test_old_exchange_key_prefixes_the_queue(paths: Paths) -> None:
    loaded = descriptor(paths, "x.conf", "[model]\nexchange=amq.topic\nqueue=zoo\n")
    assert loaded.model.queue == "amq.topic/zoo"


def test_empty_values_mean_defaults(paths: Paths) -> None:
    loaded = descriptor(
        paths,
        "e.conf",
        "[main]\nenabled=1\nthreads=\naccept=,\n[messaging]\nurl=\n[model]\nqueue=\n",
    )
    assert (loaded.main.threads, loaded.main.accept) == (1, ())
    assert (loaded.messaging.url, loaded.model.queue) == (None, None)


def test_known_keys_ignore_case_user_sections_keep_it(paths: Paths) -> None:
    loaded = descriptor(paths, "c.conf", "[main]\nEnabled=1\n[dog]\nbarkNoise=woof\n")
    assert loaded.enabled is True
    assert loaded.cfg.dog.barkNoise == "woof"
    assert loaded.cfg.dog.barknoise is None


def test_unknown_keys_of_known_sections_are_warned(
    paths: Paths, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="gofer.agent.config"):
        loaded = descriptor(paths, "w.conf", "[main]\nenabled=1\nthread=4\n[dog]\nanything=1\n")
    assert loaded.main.threads == 1
    assert "'thread'" in caplog.text
    assert "anything" not in caplog.text  # user sections are the plugin's business


BAD_VALUES = [
    ("main", "enabled", "maybe", "expected a boolean"),
    ("main", "threads", "0", "expected an integer from 1"),
    ("main", "threads", "four", "expected an integer from 1"),
    ("main", "latency", "-2", "expected seconds"),
    ("main", "latency", "slow", "expected seconds"),
    ("main", "plugin", "zoo/agent.py", "expected a dotted Python path"),
    ("messaging", "url", "http://broker", "expected a broker URL"),
    ("messaging", "host_validation", "sometimes", "expected a boolean"),
    ("messaging", "authenticator", "not a path", "expected a dotted Python path"),
    ("messaging", "heartbeat", "often", "expected seconds"),
    ("model", "managed", "3", "expected an integer from 0 to 2"),
    ("model", "queue", "a/b/c", "expected 'queue' or 'exchange/queue'"),
    ("model", "expiration", "0", "expected a positive number of seconds"),
    ("model", "expiration", "never", "expected seconds"),
]


@pytest.mark.parametrize(("section", "key", "value", "expected"), BAD_VALUES)
def test_ini_type_errors_name_file_section_and_key(
    paths: Paths, section: str, key: str, value: str, expected: str
) -> None:
    path = write(paths.descriptors / "bad.conf", f"[{section}]\n{key}={value}\n")
    error = config_error(path)
    assert (error.path, error.section, error.key) == (str(path), section, key)
    assert expected in str(error)
    assert str(path) in str(error)


@pytest.mark.parametrize(
    ("section", "key", "value", "expected"),
    [
        ("main", "enabled", "yes please", "expected a boolean"),
        ("main", "enabled", 2, "expected a boolean"),
        ("main", "threads", 1.5, "expected an integer"),
        ("main", "threads", True, "expected an integer"),
        ("main", "accept", {"dog": 1}, "expected a comma-separated list"),
        ("main", "name", ["x"], "expected a string"),
        ("messaging", "url", 5672, "expected a broker URL"),
        ("model", "expiration", [10], "expected seconds"),
    ],
)
def test_json_type_errors_name_file_section_and_key(
    paths: Paths, section: str, key: str, value: object, expected: str
) -> None:
    path = write(paths.descriptors / "bad.json", json.dumps({section: {key: value}}))
    error = config_error(path)
    assert (error.path, error.section, error.key) == (str(path), section, key)
    assert expected in str(error)


def test_json_descriptor(paths: Paths) -> None:
    document = {
        "main": {"enabled": True, "threads": 3, "latency": 0.5, "accept": ["dog", "cat"]},
        "messaging": {"url": "amqp://localhost", "host_validation": "0", "heartbeat": 30},
        "model": {"managed": 0, "queue": 123},
        "foobar": {"timeout": 100, "hosts": ["a", "b"]},
    }
    loaded = descriptor(paths, "zoo.json", json.dumps(document))
    assert (loaded.name, loaded.enabled, loaded.main.threads) == ("zoo", True, 3)
    assert (loaded.main.latency, loaded.main.accept) == (0.5, ("dog", "cat"))
    assert loaded.messaging.host_validation is False
    assert loaded.messaging.heartbeat == 30.0
    assert (loaded.model.managed, loaded.model.queue) == (0, "123")
    assert loaded.cfg.foobar.timeout == 100  # JSON values stay JSON values
    assert loaded.cfg.foobar.hosts == ["a", "b"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "expected a JSON object of sections"),
        ('{"main": 1}', "expected a JSON object of keys and values"),
        ("[" * 100_000, "not JSON"),
    ],
)
def test_broken_json(paths: Paths, text: str, expected: str) -> None:
    path = write(paths.descriptors / "broken.json", text)
    error = config_error(path)
    assert expected in str(error)
    assert error.path == str(path)


def test_ini_extension_and_unknown_extension(paths: Paths) -> None:
    assert descriptor(paths, "a.ini", "[main]\nenabled=1\n").name == "a"
    with pytest.raises(ConfigError, match="not a plugin descriptor"):
        descriptor(paths, "a.yaml", "main:\n  enabled: 1\n")
    with pytest.raises(ConfigError, match="cannot read"):
        load_descriptor(paths.descriptors / "missing.conf")


# cfg: the plugin's view -------------------------------------------------------------------


def test_cfg_reads_missing_sections_and_keys_as_empty(paths: Paths) -> None:
    cfg = descriptor(paths, "myplugin.conf", GUIDE_FOOBAR).cfg
    assert cfg.foobar.missing is None
    assert cfg.nosuch.timeout is None
    assert len(cfg.nosuch) == 0
    assert "nosuch" not in cfg
    assert "foobar" in cfg
    assert cfg["foobar"]["timeout"] == "100"
    assert cfg.main.enabled == "1"  # as written; typed values are on Descriptor.main
    assert cfg.model.queue == "123"


def test_cfg_iterates_like_the_old_graph(paths: Paths) -> None:
    cfg = descriptor(paths, "myplugin.conf", GUIDE_FOOBAR).cfg
    assert dict(cfg.foobar) == {"timeout": "100"}
    assert [(key, value) for key, value in cfg.foobar] == [("timeout", "100")]
    assert list(dict(cfg)) == ["main", "messaging", "model", "foobar"]
    assert [name for name, _ in cfg] == ["main", "messaging", "model", "foobar"]
    assert cfg() is cfg


def test_cfg_values_can_change_at_run_time_but_not_its_sections(paths: Paths) -> None:
    # Plugins of the old gofer set plugin.cfg.model.queue = ... before plugin.attach().
    cfg = descriptor(paths, "myplugin.conf", GUIDE_FOOBAR).cfg
    cfg.foobar.timeout = "5"
    assert cfg.foobar.timeout == "5"
    cfg.extra.mode = "fast"  # a section that was not there joins the others
    assert cfg.extra.mode == "fast"
    assert "extra" in cfg
    assert cfg.raw()["extra"] == {"mode": "fast"}
    with pytest.raises(AttributeError):
        cfg.foobar = None
    with pytest.raises(AttributeError):
        cfg.foobar._private = 1
    with pytest.raises(AttributeError):
        _ = cfg.foobar.__wrapped__  # special names are not keys


def test_cfg_of_non_identifier_keys(paths: Paths) -> None:
    cfg = descriptor(paths, "k.conf", "[dog]\nbark-noise = woof\n").cfg
    assert cfg.dog["bark-noise"] == "woof"
    assert isinstance(Cfg({}).anything.anything, type(None))


# Secrets ----------------------------------------------------------------------------------


def test_password_never_in_repr_or_str(paths: Paths) -> None:
    loaded = descriptor(
        paths,
        "secret.conf",
        f"[main]\nenabled=1\n[messaging]\nurl=amqp://gofer:{SECRET}@broker/prod\n"
        f"[dog]\npassword={SECRET}\nupstream=https://user:{SECRET}@example.com/x\n",
    )
    assert loaded.messaging.url is not None
    assert loaded.messaging.url.password == SECRET
    for text in (
        repr(loaded),
        str(loaded),
        repr(loaded.messaging),
        str(loaded.messaging.url),
        repr(loaded.cfg),
        repr(loaded.cfg.messaging),
        repr(loaded.cfg.dog),
        repr(loaded.messaging.broker()),
    ):
        assert SECRET not in text, text
    assert loaded.cfg.messaging.url == f"amqp://gofer:{SECRET}@broker/prod"  # as written


def test_password_not_in_url_error(paths: Paths) -> None:
    path = write(paths.descriptors / "bad.conf", f"[messaging]\nurl=http://gofer:{SECRET}@broker\n")
    error = config_error(path)
    assert SECRET not in str(error)
    assert error.key == "url"


# The descriptor directory -----------------------------------------------------------------


def test_broken_descriptor_does_not_stop_the_others(paths: Paths) -> None:
    write(paths.descriptors / "a.conf", GUIDE_MESSAGING)
    write(paths.descriptors / "b.conf", "[main]\nenabled=1\nthreads=many\n")
    write(paths.descriptors / "c.json", '{"main": {"enabled": 1}}')
    write(paths.descriptors / "d.json", "{broken")
    write(paths.descriptors / "e.ini", GUIDE_ACCEPT)
    write(paths.descriptors / "notes.txt", "ignored")
    write(paths.descriptors / ".swap.conf", "ignored")
    (paths.descriptors / "subdir.conf").mkdir()
    descriptors, errors = load_descriptors(paths)
    assert [loaded.name for loaded in descriptors] == ["a", "c", "e"]
    assert [(error.path, error.key) for error in errors] == [
        (str(paths.descriptors / "b.conf"), "threads"),
        (str(paths.descriptors / "d.json"), None),
    ]


def test_duplicate_plugin_name_is_an_error(paths: Paths) -> None:
    write(paths.descriptors / "a.conf", "[main]\nenabled=1\nname=zoo\n")
    write(paths.descriptors / "zoo.json", '{"main": {"enabled": true}}')
    descriptors, errors = load_descriptors(paths)
    assert [loaded.path.name for loaded in descriptors] == ["a.conf"]
    assert len(errors) == 1
    assert (errors[0].path, errors[0].section, errors[0].key) == (
        str(paths.descriptors / "zoo.json"),
        "main",
        "name",
    )
    assert "already used" in str(errors[0])


def test_missing_descriptor_directory(paths: Paths) -> None:
    assert load_descriptors(paths) == ([], [])


def test_unlistable_descriptor_directory(paths: Paths) -> None:
    write(paths.descriptors, "a file, not a directory")
    descriptors, errors = load_descriptors(paths)
    assert descriptors == []
    assert len(errors) == 1
    assert errors[0].path == str(paths.descriptors)


# Clusters: several brokers, reconnect pacing, quorum queues -------------------------------


def test_a_cluster_descriptor(paths: Paths) -> None:
    loaded = descriptor(
        paths,
        "cluster.conf",
        "[main]\nenabled=1\n"
        f"[messaging]\nurl=amqp://gofer:{SECRET}@h1, amqp://gofer:{SECRET}@h2:5673\n"
        "reconnect_min=2\nreconnect_max=5m\nshuffle=no\n"
        "[model]\nqueue=agent-1\nqueue_type=quorum\n",
    )
    broker = loaded.messaging.broker()
    assert broker is not None
    assert [(b.url.host, b.url.port) for b in broker.each()] == [("h1", 5672), ("h2", 5673)]
    assert broker.shuffle is False
    reconnect = loaded.messaging.reconnect()
    assert (reconnect.initial, reconnect.maximum, reconnect.full_jitter) == (2.0, 300.0, True)
    assert loaded.model.queue_type == "quorum"
    assert SECRET not in repr(loaded)


def test_cluster_settings_default_for_a_fleet(paths: Paths) -> None:
    loaded = descriptor(paths, "plain.conf", "[messaging]\nurl=amqp://h1\n[model]\nqueue=q\n")
    broker = loaded.messaging.broker()
    assert broker is not None
    assert broker.shuffle is True
    reconnect = loaded.messaging.reconnect()
    assert (reconnect.initial, reconnect.maximum) == (1.0, 60.0)
    assert loaded.model.queue_type == "classic"


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        ("[model]\nqueue_type=mirrored\n", "classic or quorum.*queue_type"),
        ("[messaging]\nreconnect_min=0\n", "positive.*reconnect_min"),
        ("[messaging]\nreconnect_min=10\nreconnect_max=5\n", "at least.*reconnect_max"),
        ("[messaging]\nurl=amqp://h1,qpid+amqp://h2\n", "different adapters"),
    ],
)
def test_bad_cluster_settings_are_named(paths: Paths, lines: str, expected: str) -> None:
    path = write(paths.descriptors / "bad.conf", f"[main]\nenabled=1\n{lines}")
    with pytest.raises(ConfigError, match=expected):
        load_descriptor(path)


def test_metrics_settings(paths: Paths) -> None:
    write(
        paths.config,
        "[metrics]\ntextfile=/var/lib/node_exporter/gofer.prom\ninterval=30s\nlisten=[::1]:9464\n",
    )
    figures = load_agent_config(paths).metrics
    assert figures.textfile == paths.root / "var/lib/node_exporter/gofer.prom"
    assert figures.interval == 30
    assert figures.listen == ("::1", 9464)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("textfile=gofer.prom", "absolute path"),
        ("interval=0.1", "at least 1 second"),
        ("listen=9464", "HOST:PORT"),
        ("listen=localhost:99999", "HOST:PORT"),
    ],
)
def test_bad_metrics_settings_are_named(paths: Paths, line: str, expected: str) -> None:
    write(paths.config, f"[metrics]\n{line}\n")
    with pytest.raises(ConfigError, match=expected):
        load_agent_config(paths)
