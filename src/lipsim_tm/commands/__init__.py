"""Subcommands of the ``lipsim`` command line (see :mod:`lipsim_tm.cli`)."""
