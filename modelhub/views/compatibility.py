"""The details modal's "Where it loads" section (``models/_where_it_loads.html``), re-rendered on its own
while the model loads: a row for this host appears when the load ends."""

from flask import Blueprint, current_app, render_template

from modelhub import compatibility, registry
from modelhub.views.models import load_states

bp = Blueprint("compatibility", __name__)


@bp.route("/models/<path:model_name>/where-it-loads")
def where_it_loads(model_name):
    model = registry.get_model(model_name)
    return render_template("models/_where_it_loads.html", model=model, state=load_states([model])[model.model_name],
                           where_it_loads=compatibility.results(current_app, model))
