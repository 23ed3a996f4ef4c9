"""gunicorn settings for production, read from here when gunicorn starts in this folder:
`gunicorn 'service:create_app()'` (from elsewhere: `gunicorn -c /path/to/gunicorn.conf.py ...`).

Each setting can be changed by the environment variable named below, or on gunicorn's command line.
The master stays small (it never imports the app), so `kill -HUP` starts workers on new code.
Metrics: every worker writes its counters to `PROMETHEUS_MULTIPROC_DIR` (default instance/prometheus;
its files are removed when gunicorn starts), so a scrape of any worker sees them all; a dead worker's
live gauges are dropped. Logs: JSON lines on stderr; zhibu writes its own request line (with request id
and user) instead of gunicorn's access log.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

# Set before any worker imports prometheus_client: it picks per-process files over memory at import time.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(Path.cwd() / "instance" / "prometheus"))

# service/logs.py by its path: importing the `service` package would load the whole app into the master.
_logs_spec = importlib.util.spec_from_file_location(
    "zhibu_logs", Path(__file__).parent / "service" / "logs.py"
)
_logs = importlib.util.module_from_spec(_logs_spec)
_logs_spec.loader.exec_module(_logs)

bind = os.environ.get("ZHIBU_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("ZHIBU_WORKERS", str(2 * (os.cpu_count() or 1))))
worker_class = "sync"  # a step is CPU and one database round trip at a time: processes, not threads
timeout = int(os.environ.get("ZHIBU_WORKER_TIMEOUT", "60"))
graceful_timeout = 30
# The proxy's addresses: gunicorn takes X-Forwarded-Proto from them only (and the app X-Forwarded-For).
forwarded_allow_ips = os.environ.get("ZHIBU_FORWARDED_ALLOW_IPS", "127.0.0.1")
accesslog = None
logconfig_dict = _logs.dict_config()


def on_starting(server) -> None:
    """Counters start at zero: the files of a previous run (not of running processes) are removed."""
    folder = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink(missing_ok=True)


def child_exit(server, worker) -> None:
    """A worker that ended (or was killed) keeps its counters in the sum; its live gauges go."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
