"""A client written from the OpenAPI document alone: `datamodel-code-generator` turns the
document the server serves into pydantic models, and one flow (login → book → get the consult →
find it by a query parameter) is built and parsed with them, each call found in the document by
method and path template, its body and answer the models its operation names."""

from __future__ import annotations

import importlib.util
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlencode

from datamodel_code_generator import DataModelType, InputFileType, generate
from pydantic import BaseModel

from tests.support.server import VALID_INTAKES, RunningServer


def generated_models(document: dict[str, Any], folder: Path) -> ModuleType:
    target = folder / "teleconsult_models.py"
    generate(
        json.dumps(document),
        input_file_type=InputFileType.OpenAPI,
        output=target,
        output_model_type=DataModelType.PydanticV2BaseModel,
        extra_fields="forbid",  # an answer with a field the document does not name fails
        formatters=[],
    )
    spec = importlib.util.spec_from_file_location("teleconsult_models", target)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["teleconsult_models"] = module
    spec.loader.exec_module(module)
    return module


class DocumentClient:
    """Calls the server only as the document describes: the operation, its success status, the
    models of its request and success bodies, and which query parameters it takes."""

    def __init__(self, server: RunningServer, document: dict[str, Any], models: ModuleType):
        self.server = server
        self.document = document
        self.models = models
        self.token: str | None = None

    def _model(self, content: dict[str, Any]) -> type[BaseModel]:
        ref: str = content["application/json"]["schema"]["$ref"]
        model: type[BaseModel] = getattr(self.models, ref.rsplit("/", 1)[1])
        return model

    def call(
        self,
        method: str,
        template: str,
        body: BaseModel | None = None,
        query: dict[str, Any] | None = None,
        **path: str,
    ) -> BaseModel:
        operation = self.document["paths"][template][method.lower()]
        declared = {p["name"]: p for p in operation.get("parameters", [])}
        assert {n for n, p in declared.items() if p["in"] == "path"} == set(path)
        for name in query or {}:
            assert declared[name]["in"] == "query", name
        if body is not None:
            assert isinstance(body, self._model(operation["requestBody"]["content"]))
        url = template.format(**path)
        if query:
            url += "?" + urlencode(query, doseq=True)
        token = self.token if "security" in operation else None
        payload = None if body is None else body.model_dump(mode="json", exclude_none=True)
        reply = self.server.request(method, url, payload, token=token)
        success = next(code for code in operation["responses"] if code.startswith("2"))
        assert reply.status == int(success), reply.body
        return self._model(operation["responses"][success]["content"]).model_validate(reply.body)


def test_a_client_generated_from_the_document_logs_in_books_and_reads_a_consult(
    server: RunningServer, tmp_path: Path
) -> None:
    document = server.request("GET", "/api/openapi.json").body
    m = generated_models(document, tmp_path)
    client = DocumentClient(server, document, m)

    login = client.call(
        "POST",
        "/api/auth/login",
        m.LoginRequest(username="doctor.a", password="demo-doctor.a"),
    )
    assert isinstance(login, m.LoginOut)
    client.token = login.token

    booked = client.call(
        "POST",
        "/api/consults",
        m.BookConsultRequest(
            patient=m.PatientIn(name="Generated Client", sex=m.Sex.female, age_years=41),
            specialty=m.Specialty.cardiology,
            reason="a client generated from the OpenAPI document",
            scheduled_at=datetime.now(UTC) + timedelta(hours=1),
            intake=VALID_INTAKES.get("cardiology", {}),
        ),
    )
    assert isinstance(booked, m.ConsultOut)
    assert booked.status == m.ConsultStatus.requested

    fetched = client.call("GET", "/api/consults/{consult_id}", consult_id=booked.id)
    assert isinstance(fetched, m.ConsultOut)
    assert fetched.id == booked.id
    assert fetched.patient.name == "Generated Client"

    listed = client.call("GET", "/api/consults", query={"status": ["requested", "accepted"]})
    assert isinstance(listed, m.ConsultListOut)
    assert booked.id in {c.id for c in listed.consults}
