"""OpenLIT, initialised once for the session on the app's provider.

``openlit.init()`` fetches its price table from the network unless given one: the tests
give it a local table that knows gpt-4o-mini (at its published prices, per 1K tokens) and
no other model, so both of OpenLIT's cases are seen: a cost it computed, and the
``gen_ai.usage.cost = 0`` it writes for a model it cannot price.
"""

from __future__ import annotations

import json

import openlit
import pytest

from support.matrix import MatrixApp

OPENLIT_PRICES = {
    "chat": {
        "gpt-4o-mini": {
            "promptPrice": 0.00015,
            "completionPrice": 0.0006,
            "cacheReadPrice": 0.000075,
        }
    },
    "embeddings": {},
    "images": {},
    "audio": {},
}


@pytest.fixture(scope="session", autouse=True)
def openlit_on(app: MatrixApp, tmp_path_factory: pytest.TempPathFactory) -> None:
    prices = tmp_path_factory.mktemp("openlit") / "pricing.json"
    prices.write_text(json.dumps(OPENLIT_PRICES))
    openlit.init(
        pricing_json=str(prices),
        disable_metrics=True,
        disable_events=True,
        capture_message_content=False,
    )
