"""Which copy a verdict was for, in the details modal: each row of "Where it loads" names the copy its
newest result read ("GGUF Q4_0, LM Studio", where it is and its path on hover), and "Will it load here?"
says which copy it checked and checks another one picked in its "Check copy" select (the section again,
through htmx, with the editor's text). One tiny Qwen2 that a real scan finds in the HF cache (safetensors),
LM Studio (Q4_0) and Ollama (Q8_0): tests/library_machine.py."""

import html
import os
import re

import pytest

from modelhub import registry
from modelhub.loading import attempts
from modelhub.preflight import host as host_facts
from tests.discovery.test_scan_api import scan
from tests.library_machine import NAME, library_machine, scanned_copies  # noqa: F401  (a fixture)
from tests.test_compatibility import on_host

GIB = 2**30
SECTION = f"/models/{NAME}/preflight"
COPY_READ = re.compile(r'<span class="copy-read" data-copy-id="(\d*)"\s+title="([^"]*)">(.*?)</span>(?=\s*(?:<br>|</p>))', re.S)


@pytest.fixture
def copies(app, client, library_machine):  # noqa: F811
    """The model's copies after a scan, by library, checked against a 4 GiB worker memory limit."""
    app.config["MODELHUB_WORKER_MEMORY_LIMIT"] = 4 * GIB
    host_facts.forget(app)
    copies = scanned_copies(client)
    with app.app_context():
        yield copies


def loaded(path, outcome="success"):
    """A finished attempt on the model, in the current environment, that read the copy at ``path``."""
    return attempts.finish(attempts.begin(registry.get_model(NAME), copy_path=path).id, outcome)


def copy_reads(text: str) -> list[tuple[str, str, str]]:
    """Each copy named in ``text`` as (its id, its hover text, what it says), unescaped, tags dropped."""
    return [(copy_id, html.unescape(title), html.unescape(re.sub(r"<[^>]+>", "", shown)).strip())
            for copy_id, title, shown in COPY_READ.findall(text)]


def where_rows(client) -> dict[str, str]:
    """The modal's "Where it loads" rows by host."""
    page = client.get(f"/models/{NAME}/details").text
    section = page.split('id="where-it-loads"', 1)[1].split("</section>", 1)[0]
    rows = section.split('<tr class="where-row')[1:]
    return {re.search(r'<span class="where-environment">([\w-]+) · ', row).group(1): row for row in rows}


def section_of(text: str) -> str:
    return re.search(r'<section class="form-section preflight" id="preflight".*?</section>', text, re.S).group(0)


def options(section: str) -> list[tuple[str, str, bool]]:
    """The "Check copy" select's options as (value, text, selected)."""
    select = re.search(r'<select id="preflight-copy-\d+" name="copy_id".*?</select>', section, re.S)
    if select is None:
        return []
    return [(value, html.unescape(text), bool(selected)) for value, selected, text in re.findall(
        r'<option value="(\d*)" title="[^"]*"( selected)?>([^<]*)</option>', select.group(0))]


def checked(section: str) -> tuple[str, str, str]:
    """The copy the section says it checked: (its id, its hover text, what it says)."""
    line = re.search(r'<p class="hint preflight-copy">Checked: (.*?)</p>', section, re.S).group(0)
    (found,) = copy_reads(line)
    return found


# Where it loads ---------------------------------------------------------------------------------------


