"""The ``regfed`` command line: the server's commands, the client commands that call a
running server, and the supervisor of ``serve --workers N``."""
