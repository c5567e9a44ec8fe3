"""The league dashboard: a Streamlit app over a league store (installed as ``marl_arena_dashboard``).

``marl-arena dashboard <league dir>`` runs ``streamlit run`` on ``APP`` with the directory
in ``LEAGUE_DIR_ENV`` (and ``READ_ONLY_ENV`` set for ``--read-only``). Importing this package
does not import Streamlit.
"""

import pathlib

APP = pathlib.Path(__file__).resolve().with_name("app.py")
"""The app's entry script, what ``streamlit run`` takes."""

LEAGUE_DIR_ENV = "MARL_ARENA_LEAGUE_DIR"
"""The environment variable that names the league directory to show."""

READ_ONLY_ENV = "MARL_ARENA_DASHBOARD_READ_ONLY"
"""Set to ``1``, the app leaves out every page that writes to the store (Play), for a dashboard
that people other than the league's owner can reach."""

SERVER_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
"""Thread settings the server starts with unless the caller's environment sets them: the
dashboard's linear algebra is small (a 200-player Bradley-Terry fit), and a multithreaded BLAS
on small matrices on a busy machine is many times slower (a 200x200 solve: 0.2 ms on one
thread, 6.6 ms on two with the other core busy)."""
