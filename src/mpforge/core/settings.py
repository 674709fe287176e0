"""What a checkout remembers between commands: ``.mpforge/settings.json``.

A user who types ``invoke fetch --mirror M`` once expects ``invoke build
--all`` to use ``M`` too, as ``git remote`` or ``west config`` would: the
mirror given on the command line is written here and used by every later
command in this checkout. The order, first wins:

1. ``--mirror`` on the command line (and then remembered);
2. ``MPFORGE_MIRROR`` in the environment (not remembered: CI sets it per job);
3. ``mpforge.mirror`` in invoke's configuration (``invoke.yaml``, ``~/.invoke.yaml``;
   not remembered either), handed in by :func:`mpforge.cli.options.shared_options`;
4. the remembered mirror.

``--mirror none`` means "no mirror" and forgets the remembered one; an empty
``MPFORGE_MIRROR``, or ``mirror: none`` in the configuration, means "no mirror" for
this command only. The folder is per checkout and ignored by git, so nothing of one
machine's layout ends up in a commit.

The file is state like any other (:mod:`mpforge.core.state`): written atomically (a
flushed, fsync-ed temporary file renamed over it, the folder fsync-ed), and a damaged
one is reported in one warning line naming it, then treated as empty, so a command
never silently forgets the remembered mirror.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from mpforge.core.environment import Environment, environment
from mpforge.core.state import read_json, write_json

#: The folder of per-checkout state that is no build output (ignored by git).
LOCAL_DIR = ".mpforge"
SETTINGS_FILE = "settings.json"
#: What ``--mirror`` takes to mean "no mirror, and forget the remembered one".
NO_MIRROR = ("none", "off", "no")


def settings_path(root: Path) -> Path:
    return root / LOCAL_DIR / SETTINGS_FILE


#: What each known key holds (every value of the file is a string).
EXPECTED = {"mirror": "a string (a mirror folder or URL)"}


def _json_kind(value: object) -> str:
    """``value`` as the user wrote it in JSON, with its JSON type: ``the number 5``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {json.dumps(value)}"
    kind = ("number" if isinstance(value, int | float) else "list" if isinstance(value, list)
            else "object" if isinstance(value, dict) else type(value).__name__)
    shown = json.dumps(value)
    return f"the {kind} {shown if len(shown) <= 40 else shown[:37] + '...'}"


def load(root: Path, warn: Callable[[str], None] | None = None) -> dict[str, str]:
    """The remembered settings. An unreadable or damaged file is said through ``warn``
    in one line naming it, and counts as empty (the next :func:`save` replaces it).
    A value of the wrong type (``{"mirror": 5}``) is one warning line naming the file,
    the key, what it should hold and what it holds, and is ignored (the next
    :func:`save` drops it)."""
    path = settings_path(root)
    data = read_json(path, warn)
    if not isinstance(data, dict):
        return {}
    kept: dict[str, str] = {}
    for key, value in data.items():
        if isinstance(value, str):
            kept[key] = value
        elif warn:
            expected = EXPECTED.get(key, "a string")
            warn(f"{path}: '{key}' should be {expected}, got {_json_kind(value)}; ignored")
    return kept


def save(root: Path, **values: str | None) -> None:
    """Update settings (``None`` removes a key), written atomically and durably."""
    data = load(root)
    for key, value in values.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    path = settings_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, data)


def resolve_mirror(root: Path | None, explicit: str | None, configured: str | None = None, *,
                   env: Environment | None = None, remember: bool = True,
                   warn: Callable[[str], None] | None = None) -> tuple[str | None, str]:
    """The mirror to use and where it came from (``--mirror``, ``MPFORGE_MIRROR``,
    ``invoke config``, ``remembered ...``, ``none``).

    :param root: the checkout (None outside one: nothing is remembered or recalled).
    :param explicit: ``--mirror`` (None or "": not given).
    :param configured: ``mpforge.mirror`` of invoke's configuration (None or "": not set).
    :param env: the parsed environment (default: read now).
    :param remember: False leaves ``settings.json`` alone even for an explicit mirror
        (a ``--dry-run``).
    :param warn: told, in one line, about a damaged ``settings.json``.

    An explicit mirror is remembered for the checkout ``root`` (when known).
    The returned mirror is not normalised: :func:`mpforge.tree.git.normalise_mirror` does that.
    """
    if explicit is not None and explicit != "":
        if explicit.lower() in NO_MIRROR:
            if root is not None and remember:
                save(root, mirror=None)
            return None, "--mirror none"
        if root is not None and remember:
            remembered: str = explicit
            if "://" not in explicit and not explicit.startswith("git@"):
                remembered = str(Path(explicit).expanduser().resolve())
            save(root, mirror=remembered)
        return explicit, "--mirror"
    from_env = (env or environment()).mirror
    if from_env is not None:
        return from_env or None, "MPFORGE_MIRROR"
    if configured:
        if configured.lower() in NO_MIRROR:
            return None, "invoke config mpforge.mirror"
        if "://" not in configured and not configured.startswith("git@") and root is not None:
            # a folder: relative to the checkout, wherever the command runs from
            configured = str((root / Path(configured).expanduser()).resolve())
        return configured, "invoke config mpforge.mirror"
    if root is not None:
        kept = load(root, warn).get("mirror")
        if kept:
            return kept, f"remembered in {LOCAL_DIR}/{SETTINGS_FILE}"
    return None, "none"
