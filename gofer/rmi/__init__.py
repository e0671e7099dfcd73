"""Remote Method Invocation: caller stubs and replies, agent-side dispatch and models."""
