"""The data files' model: every key of ``ports/*.toml``, ``toolchains/*.toml`` and an app's
``mpforge.toml`` and of invoke.yaml's ``mpforge:`` section, declared once with its type
and its doc, and loaded by one loader.

Layout:

:mod:`~mpforge.core.model.base`        the strict scalar types and the table decorator
:mod:`~mpforge.core.model.ports`       ``ports/<port>.toml``
:mod:`~mpforge.core.model.toolchains`  ``toolchains/<name>.toml`` and ``host-tools.toml``
:mod:`~mpforge.core.model.app`         an app folder's ``mpforge.toml``
:mod:`~mpforge.core.model.settings`    the ``mpforge:`` section of invoke's configuration
:mod:`~mpforge.core.model.loader`      reading a file safely, validating it, one-line errors
:mod:`~mpforge.core.model.defs`        the typed objects the rest of mpforge uses (``PortDef``...)
:mod:`~mpforge.core.model.catalog`     every file together, the references between them checked
:mod:`~mpforge.core.model.schemas`     the JSON Schemas of ``schemas/`` (``invoke schemas``)

Why pydantic (v2): the same class that validates a file also writes its JSON Schema
(``schemas/*.schema.json``, which editors and ``check-jsonschema`` read), so the editor's
view of a key can never drift from the loader's; its types are strict where we ask
(``"12"`` is no integer, ``12`` no string, a string no list), and every error carries the
exact location (``make.post[0]``), which :mod:`~mpforge.core.model.loader` turns into one
line naming file, key, expected and got. msgspec validates as strictly and faster, but
its schemas carry no per-key docs from attribute docstrings and its errors give a path
string to parse; loading a dozen small files is not where speed matters.

Why pydantic *dataclasses*: the tables the code uses as they are (``FlashDef``,
``SourceDef``, ``ArtifactDef`` ...) stay dataclasses (positional construction,
:func:`dataclasses.replace`), and are the model at the same time.
"""
