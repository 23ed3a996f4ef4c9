"""The Flask application: thin request handlers over `workflows`."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, abort, jsonify, render_template

from workflows import ical, overview
from workflows.clock import clock_from_env
from workflows.db import database_url, make_engine, make_session_factory


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Application factory. No scheduler starts here; it has its own entry point."""
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(DATABASE_URL=database_url(), CLOCK=clock_from_env())
    if config:
        app.config.from_mapping(config)
    engine = make_engine(app.config["DATABASE_URL"])
    app.extensions["zhibu.sessions"] = make_session_factory(engine)

    @app.get("/healthz")
    def healthz():
        return jsonify(status="ok")

    @app.get("/")
    def index():
        with app.extensions["zhibu.sessions"]() as session:
            now = app.config["CLOCK"].now()
            return render_template("overview.html", branches=overview.company(session, now))

    @app.get("/calendar/<token>.ics")
    def calendar_feed(token: str):
        with app.extensions["zhibu.sessions"]() as session:
            username = ical.owner(session, token)
            if username is None:
                abort(404)
            body = ical.feed(session, username)
        return Response(body, mimetype="text/calendar", headers={"Cache-Control": "private, max-age=300"})

    return app
