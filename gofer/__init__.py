"""gofer: an agent daemon and Remote Method Invocation library over AMQP brokers."""

__version__ = "3.0.0.dev0"
