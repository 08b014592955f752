"""Symlinks in a model folder must stay in it (or, for a hub-cache snapshot, in its repo's blobs).

modelhub reads a registered folder's config.json, README.md, .eval_results/, tokenizer and weights, and
shows what it found. A folder copied from somewhere else can hold a link such as ``README.md ->
~/.ssh/id_ed25519`` or ``config.json -> /etc/shadow``: registering it would make modelhub read a file
the user never chose. So a custom cache path is refused when any link inside it resolves outside:

- the folder itself (after resolving the path the user gave: a link *to* the folder is the user's choice);
- for a hub-cache snapshot, ``.../models--org--name/snapshots/REV``, also the repo folder
  ``models--org--name`` (its ``blobs/``, where huggingface_hub's relative links lead) and a shared blob
  store ``blobs/`` beside it.

Broken links that would lead outside count as leading outside. ``.git`` is not entered (nothing there is
read), every other subfolder is; a folder with more than MAX_ENTRIES entries is not a model folder.
"""

import os

MAX_ENTRIES = 10_000
NOT_ENTERED = frozenset({".git"})


class TooManyEntries(ValueError):
    pass


def allowed_roots(directory: str) -> list[str]:
    """The real paths a link inside ``directory`` may lead to."""
    real = os.path.realpath(directory)
    roots = [real]
    snapshots = os.path.dirname(real)
    repo = os.path.dirname(snapshots)
    if os.path.basename(snapshots) == "snapshots" and os.path.basename(repo).startswith("models--"):
        roots += [repo, os.path.join(os.path.dirname(repo), "blobs")]
    return roots


def links_leading_out(directory: str) -> list[tuple[str, str]]:
    """``[(path inside the folder, where it really leads), ...]`` for each link leading outside.
    Raises OSError when a folder cannot be listed, TooManyEntries past MAX_ENTRIES."""
    roots = allowed_roots(directory)
    outside, seen, pending = [], 0, [(directory, "")]
    while pending:
        path, prefix = pending.pop()
        with os.scandir(path) as entries:
            for entry in entries:
                seen += 1
                if seen > MAX_ENTRIES:
                    raise TooManyEntries(f"holds more than {MAX_ENTRIES:,} files and folders")
                if entry.is_symlink():
                    target = os.path.realpath(entry.path)
                    if not any(_inside(target, root) for root in roots):
                        outside.append((prefix + entry.name, target))
                elif entry.is_dir(follow_symlinks=False) and entry.name not in NOT_ENTERED:
                    pending.append((entry.path, f"{prefix}{entry.name}/"))
    return sorted(outside)


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)
