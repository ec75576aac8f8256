"""The application: building a run from its config, the command-line entry points."""
