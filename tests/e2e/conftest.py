"""Shared fixtures for the end-to-end tests: where the sglc binary, the default model and the
shared test data are. Tests run from the repository root (make e2e)."""
import json
import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SHARED = pathlib.Path(os.environ.get("SGLC_SHARED", ROOT.parent / "shared"))
TESTDATA = SHARED / "testdata"
STORIES = TESTDATA / "models" / "stories260K"


@pytest.fixture(scope="session")
def sglc_bin():
    path = os.environ.get("SGLC_BIN", str(ROOT / "build" / "sglc"))
    if not os.path.exists(path):
        pytest.skip(f"sglc binary not built at {path}")
    return path


@pytest.fixture(scope="session")
def default_model():
    path = os.environ.get("SGLC_MODEL")
    if not path:
        path = subprocess.run([str(ROOT / "scripts" / "fetch_model.sh")], check=True,
                              capture_output=True, text=True).stdout.strip()
    return path


def run(args, **kw):
    """Runs sglc with a time limit, returning the CompletedProcess (text mode)."""
    return subprocess.run(args, capture_output=True, text=True, timeout=kw.pop("timeout", 300), **kw)


def sglc_ids(sglc_bin, tj, texts, tmp_path):
    """Token ids of each text by `sglc tokenize --input-file` (one process for all of them)."""
    inp = tmp_path / "in.jsonl"
    inp.write_text("".join(json.dumps(t) + "\n" for t in texts), encoding="utf-8")
    out = subprocess.run([sglc_bin, "tokenize", "--model-path", str(tj), "--input-file", str(inp)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]
