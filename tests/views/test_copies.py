"""Where a model's copies live, on every surface: the API's copies and scan status (each copy's library,
root, the tool's label, GGUF facts; each root with what it holds), the cards' location badges, the
modal's "Copies on disk" with its "Load this copy" buttons, the copy a plain Load reads and "Make default",
and the list of roots beside the scan."""

import html
import re
import socket
import subprocess

import pytest

from modelhub.extensions import db
from modelhub.library_catalogue import LIBRARY_IDS
from modelhub.models import ModelCopy, ScanState
from tests.views.library_copies import GGUF_ONLY, MIB, NAME, OLLAMA_DIGEST, build, record


@pytest.fixture
def libraries(app, tmp_path, monkeypatch):
    libraries = build(tmp_path / "machine")
    monkeypatch.setenv("HOME", str(tmp_path / "machine"))  # the tools' libraries in their default places
    monkeypatch.setenv("HF_HUB_CACHE", str(libraries.hub))
    monkeypatch.setenv("MODELHUB_SECONDARY_CACHE", str(libraries.folder))
    with app.app_context():
        libraries.ids = record(libraries)
    return libraries


def test_the_api_names_each_copys_library_root_and_facts(client, libraries):
    copies = client.get(f"/api/models/{NAME}/copies").json
    assert [c["id"] for c in copies] == libraries.ids[NAME]
    assert [c["library"] for c in copies] == [
        "huggingface", "lmstudio", "lmstudio", "ollama", "text-generation-webui", "folder"]
    hub, q4, q8, ollama, gone, folder = copies
    assert (hub["location"], hub["library_root"], hub["weight_format"]) == ("primary", str(libraries.hub), "safetensors")
    assert hub["aliases"] == [] and hub["parameter_count"] is None
    assert (q4["location"], q4["library_root"]) == ("secondary", str(libraries.lmstudio))
    assert q4["label"] == "TheBloke/TinyLlama-1.1B-Chat-v1.0-GGUF/tinyllama-1.1b-chat-v1.0.Q4_K_M.gguf"
    assert q4["path"].endswith(".Q4_K_M.gguf")  # a GGUF copy is the file itself
    assert (q4["weight_format"], q4["quantization"]) == ("gguf", "GGUF Q4_K_M")
    assert (q4["parameter_count"], q4["context_length"]) == (1_100_048_384, 2048)
    assert q4["aliases"] == [{"path": str(libraries.textgen / "tinyllama-1.1b-chat-v1.0.Q4_K_M.gguf"),
                              "library": "text-generation-webui"}]
    assert (ollama["label"], ollama["digest"]) == ("tinyllama:latest, tinyllama:1.1b", OLLAMA_DIGEST)
    assert gone["missing"] is True and "file_key" not in gone


def test_copies_recorded_before_libraries_were_read_their_library_from_their_location(app, client, libraries):
    with app.app_context():
        model_id = db.session.scalar(db.select(ModelCopy.model_id).where(ModelCopy.id == libraries.ids[GGUF_ONLY][0]))
        db.session.add_all([ModelCopy(model_id=model_id, location=location, path=f"/old/{location}")
                            for location in ("primary", "secondary", "custom")])
        db.session.commit()
    copies = client.get(f"/api/models/{GGUF_ONLY}/copies").json
    assert [(c["location"], c["library"]) for c in copies[1:]] == [
        ("primary", "huggingface"), ("secondary", "folder"), ("custom", "custom")]


def test_the_openapi_document_names_the_library_enum_once(client):
    spec = client.get("/api/openapi.json").json
    schemas = spec["components"]["schemas"]
    assert tuple(schemas["Library"]["enum"]) == LIBRARY_IDS
    copy = schemas["ModelCopy"]["properties"]
    for name in ("id", "library_root", "label", "digest", "parameter_count", "context_length", "aliases"):
        assert name in copy, name
    assert copy["library"] == {"$ref": "#/components/schemas/Library"} or "Library" in str(copy["library"])
    roots = schemas["ScanStatus"]["properties"]["roots"]
    assert "ScanRoot" in str(roots) and "Library" in str(schemas["ScanRoot"]["properties"]["library"])


