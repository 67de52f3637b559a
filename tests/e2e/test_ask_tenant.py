"""A tenant's own book end to end: imported by the CLI, asked about by the CLI, answered by
the real local model with ids from that book only."""

import json

import pytest
from typer.testing import CliRunner

from aimesh.cli import app
from aimesh.config import get_settings
from aimesh.llm.gguf import packaged_gguf_path
from tests.helpers.exports import TELCO_MAP, telco_export

pytestmark = pytest.mark.e2e


@pytest.fixture
def cli_home(tmp_path, default_home, monkeypatch):
    """The CLI's settings: a fresh home, the local model assembled in the user's home."""
    monkeypatch.setenv("AIMESH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AIMESH_GGUF_PATH", str(packaged_gguf_path(default_home)))
    monkeypatch.setenv("AIMESH_PROVIDERS", '["local"]')
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.usefixtures("cli_home")
def test_ask_names_clients_of_the_tenants_own_book(tmp_path):
    book = tmp_path / "clients.csv"
    telco_export().head(1500).to_csv(book, index=False)
    runner = CliRunner()
    maps = [arg for item in TELCO_MAP for arg in ("--map", item)]

    imported = runner.invoke(
        app, ["portfolio", "import", str(book), "--tenant", "acme", *maps, "--wait", "--json"]
    )
    asked = runner.invoke(
        app,
        ["ask", "--tenant", "acme", "--json", "Which of our clients are most likely to churn?"],
    )

    assert imported.exit_code == 0, imported.stdout
    assert json.loads(imported.stdout)["version"] == 1
    assert asked.exit_code == 0, asked.stdout
    result = json.loads(asked.stdout)
    assert result["book"] == {"tenant": "acme", "version": 1, "sample": False}
    ids = [c["client_id"] for call in result["tool_calls"] for c in call["result"]["clients"]]
    assert ids and all(i.startswith("ACME-") for i in ids)
    assert any(i in result["answer"] for i in ids), result["answer"]
