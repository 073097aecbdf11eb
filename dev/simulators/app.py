"""The one Flask app that mounts every dialect plus the /_sim admin API.

Every provider's base URL is this app's root, so each dialect module owns
exactly the paths its documentation gives (they do not collide).
"""

from __future__ import annotations

import importlib
import logging

from flask import Flask

from .common import DirectiveError, SimState, google_error

# Imported by name so a dialect module that is still being written cannot break
# the others; order only matters for readability of `flask routes`.
DIALECT_MODULES = ["litellm_gemini", "gemini", "vertex", "newapi", "genaipro", "flow"]

log = logging.getLogger("veo-sim")


def create_app() -> Flask:
    app = Flask("veo_sim", static_folder=None)
    app.extensions["veo_sim"] = SimState()
    # Bodies carry base64 images; the default limit (none) is fine, but do not let
    # Flask sort or pretty-print JSON: clients should see the documented order.
    app.json.sort_keys = False
    app.json.compact = True

    @app.errorhandler(DirectiveError)
    def bad_directive(exc: DirectiveError):
        return google_error(400, str(exc))

    from . import admin
    app.register_blueprint(admin.bp)
    from . import push
    app.register_blueprint(push.bp)
    for name in DIALECT_MODULES:
        try:
            module = importlib.import_module(f".{name}", __package__)
        except ModuleNotFoundError as exc:
            if exc.name != f"{__package__}.{name}":
                raise
            log.warning("dialect module %s not present, skipped", name)
            continue
        app.register_blueprint(module.bp)
    return app