def badges(text: str) -> list[tuple[str, str, str]]:
    """The card's location badges as (library, formats, state class)."""
    pattern = (r'<li class="badge copy-badge library-[\w-]+ copy-(\w+)"[^>]*><span class="copy-library">([^<]+)</span> '
               r'<span class="copy-formats">([^<]+)</span>')
    return [(html.unescape(library), html.unescape(formats), state) for state, library, formats in re.findall(pattern, text)]


def test_a_card_shows_a_badge_per_library_with_the_formats_there(client, libraries):
    card = client.get(f"/models/{NAME}/card").text
    assert badges(card) == [
        ("HF cache", "safetensors", "present"), ("LM Studio", "GGUF Q4_K_M, Q8_0", "present"),
        ("Ollama", "GGUF Q4_0", "present"), ("text-generation-webui", "GGUF Q5_K_M", "missing"),
        ("Folder", "safetensors", "present")]
    assert "tinyllama:latest, tinyllama:1.1b" in html.unescape(card)  # the badge's hover text: the tool's names
    smol = client.get(f"/models/{GGUF_ONLY}/card").text
    assert badges(smol) == [("LM Studio", "GGUF Q8_0", "present")]
    assert "metric-badge" not in smol  # its quantization, GGUF Q8_0, is said once: by the location badge
    page = client.get("/models").text  # the page's cards: the same partial, the copies read for all at once
    assert badges(page) == [("LM Studio", "GGUF Q8_0", "present"), *badges(card)]  # HuggingFaceTB/... sorts first


def copy_rows(text: str) -> dict[int, str]:
    rows = re.findall(r'<tr class="copy-row copy-(\w+)" data-copy-id="(\d+)"[^>]*>(.*?)</tr>', text, re.S)
    return {int(copy_id): (state, " ".join(html.unescape(re.sub(r"<[^>]+>", " ", row)).split())) for state, copy_id, row in rows}


def test_the_modal_says_where_each_copy_lives_and_offers_to_load_it(client, libraries):
    details = client.get(f"/models/{NAME}/details").text
    rows = copy_rows(details)
    hub, q4, q8, ollama, gone, folder = (rows[i] for i in libraries.ids[NAME])
    # Each row: the library and its root (home written ~), then the path in it (hashes cut, whole on hover).
    assert hub[1].startswith("HF cache primary: ~/hf/hub models--TinyLlama--TinyLlama-1.1B-Chat-v1.0/snapshots/"
                             "a1a1a1a1a1a1… revision a1a1a1a1a1a1 2.1 GiB safetensors LlamaForCausalLM")
    assert q4[1].startswith("LM Studio secondary: ~/.lmstudio/models "
                            "TheBloke/TinyLlama-1.1B-Chat-v1.0-GGUF/tinyllama-1.1b-chat-v1.0.Q4_K_M.gguf also linked")
    assert "638.0 MiB GGUF Q4_K_M 1.1B parameters · 2,048 context llama" in q4[1]
    assert ("also linked from text-generation-webui: "
            "~/text-generation-webui/user_data/models/tinyllama-1.1b-chat-v1.0.Q4_K_M.gguf") in q4[1]
    assert ollama[1].startswith("Ollama secondary: ~/.ollama/models tinyllama:latest, tinyllama:1.1b "
                                "blobs/sha256-5f5f5f5f5f5f… 608.0 MiB GGUF Q4_0")
    assert f'<code title="{libraries.ollama}/blobs/sha256-{"5f" * 32}">' in details
    assert gone == ("missing", gone[1]) and "missing last seen 2026-11-20" in gone[1]
    assert "Folder secondary" in folder[1]
    buttons = re.findall(r'<button type="button" class="small load-copy"\s+hx-post="([^"]+)"', details)
    present = [i for i in libraries.ids[NAME] if i != libraries.ids[NAME][4]]
    assert buttons == [f"/models/{NAME}/copies/{i}/load" for i in present]  # none for the missing copy
    assert all("Load this copy" in row[1] for i, row in rows.items() if i in present)

    (smol,) = copy_rows(client.get(f"/models/{GGUF_ONLY}/details").text).values()
    assert "GGUF Q8_0 135M parameters · 2,048 context" in smol[1]


