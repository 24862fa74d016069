"""Chat intake: a small transformer that turns trader chat into canonical RFQ parses.

``IntentParser`` (:mod:`ml.intent.model`) is the entry point; :mod:`ml.intent.labels` holds the
intents (an API contract) and span tags, :mod:`ml.intent.normalise` the deterministic step
after the model, :mod:`ml.intent.generate` the synthetic training chat.
"""
