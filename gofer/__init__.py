"""gofer: an agent daemon and Remote Method Invocation library over AMQP brokers."""

__version__ = "3.0.0.dev0"

#: The text encoding of message bodies (the existing gofer's name).
ENCODING = "utf8"
#: The package's name (the existing gofer's ``gofer.NAME``).
NAME = __name__
