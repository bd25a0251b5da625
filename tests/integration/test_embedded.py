"""The embedded PostgreSQL: a real pgserver cluster in a folder of the test's own."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from regfed.postgres.embedded import HANDLES, EmbeddedPostgres

pytestmark = pytest.mark.postgres


def test_a_user_killed_before_it_could_leave_does_not_keep_the_server_running() -> None:
    """pgserver stops the server when its last user leaves; a user that was killed stays
    counted in its file. Started again, the server is stopped by its last live user all
    the same."""
    # Short: the cluster's Unix socket path must fit in 107 bytes.
    home = Path(tempfile.mkdtemp(prefix="rf-emb-"))
    embedded = EmbeddedPostgres(home)
    postmaster = home / "pgdata" / "postmaster.pid"
    try:
        embedded.start()
        embedded.stop()
        assert not postmaster.exists()
        gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)  # fmt: skip
        (home / "pgdata" / HANDLES).write_text(json.dumps([int(gone.stdout)]))
        embedded.start()
        assert postmaster.exists()
        embedded.stop()
        assert not postmaster.exists()
    finally:
        embedded.stop()
        if postmaster.exists():  # the test failed with the server up: no stray PostgreSQL
            os.kill(int(postmaster.read_text().split()[0]), signal.SIGQUIT)
        shutil.rmtree(home, ignore_errors=True)
