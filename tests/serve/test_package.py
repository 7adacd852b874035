"""The shape of the serve package: routers per concern wired by create_app, no function over 80 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the serve tests need the serve extra (fastapi)")

SERVE = Path(__file__).resolve().parents[2] / "src" / "emocontext" / "serve"
MAX_FUNCTION_LINES = 80


def test_no_function_over_80_lines():
    long = []
    for path in sorted(SERVE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(SERVE)}:{node.lineno} {node.name} ({n} lines)")
    assert not long, long


def test_routes_live_in_their_routers():
    from fastapi.routing import APIRoute

    from emocontext.serve.routes import jobs, meta, predict

    def paths(router):
        return {(r.path, m) for r in router.routes if isinstance(r, APIRoute) for m in r.methods}

    assert paths(predict.router) == {("/v1/predict", "POST"), ("/v1/jobs", "POST")}
    assert {("/v1/jobs", "GET"), ("/v1/jobs/{job_id}", "GET"), ("/v1/jobs/{job_id}", "DELETE")} <= paths(jobs.router)
    assert paths(meta.open_router) >= {("/", "GET"), ("/healthz", "GET"), ("/readyz", "GET")}
    assert paths(meta.keyed_router) == {("/v1/models", "GET"), ("/metrics", "GET")}
    # create_app declares no route itself: every route of the app comes from a router (or the offline docs)
    tree = ast.parse((SERVE / "app.py").read_text())
    decorators = [d for n in ast.walk(tree) if isinstance(n, ast.AsyncFunctionDef) for d in n.decorator_list]
    assert [ast.unparse(d) for d in decorators if "exception_handler" not in ast.unparse(d)] == ["asynccontextmanager"]
