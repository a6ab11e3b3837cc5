"""The ``ufm`` command line: thin typer commands over the :mod:`ufm` library."""
