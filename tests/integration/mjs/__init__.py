"""
mjs: the integration tests' library — an HTTP client with a cookie jar per
"browser", a real SSE client over a raw socket, and a psql helper.

Everything talks to an already running stack (dev/up --detach): MJS_STATE_DIR
names its state directory, whose `env` file holds MJS_URL (nginx) and MJS_DSN
(libpq conninfo). Python 3 standard library only.

Invariants the tests rely on:
- Every wait is a loop on a condition with a deadline; nothing sleeps for
  correctness. A wait that times out raises AssertionError saying what it saw.
- Every socket and thread this module opens is closed by close() / the
  context manager, so a failing test leaks nothing into the next one.
- SQL values are never formatted into SQL text: psql() passes them with
  `-v pN=value` and the statement quotes them as :'pN'.

The package, one module per subject, all of it re-exported here (tests use
mjs.NAME): base (coordinates, waits), client (HTTP), sse (event streams), db
(psql), stack (processes), replies (replies and tasks).
"""

from .base import *  # noqa: F401,F403
from .base import url_parts  # noqa: F401
from .client import *  # noqa: F401,F403
from .sse import *  # noqa: F401,F403
from .db import *  # noqa: F401,F403
from .stack import *  # noqa: F401,F403
from .replies import *  # noqa: F401,F403
from . import base  # noqa: F401
