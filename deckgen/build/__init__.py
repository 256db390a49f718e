"""Build: drives the stages at the I/O edge (``pipeline``) and remembers between builds (``lock``, ``cache``)."""
