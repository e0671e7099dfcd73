"""The qpid adapter as the registry and the URL see it, and what it learns from the broker."""

from __future__ import annotations

from gofer.messaging.adapter.qpid import QpidAdapter, adapter
from gofer.messaging.adapter.qpid.connection import _Dialect
from gofer.messaging.adapter.registry import BUILTIN, Registry
from gofer.messaging.url import Url


def test_the_registry_finds_it_by_name_and_by_the_names_it_provides() -> None:
    registry = Registry(BUILTIN)
    for name in ("qpid", "amqp-0-10", "qpid.messaging"):
        found: object = registry.find(name)
        assert found is adapter
    assert isinstance(adapter, QpidAdapter)
    assert Url.parse("qpid+amqp://gofer:gofer@localhost:5673").adapter == "qpid"


def test_broker_j_gets_unlimited_deliveries_and_no_queue_expiry() -> None:
    broker_j = _Dialect({"product": "Apache Qpid Broker-J Core", "version": "10.1.0"})
    assert not broker_j.queue_expiry
    assert broker_j.queue_arguments == {"x-qpid-maximum-delivery-count": 0}
    qpidd = _Dialect({"product": "qpid-cpp"})
    assert qpidd.queue_expiry
    assert qpidd.queue_arguments == {}
