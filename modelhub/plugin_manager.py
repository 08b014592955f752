"""Finding, registering and calling plugins.

Plugins, built-in or not, come from the ``modelhub`` entry-point group. Each is loaded and checked on
its own, so one that fails to import, implements a hook that does not exist or declares a key another
plugin owns is reported (``/api/plugins``, ``modelhub plugins``) and left out, never fatal.
``MODELHUB_LOAD_PLUGINS`` (comma-separated entry-point names) limits which plugins load; set to an
empty string it loads none.
"""

import logging
import os
from dataclasses import dataclass, field
from importlib.metadata import entry_points

import pluggy

from modelhub import hookspecs

log = logging.getLogger(__name__)
GROUP = "modelhub"


@dataclass
class PluginReport:
    """One plugin as ``/api/plugins`` shows it."""

    name: str
    module: str
    distribution: str | None = None
    version: str | None = None
    hooks: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def loaded(self) -> bool:
        return self.error is None


@dataclass
class HookCall:
    """The result of calling one plugin's implementation of a hook (see :meth:`PluginHost.call_each`)."""

    plugin: str
    result: object = None
    error: BaseException | None = None


class PluginHost:
    """A pluggy PluginManager plus what modelhub needs around it: reports and isolated calls."""

    def __init__(self, allow: set[str] | None = None):
        self.pm = pluggy.PluginManager(GROUP)
        self.pm.add_hookspecs(hookspecs)
        self.reports: dict[str, PluginReport] = {}
        self.key_owners: dict[str, str] = {}
        self.fields: dict[str, object] = {}
        self._load_entry_points(allow)

    # ---- registration -------------------------------------------------------------------------

    def _load_entry_points(self, allow: set[str] | None) -> None:
        # One by one rather than pm.load_setuptools_entrypoints(): that stops at the first broken plugin.
        for entry_point in sorted(entry_points(group=GROUP), key=lambda ep: ep.name):
            if allow is not None and entry_point.name not in allow:
                continue
            dist = entry_point.dist
            report = PluginReport(
                name=entry_point.name,
                module=entry_point.value,
                distribution=dist.name if dist else None,
                version=dist.version if dist else None,
            )
            self.reports[entry_point.name] = report
            try:
                self.register(entry_point.load(), entry_point.name)
            except Exception as error:  # noqa: BLE001 - any failure of a plugin is reported, not raised
                report.error = f"{type(error).__name__}: {error}"
                log.error("plugin %s not loaded: %s", entry_point.name, report.error)

    def register(self, plugin, name: str) -> None:
        """Register one plugin and check it; on any problem it is unregistered and the error raised."""
        created = name not in self.reports
        report = self.reports.setdefault(name, PluginReport(name=name, module=getattr(plugin, "__name__", repr(plugin))))
        self.pm.register(plugin, name=name)
        try:
            # A misspelled hook name fails loudly here instead of silently never being called.
            self.pm.check_pending()
            self._take_fields(name)
        except Exception:
            self.pm.unregister(name=name)
            if created:
                del self.reports[name]
            raise
        report.hooks = sorted(hook.name for hook in self.pm.get_hookcallers(plugin) or [])
        report.keys = sorted(key for key, owner in self.key_owners.items() if owner == name)

    def unregister(self, name: str) -> None:
        self.pm.unregister(name=name)
        self.reports.pop(name, None)
        for key in [k for k, owner in self.key_owners.items() if owner == name]:
            del self.key_owners[key]
            del self.fields[key]

    def _take_fields(self, name: str) -> None:
        declared = {}
        for plugin_name, function in self.implementations("load_config_fields"):
            if plugin_name == name:
                declared = function() or {}
        taken = sorted(key for key in declared if key in self.key_owners)
        if taken:
            raise ValueError("load_config keys already owned by another plugin: " +
                             ", ".join(f"{key} ({self.key_owners[key]})" for key in taken))
        for key, declared_field in declared.items():
            self.key_owners[key] = name
            self.fields[key] = declared_field

    # ---- calling ------------------------------------------------------------------------------

    def implementations(self, hook_name: str):
        """``(plugin name, callable taking the hook's keyword arguments)`` in the order pluggy calls them."""
        hook = getattr(self.pm.hook, hook_name)
        for impl in reversed(hook.get_hookimpls()):  # pluggy calls the last registered (and tryfirst) first
            yield self.pm.get_name(impl.plugin), _bind(impl)

    def call_each(self, hook_name: str, **kwargs) -> list[HookCall]:
        """Call every implementation of a hook, each isolated from the others.

        pluggy stops a hook call at the first exception; here one plugin raising does not hide what
        the others return, and the caller learns which plugin returned (or raised) what.
        """
        calls = []
        for name, function in self.implementations(hook_name):
            try:
                calls.append(HookCall(name, result=function(**kwargs)))
            except Exception as error:  # noqa: BLE001 - reported to the caller, attributed to the plugin
                log.warning("plugin %s failed in %s: %s", name, hook_name, error)
                calls.append(HookCall(name, error=error))
        return calls

    @property
    def hook(self):
        return self.pm.hook

    def plugin_reports(self) -> list[PluginReport]:
        return sorted(self.reports.values(), key=lambda r: r.name)


def _bind(impl):
    """A hookimpl may take any subset of the spec's arguments, as with pluggy's own calls."""

    def call(**kwargs):
        return impl.function(**{arg: kwargs[arg] for arg in impl.argnames})

    return call


def allowed_plugins() -> set[str] | None:
    """The names in MODELHUB_LOAD_PLUGINS, or None (load every installed plugin) when it is unset."""
    value = os.environ.get("MODELHUB_LOAD_PLUGINS")
    if value is None:
        return None
    return {name.strip() for name in value.split(",") if name.strip()}


def create_plugin_host() -> PluginHost:
    return PluginHost(allowed_plugins())
