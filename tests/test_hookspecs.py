"""Every hook is documented, documented with its real arguments, and tested; docs/plugins.md cannot drift.

The checks read docs/plugins.md as text: a hook's section is a heading of the form
``### `name(arg1, arg2)` ``, the example plugin is the fenced block after the ``example-plugin`` marker,
and the plugin tests the guide shows are the block after the ``plugin-tests`` marker.
"""

import configparser
import importlib.util
import inspect
import re
import sys
from pathlib import Path

import pluggy
import pytest

from modelhub import hookspecs

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
GUIDE = ROOT / "docs" / "plugins.md"
EXAMPLE = TESTS / "plugin_packages" / "modelhub_test_plugins" / "example.py"
HOOK_HEADING = re.compile(r"^### `(\w+)\((.*?)\)`\s*$", re.MULTILINE)


def _spec_functions() -> dict:
    """The hookspecs as pluggy sees them: the module's functions carrying the ``modelhub_spec`` mark."""
    manager = pluggy.PluginManager("modelhub")
    manager.add_hookspecs(hookspecs)
    registered = {name for name, caller in vars(manager.hook).items() if isinstance(caller, pluggy.HookCaller)}
    marked = {name: function for name, function in vars(hookspecs).items()
              if inspect.isfunction(function) and hasattr(function, "modelhub_spec")}
    assert set(marked) == registered
    return marked


SPECS = _spec_functions()


def _guide() -> str:
    return GUIDE.read_text(encoding="utf-8")


def _documented_hooks() -> dict[str, list[str]]:
    headings = {}
    for name, arguments in HOOK_HEADING.findall(_guide()):
        assert name not in headings, f"docs/plugins.md has two sections for {name}"
        headings[name] = [argument.strip() for argument in arguments.split(",") if argument.strip()]
    return headings


def _block_after(marker: str) -> str:
    """The content of the first fenced code block after ``<!-- marker -->`` in the guide."""
    text = _guide()
    start = text.find(f"<!-- {marker}")
    assert start != -1, f"docs/plugins.md has no <!-- {marker} ... --> marker"
    found = re.compile(r"^```python\n(.*?)^```$", re.MULTILINE | re.DOTALL).search(text, start)
    assert found, f"no ```python block after the {marker} marker"
    return found.group(1)


def _test_sources() -> dict[Path, str]:
    """The suite's Python files but this one and the plugin packages (those implement hooks, not test them)."""
    return {path: path.read_text(encoding="utf-8") for path in sorted(TESTS.rglob("*.py"))
            if path.name != Path(__file__).name and "plugin_packages" not in path.parts}


def test_there_are_hooks():
    assert {"load_config_fields", "adjust_load_kwargs", "load_model", "explain_failure"} <= set(SPECS)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_hook_has_a_docstring(name):
    docstring = inspect.getdoc(SPECS[name])
    assert docstring and len(docstring) > 40, f"hookspec {name} needs a docstring saying when it is called and what to return"


@pytest.mark.parametrize("name", sorted(SPECS))
def test_hook_is_documented_with_its_arguments(name):
    documented = _documented_hooks()
    expected = list(inspect.signature(SPECS[name]).parameters)
    assert name in documented, f'docs/plugins.md needs a section headed "### `{name}({", ".join(expected)})`"'
    assert documented[name] == expected, f"docs/plugins.md documents {name}({', '.join(documented[name])}); the spec is {name}({', '.join(expected)})"


def test_guide_documents_no_hook_that_does_not_exist():
    assert sorted(set(_documented_hooks()) - set(SPECS)) == []


@pytest.mark.parametrize("name", sorted(SPECS))
def test_hook_is_exercised_by_a_test(name):
    word = re.compile(rf"\b{name}\b")
    using = [path.relative_to(ROOT) for path, text in _test_sources().items() if word.search(text)]
    assert using, f"no file under tests/ (but the plugin packages) mentions {name}: add a test that calls or checks it"


def test_example_plugin_in_the_guide_is_the_tested_one():
    assert _block_after("example-plugin") == EXAMPLE.read_text(encoding="utf-8"), (
        "docs/plugins.md's example plugin differs from tests/plugin_packages/modelhub_test_plugins/example.py; "
        "copy the file into the guide"
    )


def test_every_python_snippet_in_the_guide_compiles():
    blocks = re.findall(r"^```python\n(.*?)^```$", _guide(), re.MULTILINE | re.DOTALL)
    assert len(blocks) >= len(SPECS)
    for number, block in enumerate(blocks, 1):
        compile(block, f"docs/plugins.md python block {number}", "exec")


def test_guide_lists_every_built_in_plugin():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    built_in = [line.split("=")[0].strip() for line in config["options.entry_points"]["modelhub"].splitlines() if "=" in line]
    section = _guide().split("## The built-in plugins", 1)[1].split("\n## ", 1)[0]
    assert built_in
    assert [name for name in built_in if f"**`{name}`**" not in section] == []


def test_the_guides_plugin_tests_pass(tmp_path, monkeypatch):
    """The "Testing a plugin" example runs, against the example plugin imported as the guide names it."""
    spec = importlib.util.spec_from_file_location("modelhub_example", EXAMPLE)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    monkeypatch.setitem(sys.modules, "modelhub_example", example)
    namespace: dict = {}
    exec(compile(_block_after("plugin-tests"), "docs/plugins.md (plugin tests)", "exec"), namespace)
    tests = {name: function for name, function in namespace.items() if name.startswith("test_") and callable(function)}
    assert len(tests) >= 2
    fixtures = {"tmp_path": tmp_path, "monkeypatch": monkeypatch}
    for function in tests.values():
        function(**{argument: fixtures[argument] for argument in inspect.signature(function).parameters})