def test_load_this_copy_refuses_a_missing_copy_and_another_models_copy_on_the_card(client, libraries):
    missing = libraries.ids[NAME][4]
    card = html.unescape(client.post(f"/models/{NAME}/copies/{missing}/load").text)
    assert card.strip().startswith('<li class="model-card"')
    assert f"Copy {missing} of '{NAME}'" in card and "is missing" in card
    other = libraries.ids[GGUF_ONLY][0]
    card = html.unescape(client.post(f"/models/{NAME}/copies/{other}/load").text)
    assert f"has no copy {other}" in card
    assert client.get(f"/api/models/{NAME}/attempts").json["items"] == []  # nothing was started


def used_by_load(text: str) -> list[int]:
    """The rows marked as the copy a plain Load reads."""
    return [int(i) for i in re.findall(r'<tr class="copy-row copy-\w+" data-copy-id="(\d+)" aria-current="true">', text)]


def make_default_buttons(text: str) -> list[str]:
    return re.findall(r'<button type="button" class="small make-default" data-if-match\s+hx-post="([^"]+)"', text)


def test_the_modal_marks_the_copy_load_reads_and_offers_the_others(client, libraries):
    hub, q4, q8, ollama, gone, folder = libraries.ids[NAME]
    details = client.get(f"/models/{NAME}/details").text
    assert used_by_load(details) == [hub]  # the model's cache_path: the HF cache's snapshot
    assert "used by Load" in copy_rows(details)[hub][1] and "Make default" not in copy_rows(details)[hub][1]
    assert make_default_buttons(details) == [f"/models/{NAME}/copies/{i}/primary" for i in (q4, q8, ollama, folder)]
    assert 'id="copies"' in details and 'id="cache-location"' in details


def test_make_default_moves_the_mark_and_gives_the_form_the_new_etag(client, libraries):
    hub, q4, q8, ollama, gone, folder = libraries.ids[NAME]
    etag = client.get(f"/models/{NAME}/details").headers["ETag"]
    response = client.post(f"/models/{NAME}/copies/{q8}/primary", headers={"If-Match": etag, "HX-Request": "true"})
    assert response.status_code == 200
    answer = html.unescape(response.text)
    assert answer.lstrip().startswith('<table class="copies-table" id="copies">')  # the table, swapped in place
    assert used_by_load(answer) == [q8]
    assert make_default_buttons(answer) == [f"/models/{NAME}/copies/{i}/primary" for i in (hub, q4, ollama, folder)]
    label = libraries.copies[NAME][2]["label"]
    assert f'<span class="copies-note" role="status">Load now reads this model from LM Studio: {label}.</span>' in answer
    q8_path = libraries.copies[NAME][2]["path"]
    assert (f'<dd id="cache-location" class="cache-location" hx-swap-oob="true">secondary — <code>{q8_path}</code></dd>'
            in answer)  # the form's Cache Location, out of band
    model = client.get(f"/api/models/{NAME}")
    assert (model.json["cache_location"], model.json["cache_path"]) == ("secondary", q8_path)
    assert response.headers["ETag"] == model.headers["ETag"] != etag  # the form's next Save is guarded by it
    assert set(response.headers["HX-Trigger"].split(", ")) == {"modelsChanged", "primaryCopyChanged"}
    assert used_by_load(client.get(f"/models/{NAME}/details").text) == [q8]
    assert '<span class="cache-location">secondary</span>' in client.get(f"/models/{NAME}/card").text


