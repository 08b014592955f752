"""The application factory."""

import atexit

from flask import Flask

from modelhub import config_history  # noqa: F401 (its session listener records every load_config change)
from modelhub.database import MigrationCommands, configure_connections, engine_options, upgrade_database
from modelhub.autoconfigure.runner import AutoconfigureRunner
from modelhub.discovery.service import ScanRunner
from modelhub.extensions import db
from modelhub.loading.retest import RetestRunner
from modelhub.loading.supervisor import Supervisor
from modelhub.paths import resource_dir
from modelhub.plugin_manager import create_plugin_host
from modelhub.settings import base_config


def create_app(test_config: dict | None = None, *, web: bool = True) -> Flask:
    """Build the modelhub web app. ``test_config`` overrides the environment and the defaults.
    ``web=False`` leaves out what only answers requests (the checks every request passes, the pages and
    the API, the connection pool): the app a command line works with, built without importing them."""
    app = Flask(
        __name__,
        template_folder=str(resource_dir("templates")),
        static_folder=str(resource_dir("static")),
    )
    app.config.from_mapping(base_config())
    if test_config:
        app.config.from_mapping(test_config)
    app.config.setdefault(
        "SQLALCHEMY_ENGINE_OPTIONS",
        engine_options(app.config["SQLALCHEMY_DATABASE_URI"], pooled=web),
    )
    app.json.sort_keys = False

    app.extensions["modelhub.plugins"] = create_plugin_host()
    db.init_app(app)
    with app.app_context():
        configure_connections(app, db.engine)
    if web:
        # Imported here, not at the top: with the views, a fifth of a second a command line does without.
        from modelhub.security import install as install_security

        install_security(app)  # first: its checks run before any other request hook
        _register_views(app)
    _start_services(app)
    app.cli.add_command(MigrationCommands())  # `flask --app modelhub.app db ...`
    if app.config["MODELHUB_AUTO_UPGRADE"]:
        upgrade_database(app)
    return app


def _start_services(app: Flask) -> None:
    """The scan runner, the loader's supervisor, the retest and auto-configure runners: no thread or process
    until first used."""
    app.extensions["modelhub.scanner"] = ScanRunner(app)
    supervisor = Supervisor(app, app.extensions["modelhub.plugins"])
    app.extensions["modelhub.supervisor"] = supervisor
    app.extensions["modelhub.retest"] = RetestRunner(app)
    app.extensions["modelhub.autoconfigure"] = AutoconfigureRunner(app)
    atexit.register(supervisor.shutdown)


def _register_views(app: Flask) -> None:
    # Imported here, not at the top: an app for a command line (web=False) has no views.
    from modelhub.errors import ModelhubApi
    from modelhub import views
    from modelhub.api.card_scores import blp as card_scores_api
    from modelhub.api.compatibility import blp as compatibility_api
    from modelhub.api.http import ModelNameConverter, SchemaKeywords, add_etag, model_name_parameter
    from modelhub.api.discovery import blp as discovery_api
    from modelhub.api.exchange import blp as exchange_api
    from modelhub.api.health import blp as health_api
    from modelhub.api.loading import blp as loading_api
    from modelhub.api.measuring import blp as measuring_api
    from modelhub.api.models import blp as models_api
    from modelhub.api.openapi import OpenApiRules
    from modelhub.api.preflight import blp as preflight_api
    from modelhub.api.autoconfigure import blp as autoconfigure_api

    app.url_map.converters["model_name"] = ModelNameConverter
    rules = OpenApiRules(app.extensions["modelhub.plugins"].fields)
    api = ModelhubApi(app, spec_kwargs={"extra_plugins": [SchemaKeywords(), rules]})
    api.register_converter(ModelNameConverter, model_name_parameter)
    api.register_blueprint(models_api)
    api.register_blueprint(loading_api)
    api.register_blueprint(discovery_api)
    api.register_blueprint(card_scores_api)
    api.register_blueprint(measuring_api)
    api.register_blueprint(exchange_api)
    api.register_blueprint(compatibility_api)
    api.register_blueprint(preflight_api)
    api.register_blueprint(autoconfigure_api)
    api.register_blueprint(health_api)
    app.register_blueprint(views.bp)
    app.after_request(add_etag)
