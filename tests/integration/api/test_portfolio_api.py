"""Client books over HTTP: two tenants with two real books, a third on the sample; imports
all or nothing; scores that are exactly what the agents' tools return."""

import httpx
import pytest

from aimesh.context import Context
from aimesh.tools.churn import client_churn_risk, top_churn_risks
from tests.helpers.api import Running, ServeWith, wait_book
from tests.helpers.exports import (
    ATTRITION_MAPPING,
    TELCO_MAP,
    attrition_export,
    csv_bytes,
    telco_export,
)

pytestmark = pytest.mark.parametrize("backend", ["servers"], indirect=True)


async def import_telco(client: httpx.AsyncClient) -> httpx.Response:
    files = {"file": ("clients.csv", csv_bytes(telco_export()), "text/csv")}
    return await client.post("/portfolio/imports", files=files, data={"map": TELCO_MAP})


async def test_two_tenants_get_answers_from_their_own_books_and_a_third_the_sample(
    api: Running,
) -> None:
    acme = api.client(await api.key("acme"))
    beta = api.client(await api.key("beta"))
    gamma = api.client(await api.key("gamma"))
    async with acme, beta, gamma:
        imported = await import_telco(acme)
        assert imported.status_code == 202, imported.text
        assert imported.json()["info"]["version"] == 1
        rows = attrition_export().to_dict(orient="records")
        body = {"mapping": ATTRITION_MAPPING, "rows": rows}
        assert (await beta.post("/portfolio/imports", json=body)).status_code == 202

        acme_view, beta_view = await wait_book(acme, 1), await wait_book(beta, 1)
        info = acme_view["versions"][0]["info"]
        assert info["label"] == {"column": "Churn Flag", "positives": 1869, "negatives": 5174}
        churn = next(m for m in info["models"] if m["model"] == "churn")
        assert 0.8 < churn["metrics"]["roc_auc"] < 0.9  # Telco: 0.834-0.85 published
        beta_churn = next(
            m for m in beta_view["versions"][0]["info"]["models"] if m["model"] == "churn"
        )
        assert 0.75 < beta_churn["metrics"]["roc_auc"] < 0.9  # reference LightGBM 0.812

        for client, prefix in ((acme, "ACME-"), (beta, "EMP-")):
            risks = (await client.get("/portfolio/churn-risks", params={"limit": 20})).json()
            assert risks["sample"] is False and risks["book_version"] == 1
            assert all(c["client_id"].startswith(prefix) for c in risks["clients"])
        sample = (await gamma.get("/portfolio/churn-risks")).json()
        assert sample["sample"] is True and sample["book_version"] == 0
        assert all(c["client_id"].startswith("C") for c in sample["clients"])
        assert (await gamma.get("/portfolio")).json()["sample"] is True

        # ids resolve only in their own book
        assert (await acme.get("/portfolio/clients/EMP-0001/churn")).status_code == 404
        assert (await beta.get("/portfolio/clients/ACME-00001/churn")).status_code == 404
        assert (await beta.get("/portfolio/clients/EMP-0001")).json()["values"]["Age"] == 41


async def test_the_scoring_api_returns_what_the_tools_return(api: Running) -> None:
    async with api.client(await api.key("acme")) as acme:
        assert (await import_telco(acme)).status_code == 202
        await wait_book(acme, 1)
        book = await api.app.state.services.portfolios.book("acme")
        runtime = type("Runtime", (), {"context": Context(book=book)})()

        over_http = (await acme.get("/portfolio/clients/ACME-00042/churn")).json()
        _, artifact = client_churn_risk.func(runtime, client_id="ACME-00042")
        assert over_http == artifact

        params = {"limit": 7, "offset": 3, "filter": ["contract=Month-to-month"]}
        over_http = (await acme.get("/portfolio/churn-risks", params=params)).json()
        _, artifact = top_churn_risks.func(
            runtime, limit=7, offset=3, filters=["contract=Month-to-month"]
        )
        assert over_http == artifact
        assert all(c["client_id"].startswith("ACME-") for c in over_http["clients"])


async def test_a_bad_import_names_the_column_and_stores_nothing(api: Running) -> None:
    async with api.client(await api.key("acme")) as acme:
        export = telco_export()
        export.loc[9, "account_id"] = "ACME-00003"
        files = {"file": ("clients.csv", csv_bytes(export), "text/csv")}
        refused = await acme.post("/portfolio/imports", files=files, data={"map": TELCO_MAP})
        assert refused.status_code == 422
        assert "ACME-00003" in refused.text
        missing = {"mapping": {"client_id": "nope"}, "rows": [{"id": "a"}]}
        refused = await acme.post("/portfolio/imports", json=missing)
        assert refused.status_code == 422 and "nope" in refused.text
        view = (await acme.get("/portfolio")).json()
        assert view["versions"] == [] and view["sample"] is True


async def test_delete_removes_the_book_and_the_sample_answers_again(api: Running) -> None:
    async with api.client(await api.key("acme")) as acme:
        rows = attrition_export().head(300).to_dict(orient="records")
        body = {"mapping": {"client_id": "ref"}, "rows": rows}  # no outcomes: no churn model
        assert (await acme.post("/portfolio/imports", json=body)).status_code == 202
        view = await wait_book(acme, 1)
        churn = next(m for m in view["versions"][0]["info"]["models"] if m["model"] == "churn")
        assert churn["status"] == "unavailable"
        assert churn["detail"] == "no churn outcomes: 300 rows, 0 labelled"
        refused = await acme.get("/portfolio/churn-risks")
        assert refused.status_code == 409 and "no churn outcomes" in refused.text
        assert (await acme.delete("/portfolio")).status_code == 204
        assert (await acme.get("/portfolio/churn-risks")).json()["sample"] is True
        assert (await acme.delete("/portfolio")).status_code == 404


async def test_without_the_sample_a_tenant_without_a_book_is_told_to_import(
    serve_with: ServeWith,
) -> None:
    async with serve_with(sample_book=False) as api, api.client(await api.key()) as client:
        refused = await client.get("/portfolio/churn-risks")
        view = (await client.get("/portfolio")).json()
    assert refused.status_code == 404
    assert "import your client book first" in refused.json()["detail"]
    assert view["current_version"] is None and view["sample"] is False


async def test_an_upload_over_its_limit_gets_413_and_stores_nothing(serve_with: ServeWith) -> None:
    async with serve_with(max_upload_bytes=4096) as api, api.client(await api.key()) as client:
        files = {"file": ("clients.csv", csv_bytes(telco_export().head(200)), "text/csv")}
        refused = await client.post("/portfolio/imports", files=files, data={"map": TELCO_MAP})
        view = (await client.get("/portfolio")).json()
    assert refused.status_code == 413
    assert view["versions"] == []
