"""``GET /api/health``: whether this server answers, for the page's connection banner
(static/js/connection.js retries it while the server cannot be reached) and for monitors.

Cheap on purpose: it reads and writes nothing (no database, no lock), so a browser polling it while the
server comes back costs nothing, and it answers without the token (``security.OPEN_ENDPOINTS``): a
monitor, or a page not signed in, can tell "up" from "down" without being able to read the registry.
"""

from flask.views import MethodView
from marshmallow import Schema, fields

from modelhub.api.http import Blueprint

blp = Blueprint("health", __name__, url_prefix="/api", description="Whether the server answers.")


class HealthSchema(Schema):
    status = fields.String(required=True, metadata={"description": "Always \"ok\": the server answered."})


@blp.route("/health")
class Health(MethodView):
    @blp.doc(operationId="getHealth")
    @blp.response(200, HealthSchema)
    def get(self):
        """Answers 200 while the server runs. Never cached: each call reaches the server."""
        return {"status": "ok"}, 200, {"Cache-Control": "no-store"}