def test_make_default_refusals_say_why_and_change_nothing(client, libraries):
    hub, q4, q8, ollama, gone, folder = libraries.ids[NAME]
    etag = client.get(f"/models/{NAME}/details").headers["ETag"]
    missing = client.post(f"/models/{NAME}/copies/{gone}/primary", headers={"If-Match": etag})
    assert missing.status_code == 409
    assert f"Not changed: Copy {gone} of {NAME!r}" in html.unescape(missing.text) and "is missing" in missing.text
    assert missing.text.lstrip().startswith('<table class="copies-table" id="copies">')
    assert '<span class="copies-note refused" role="status">' in missing.text
    other = libraries.ids[GGUF_ONLY][0]
    unknown = client.post(f"/models/{NAME}/copies/{other}/primary", headers={"If-Match": etag})
    assert unknown.status_code == 409 and f"has no copy {other}" in html.unescape(unknown.text)

    assert client.patch(f"/api/models/{NAME}/config", json={"compatibility_notes": "someone else"}).status_code == 200
    stale = client.post(f"/models/{NAME}/copies/{q4}/primary", headers={"If-Match": etag})
    assert stale.status_code == 412
    assert (stale.headers["HX-Retarget"], stale.headers["HX-Reswap"]) == ("#model-form", "outerHTML")
    form = html.unescape(stale.text)
    assert form.lstrip().startswith('<form id="model-form"') and "someone else</textarea>" in form  # as it is now
    assert ('<span class="copies-note refused" role="status">Not changed: someone else changed this model since this '
            'form was read.') in form
    assert stale.headers["ETag"] == client.get(f"/api/models/{NAME}").headers["ETag"]
    assert used_by_load(form) == [hub]
    assert client.get(f"/api/models/{NAME}").json["cache_path"] == libraries.copies[NAME][0]["path"]


def finished_scan(app, problems: list[dict]) -> None:
    with app.app_context():
        db.session.add(ScanState(host=socket.gethostname(), state="finished", started_at=1.0, finished_at=2.0,
                                 summary={"added": [], "copies_added": 0, "went_missing": [], "came_back": [],
                                          "problems": problems}))
        db.session.commit()


def test_the_scan_status_lists_each_root_with_what_it_holds(app, client, libraries):
    broken = str(libraries.lmstudio / "someone" / "repo" / "broken.gguf")
    finished_scan(app, [{"path": broken, "message": "not a GGUF file"},
                        {"path": NAME, "message": "model card: unreachable"}])
    roots = {root["root"]: root for root in client.get("/api/scan").json["roots"]}
    assert list(roots)[:2] == [str(libraries.hub), str(libraries.folder)]  # as configured, in the scan's order
    held = {root: (r["library"], r["copies"], r["size_bytes"] // MIB, r["missing"]) for root, r in roots.items()}
    assert held == {
        str(libraries.hub): ("huggingface", 1, 2200, 0),
        str(libraries.folder): ("folder", 1, 2200, 0),
        str(libraries.lmstudio): ("lmstudio", 3, 638 + 1117 + 138, 0),
        str(libraries.ollama): ("ollama", 1, 608, 0),
        str(libraries.textgen): ("text-generation-webui", 0, 0, 1),
    }
    assert [r["linked"] for r in roots.values()] == [0, 0, 0, 0, 1]  # LM Studio's Q4_K_M, hard-linked there
    assert roots[str(libraries.lmstudio)]["problems"] == [{"path": broken, "message": "not a GGUF file"}]
    assert all(r["exists"] for r in roots.values())
    assert sum(len(r["problems"]) for r in roots.values()) == 1  # a model card's problem lies under no root

    fragment = client.get("/scan/status").text
    section = re.search(r'<details class="library-roots">.*?</details>', fragment, re.S).group(0)
    assert client.get("/scan/roots").text.strip() == section  # what the page loads after its first render
    summary = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", section.split("</summary>")[0])).split())
    assert summary == ("Libraries: HF cache 1 · Folder 1 · LM Studio 3 · Ollama 1 · text-generation-webui 0 +1 linked "
                       "(6 copies in 5 places)")
    assert section.count('<tr class="root-row') == 5 and "broken.gguf" in section and "+1 missing" in section


def test_the_roots_come_with_a_scans_end_not_while_it_runs(app, client, libraries):
    """Mid-scan the counts are changing: the status shows progress only (and the page its progress bar)."""
    other = subprocess.Popen(["sleep", "60"])  # another live process of this host scanning
    try:
        with app.app_context():
            db.session.add(ScanState(host=socket.gethostname(), state="running", done=1, total=4, owner_pid=other.pid,
                                     started_at=1.0))
            db.session.commit()
        assert "roots" not in client.get("/api/scan").json
        assert "library-roots" not in client.get("/scan/status").text
    finally:
        other.kill()
        other.wait()
    assert len(client.get("/api/scan").json["roots"]) == 5  # it ended (its process is gone): the roots are back
