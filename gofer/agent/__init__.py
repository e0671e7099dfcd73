"""The agent daemon: plugins, their RMI dispatch and recurring actions, run by goferd."""
