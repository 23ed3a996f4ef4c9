"""The app factory builds an app on the configured database without starting anything else."""

from __future__ import annotations

from service import create_app


def test_app_factory_serves_health_and_index(db_url):
    app = create_app({"DATABASE_URL": db_url, "TESTING": True})
    client = app.test_client()
    assert client.get("/healthz").get_json() == {"status": "ok"}
    page = client.get("/")
    assert page.status_code == 200 and "基层党支部建设标准化" in page.get_data(as_text=True)
