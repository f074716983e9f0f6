"""compose.yaml and the Dockerfile, checked without Docker: what `docker compose up` relies on."""

from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parent.parent


def test_compose_runs_the_service_on_a_healthy_postgres() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    db, catalog = compose["services"]["db"], compose["services"]["catalog"]
    assert db["image"].startswith("postgres:16")
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    volume = db["volumes"][0].split(":")[0]
    assert volume in compose["volumes"]
    assert catalog["depends_on"] == {"db": {"condition": "service_healthy"}}
    environment = catalog["environment"]
    assert "@db:5432/" in environment["DATABASE_URL"]
    assert environment["CALLBACK_KEY"].startswith("${CALLBACK_KEY")
    assert environment["ADMIN_TOKEN"].startswith("${ADMIN_TOKEN")
    assert "8000:8000" in catalog["ports"]


def test_the_image_runs_as_a_user_with_a_healthcheck_and_no_build_tools() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    final_stage = dockerfile.rsplit("\nFROM ", 1)[1]
    assert "COPY --from=build /opt/venv /opt/venv" in final_stage
    assert "\nUSER " in final_stage and "USER root" not in final_stage
    assert "\nHEALTHCHECK " in final_stage and "/readyz" in final_stage
    for tool in ("gcc", "build-essential", "apt-get install"):
        assert tool not in final_stage
