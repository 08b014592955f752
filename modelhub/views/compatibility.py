"""The details modal's "Where it loads" section (``models/_where_it_loads.html``), re-rendered on its own
while the model loads (a row for this host appears when the load ends) or while another host has yet to
take up a load asked of it; and that asking: "Load on" another host sharing the registry."""

from flask import Blueprint, current_app, render_template, request

from modelhub import compatibility, registry
from modelhub.exceptions import HostJobConflict, UnknownHost
from modelhub.loading import host_jobs
from modelhub.views.models import load_states

bp = Blueprint("compatibility", __name__)


@bp.route("/models/<path:model_name>/where-it-loads")
def where_it_loads(model_name):
    return _section(model_name)


@bp.post("/models/<path:model_name>/load-on-host")
def load_on_host(model_name):
    """Queue the load for the host the form names; that host's modelhub picks it up within seconds."""
    host = request.form.get("host", "")
    try:
        job = host_jobs.request_load(model_name, host)
    except (UnknownHost, HostJobConflict) as refusal:
        return _section(model_name, message=str(refusal))
    return _section(model_name, message=f"Asked {host} to load it (job {job['id']}); its row here changes when "
                                        "that load ends.")


def _section(model_name: str, message: str | None = None):
    model = registry.get_model(model_name)
    return render_template("models/_where_it_loads.html", model=model, state=load_states([model])[model.model_name],
                           where_it_loads=compatibility.results(current_app, model),
                           **host_jobs.offered(model), where_message=message)