def test_each_environments_row_names_the_copy_its_newest_result_read(app, client, copies, tmp_path, monkeypatch):
    lmstudio, hub = copies["lmstudio"], copies["huggingface"]
    gone = str(tmp_path / "deleted" / "tiny-qwen2.Q5_0.gguf")
    for host, path, outcome in (("laptop", lmstudio["path"], "success"), ("desktop", hub["path"], "failure"),
                                ("workstation", gone, "success"), ("server", None, "success")):
        on_host(app, host, monkeypatch)
        loaded(path, outcome)
    rows = where_rows(client)
    assert copy_reads(rows["laptop"]) == [(
        str(lmstudio["id"]), f"LM Studio: {NAME}/tiny-qwen2.Q4_0.gguf\n{lmstudio['path']}", "GGUF Q4_0, LM Studio")]
    ((copy_id, title, text),) = copy_reads(rows["desktop"])
    assert (copy_id, text) == (str(hub["id"]), "safetensors, HF cache") and "status-incompatible" in rows["desktop"]
    assert title.startswith("HF cache: models--tiny-org--qwen2/snapshots/") and title.endswith(f"\n{hub['path']}")
    # A path none of the model's copies holds now: the path alone. An attempt that recorded none: nothing.
    assert copy_reads(rows["workstation"]) == [("", gone, gone)]
    assert "copy-read" not in rows["server"]
    # The row's copy comes before the config that ran (none saved: the system defaults).
    laptop = rows["laptop"]
    assert laptop.index("status-compatible") < laptop.index("GGUF Q4_0, LM Studio") < laptop.index("system defaults")
    # The section's own fragment (polled while a load runs) says the same.
    fragment = client.get(f"/models/{NAME}/where-it-loads").text
    assert sorted(copy_reads(fragment)) == sorted(read for row in rows.values() for read in copy_reads(row))


def test_a_row_whose_copy_went_missing_says_so(app, client, copies, library_machine, monkeypatch):  # noqa: F811
    on_host(app, "laptop", monkeypatch)
    loaded(copies["ollama"]["path"])
    assert copy_reads(where_rows(client)["laptop"])[0][2] == "GGUF Q8_0, Ollama"
    library_machine.blob.unlink()
    assert scan(client)["state"] == "finished"
    row = where_rows(client)["laptop"]
    assert copy_reads(row) == [(str(copies["ollama"]["id"]), f"Ollama: hf.co/{NAME}:Q8_0\n{copies['ollama']['path']}",
                                "GGUF Q8_0, Ollama (missing)")]
    assert '<span class="copy-read-missing">(missing)</span>' in row


# Will it load here? -----------------------------------------------------------------------------------


def test_the_section_says_which_copy_it_checked_and_offers_the_others(client, copies):
    section = section_of(client.get(f"/models/{NAME}/details").text)
    hub, lmstudio, ollama = copies["huggingface"], copies["lmstudio"], copies["ollama"]
    assert options(section) == [("", "safetensors, HF cache (default)", True),
                                (str(lmstudio["id"]), "GGUF Q4_0, LM Studio", False),
                                (str(ollama["id"]), "GGUF Q8_0, Ollama", False)]
    select = re.search(r"<select [^>]*>", section).group(0)
    for attribute in (f'hx-get="{SECTION}"', 'hx-trigger="change"', 'hx-target="#preflight"', 'hx-swap="outerHTML"',
                      'hx-include="#field-load_config"', 'hx-params="load_config,copy_id"', "data-preflight"):
        assert attribute in select, attribute
    assert '<label for="preflight-copy-' in section and ">Check copy:</label>" in section
    copy_id, title, text = checked(section)
    assert (copy_id, text) == (str(hub["id"]), "safetensors, HF cache") and title.endswith(f"\n{hub['path']}")
    # Under the verdict, before what it was computed for.
    assert section.index('data-verdict="fits"') < section.index("Checked: ") < section.index("For the saved load config")


def test_each_copy_offered_is_the_copy_then_checked(client, copies):
    """The round trip the select makes: each option's value, sent as copy_id with the editor's text (here
    empty, as the saved config is: still the saved config), checks that copy and keeps it selected."""
    offered = options(section_of(client.get(f"/models/{NAME}/details").text))
    assert len(offered) == 3
    for value, text, _ in offered:
        response = client.get(SECTION, query_string={"copy_id": value, "load_config": ""})
        assert response.status_code == 200, response.text
        section = response.text
        assert [option[0] for option in options(section) if option[2]] == [value]
        assert checked(section)[0] == (value or str(copies["huggingface"]["id"]))
        assert checked(section)[2] == text.removesuffix(" (default)")
        assert "For the saved load config" in section and 'data-verdict="fits"' in section
    lmstudio = client.get(SECTION, query_string={"copy_id": copies["lmstudio"]["id"]}).text
    weights = re.search(r'<tr data-term="weights">.*?</tr>', lmstudio, re.S).group(0)
    assert "dequantized from GGUF Q4_0 to float32" in weights  # that file's header was what was read


