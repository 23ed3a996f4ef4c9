"""gunicorn settings for production, read from here when gunicorn starts in this folder:
`gunicorn 'service:create_app()'` (from elsewhere: `gunicorn -c /path/to/gunicorn.conf.py ...`).

Each setting can be changed by the environment variable named below, or on gunicorn's command line.
Metrics: every worker writes its counters to `PROMETHEUS_MULTIPROC_DIR` (default instance/prometheus,
emptied at start), so a scrape of any worker sees them all; a dead worker's live gauges are dropped.
Logs: JSON lines on stderr; zhibu writes its own request line (with request id and user) instead of
gunicorn's access log.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

# Before anything imports prometheus_client (it picks per-process files over memory at import time): a
# fresh folder for this run, so counters start at zero and nothing of a previous run adds up.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(Path.cwd() / "instance" / "prometheus"))
shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True)

from service import logs  # noqa: E402  (after the folder is set)

bind = os.environ.get("ZHIBU_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("ZHIBU_WORKERS", str(2 * (os.cpu_count() or 1))))
worker_class = "sync"  # a step is CPU and one database round trip at a time: processes, not threads
timeout = int(os.environ.get("ZHIBU_WORKER_TIMEOUT", "60"))
graceful_timeout = 30
# The proxy in front (nginx) sets X-Forwarded-*; trust it from these addresses (README, "Deploying").
forwarded_allow_ips = os.environ.get("ZHIBU_FORWARDED_ALLOW_IPS", "127.0.0.1")
accesslog = None
logconfig_dict = logs.dict_config()


def child_exit(server, worker) -> None:
    """A worker that ended (or was killed) keeps its counters in the sum; its live gauges go."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
