"""Adapters: one package per AMQP driver behind one small contract (see ``contract``)."""
