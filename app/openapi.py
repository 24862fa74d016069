"""The OpenAPI document, rendered deterministically (committed in openapi/openapi.json)."""

from __future__ import annotations

import json

from app.config import Settings
from app.main import create_app


def render_openapi() -> str:
    app = create_app(Settings(background_tasks=False, log_json=False))
    return json.dumps(app.openapi(), indent=2, sort_keys=True) + "\n"
