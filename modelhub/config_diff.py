"""What changed between two versions of a load_config, for people: the keys added, removed and changed
(compared as parsed JSON, nested objects key by key), and the text diff of the two texts as saved.

A load_config is stored as the text the user saved (``None``: the system defaults, which count as no
keys). Old texts are history and are not re-checked: one that is not a JSON object has no key diff,
only its text diff.
"""

import difflib
import json
from dataclasses import dataclass, field

from modelhub import strict_json


@dataclass(frozen=True)
class ConfigDiff:
    added: list = field(default_factory=list)  # {"key", "value"}
    removed: list = field(default_factory=list)  # {"key", "value"}
    changed: list = field(default_factory=list)  # {"key", "from", "to"}
    text: str = ""  # a unified diff of the texts, "" when they are the same
    comparable: bool = True  # False when a text is not a JSON object (no key diff then)

    @property
    def only_formatting(self) -> bool:
        """The texts differ but say the same (spacing, key order)."""
        return self.comparable and bool(self.text) and not (self.added or self.removed or self.changed)


def diff(before: str | None, after: str | None) -> ConfigDiff:
    """The difference from ``before`` to ``after`` (``None``: the system defaults)."""
    text = _text_diff(before, after)
    old, new = _parsed(before), _parsed(after)
    if old is None or new is None:
        return ConfigDiff(text=text, comparable=False)
    added, removed, changed = [], [], []
    _compare(old, new, "", added, removed, changed)
    return ConfigDiff(added, removed, changed, text)


def _compare(old: dict, new: dict, prefix: str, added: list, removed: list, changed: list) -> None:
    for key in new.keys() - old.keys():
        added.append({"key": prefix + key, "value": new[key]})
    for key in old.keys() - new.keys():
        removed.append({"key": prefix + key, "value": old[key]})
    for key in old.keys() & new.keys():
        if isinstance(old[key], dict) and isinstance(new[key], dict):
            _compare(old[key], new[key], f"{prefix}{key}.", added, removed, changed)
        elif not _same(old[key], new[key]):
            changed.append({"key": prefix + key, "from": old[key], "to": new[key]})
    for found in (added, removed, changed):
        found.sort(key=lambda entry: entry["key"])


def _same(a, b) -> bool:
    # 1 and 1.0 and true are different settings to a loader; compare them as JSON writes them.
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _parsed(text: str | None) -> dict | None:
    if text is None or not text.strip():
        return {}
    try:
        value = strict_json.loads(text)
    except (strict_json.JsonError, ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _text_diff(before: str | None, after: str | None) -> str:
    if (before or "") == (after or ""):
        return ""
    lines = difflib.unified_diff((before or "").splitlines(), (after or "").splitlines(),
                                 "before", "after", lineterm="", n=2)
    return "\n".join(lines)
