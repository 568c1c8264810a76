"""The offline verifier on documents that are not exports: one clear problem, never a crash."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tenantry.audit.manager import AuditLog
from tenantry.audit.notes import CheckpointSigner
from tenantry.audit.schemas import AuditEntry
from tenantry.audit.verifier import EXPORT_FORMAT, MAX_MISSING, verify_export
from tenantry.cli.audit import audit_app
from tenantry.db.engine import Database
from tests.conftest import NewTenant

SIGNER = CheckpointSigner.generate()
KEYS = [k.encode() for k in SIGNER.verifiers()]

VALID_SHAPE: dict[str, Any] = {
    "format": EXPORT_FORMAT,
    "tenant": "acme-records",
    "origin": "o",
    "entries": [],
    "checkpoints": [],
    "consistency_proofs": [],
    "keys": [],
}


def broken(**changes: Any) -> dict[str, Any]:
    document = copy.deepcopy(VALID_SHAPE)
    for key, value in changes.items():
        if value is None:
            document.pop(key)
        else:
            document[key] = value
    return document


@pytest.mark.parametrize(
    ("document", "says"),
    [
        ([], "a JSON array, not an object"),
        ("export", "a JSON string, not an object"),
        (7, "a JSON number, not an object"),
        (None, "a JSON null, not an object"),
        ({"tenant": "x"}, "it has no format"),
        (broken(format="tenantry-audit-export/0"), "the format 'tenantry-audit-export/0'"),
        (broken(entries={"0": {}}), "entries: "),
        (broken(entries=[1]), "entries.0: should be a JSON object"),
        (broken(entries=[{"index": "zero"}]), "entries.0.index"),
        (broken(checkpoints=[{"tree_size": -1, "root_hash": "", "note": ""}]), "tree_size"),
        (broken(checkpoints=[{"tree_size": "8", "root_hash": "", "note": ""}]), "tree_size"),
        (broken(checkpoints=[{"tree_size": 8}]), "checkpoints.0.root_hash"),
        (broken(consistency_proofs=[{"old_size": 1, "new_size": 2, "path": "ab"}]), "path"),
        (broken(keys="ed25519+key"), "keys"),
    ],
)
def test_a_malformed_document_is_one_format_problem(document: object, says: str) -> None:
    report = verify_export(document)
    assert not report.ok
    assert [p.kind for p in report.problems] == ["format"]
    assert says in report.problems[0].message
    assert report.problems[0].message.startswith(f"not a {EXPORT_FORMAT} document")


def test_an_export_without_keys_needs_trusted_ones() -> None:
    report = verify_export(broken(keys=None))
    assert [(p.kind, p.message) for p in report.problems] == [
        ("keys", "the export names no verifier keys: pass the keys you trust (--key, keys=)")
    ]
    assert verify_export(broken(keys=None), keys=KEYS).ok


async def test_a_real_export_without_its_keys_verifies_with_trusted_ones(
    db: Database, new_tenant: NewTenant
) -> None:
    audit = AuditLog(db, signer=SIGNER)
    tenant = (await new_tenant("verify")).id
    await audit.append_many(tenant, [AuditEntry(actor="u", action="a:b", resource="r")] * 3)
    await audit.checkpoint(tenant)
    data = await audit.export(tenant)
    del data["keys"]
    assert [p.kind for p in verify_export(data).problems] == ["keys"]
    assert verify_export(data, keys=KEYS).ok


def verify_file(tmp_path: Path, content: str | bytes, *args: str) -> tuple[int, str]:
    path = tmp_path / "export.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    result = CliRunner().invoke(audit_app, ["verify", "--file", str(path), *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("[]", "[format] -: not a tenantry-audit-export/1 document: a JSON array, not an object"),
        ('"x"', "a JSON string, not an object"),
        (json.dumps(broken(keys=None)), "[keys] -: the export names no verifier keys"),
        (json.dumps(broken(entries=[[]])), "entries.0: should be a JSON object"),
    ],
)
def test_the_cli_reports_a_malformed_export_and_exits_1(
    tmp_path: Path, content: str, says: str
) -> None:
    code, output = verify_file(tmp_path, content)
    assert code == 1
    assert output.startswith("FAILED: tenant ")
    assert says in output
    assert "Traceback" not in output


@pytest.mark.parametrize("content", ["{not json", b"\xff\xfe\x00garbage", "[" * 100_000])
def test_the_cli_says_a_file_that_is_not_json_is_no_export(
    tmp_path: Path, content: str | bytes
) -> None:
    code, output = verify_file(tmp_path, content)
    assert code == 1
    assert output.startswith("error: ")
    assert "is not a JSON audit export" in output
    assert len(output.splitlines()) == 1


def test_the_cli_verifies_an_export_without_keys_given_trusted_ones(tmp_path: Path) -> None:
    code, output = verify_file(tmp_path, json.dumps(broken(keys=None)), "--key", KEYS[0])
    assert code == 0, output
    assert output.startswith("OK: tenant acme-records")


def test_a_forged_index_far_ahead_is_reported_without_allocating_the_gap() -> None:
    """An entry claiming index 10**15 once made the verifier allocate a placeholder per skipped
    position (32 PB); past MAX_MISSING missing entries it stops and says so."""
    document = broken(entries=[{"index": 0}, {"index": 10**15}, {"index": 10**15 + 1}])
    report = verify_export(document, keys=KEYS)
    assert not report.ok
    assert [p.kind for p in report.problems][-1] == "missing"
    assert f"more than {MAX_MISSING:,} missing entries" in report.problems[-1].message
    assert report.size == 1
