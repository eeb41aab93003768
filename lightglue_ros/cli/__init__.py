"""The ``lightglue-ros`` command line: one module per subcommand."""