def test_a_copy_picked_while_a_config_is_being_typed_checks_both(client, copies):
    ollama = copies["ollama"]
    section = client.get(SECTION, query_string={"copy_id": ollama["id"], "load_config": '{"dtype": "float16"}'}).text
    assert "For the load config being edited (not saved yet)" in section
    assert checked(section)[2] == "GGUF Q8_0, Ollama"
    assert client.patch(f"/api/models/{NAME}/config", json={"load_config": '{"dtype": "float16"}'}).status_code == 200
    # The editor sends its text with every pick: the text that is saved is checked as the saved config.
    section = client.get(SECTION, query_string={"copy_id": ollama["id"], "load_config": '{"dtype":"float16"}'}).text
    assert "For the saved load config" in section and checked(section)[2] == "GGUF Q8_0, Ollama"


def test_a_config_that_cannot_be_checked_keeps_the_copy_picked(client, copies):
    lmstudio = copies["lmstudio"]
    response = client.get(SECTION, query_string={"copy_id": lmstudio["id"], "load_config": '{"dtype": '})
    assert response.status_code == 422
    assert "The load config being edited cannot be checked" in response.text and "Invalid JSON" in response.text
    assert [option for option in options(response.text) if option[2]] == [(str(lmstudio["id"]), "GGUF Q4_0, LM Studio", True)]


@pytest.mark.parametrize("wrong, message", [
    ("999999", f"{NAME!r} has no copy 999999; its copies"),
    ("abc", "copy_id: Not a valid integer."),
    ("-3", "copy_id: Must be greater than or equal to 1."),
])
def test_a_copy_that_is_none_of_the_models_is_said_in_place_of_the_verdict(client, copies, wrong, message):
    response = client.get(SECTION, query_string={"copy_id": wrong})
    assert response.status_code == 422  # static/js/modelhub.js swaps a 422 section in
    section = response.text.strip()
    assert section.startswith('<section class="form-section preflight" id="preflight"') and "<html" not in section
    assert "The copy chosen cannot be checked:" in section and "Choose another copy to check." in section
    assert message in html.unescape(section)
    assert "data-verdict" not in section and "Checked: " not in section
    assert len(options(section)) >= 3  # the user picks another from where the section is
    if wrong == "999999":
        assert options(section)[-1] == ("999999", "Copy 999999 (not one of this model's)", True)


def test_a_copy_gone_missing_since_the_modal_was_read_is_said_in_place(client, copies, library_machine):  # noqa: F811
    ollama = copies["ollama"]
    os.remove(library_machine.blob)
    # Not scanned since: on record as present, not on disk. Never another copy's files in its place.
    section = client.get(SECTION, query_string={"copy_id": ollama["id"]}).text
    assert 'data-verdict="unknown"' in section and "The copy asked for is not on disk now" in section
    assert checked(section)[2] == "GGUF Q8_0, Ollama"

    assert scan(client)["state"] == "finished"  # now the registry knows it is missing
    response = client.get(SECTION, query_string={"copy_id": ollama["id"]})
    assert response.status_code == 422
    assert "The copy chosen cannot be checked:" in response.text
    assert f"Copy {ollama['id']} of {NAME!r} ({ollama['path']}) is missing" in html.unescape(response.text)
    assert options(response.text)[-1] == (str(ollama["id"]), "GGUF Q8_0, Ollama (missing)", True)
    # Opened again, the modal no longer offers it.
    assert [text for _, text, _ in options(section_of(client.get(f"/models/{NAME}/details").text))] == [
        "safetensors, HF cache (default)", "GGUF Q4_0, LM Studio"]


def test_a_model_with_one_copy_or_none_has_nothing_to_choose(client, copies):
    assert client.post("/api/models", json={"model_name": "acme/single", "cache_location": "custom",
                                            "cache_path": copies["lmstudio"]["path"]}).status_code == 201
    section = client.get("/models/acme/single/preflight").text
    assert options(section) == [] and "Check copy" not in section
    assert checked(section)[2].startswith("GGUF Q4_0")
    assert client.post("/api/models", json={"model_name": "acme/nowhere"}).status_code == 201
    section = client.get("/models/acme/nowhere/preflight").text
    assert options(section) == [] and "Checked: " not in section and 'data-verdict="unknown"' in section
