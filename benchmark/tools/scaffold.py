"""``mmbench new-plugin``: write a pip-installable plugin package (fusion, dataset or encoder).

Naming (one plugin name gives all the others, so a package never shadows another import):

* registered name and entry-point name: the name as given, e.g. ``my-fusion``;
* distribution (what ``pip`` installs): ``mmbench-my-fusion``;
* import package: ``mmbench_my_fusion`` under ``src/``;
* folder: ``./my-fusion`` unless ``--output`` says otherwise.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path
from string import Template
from typing import Any

from mmbench.errors import UsageError

KINDS = ("fusion", "dataset", "encoder")
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$")
MAX_NAME_LENGTH = 40

_IMPL = {"fusion": "fusion", "dataset": "dataset", "encoder": "encoder"}
_CONFORMANCE = {
    "fusion": "FusionConformance",
    "dataset": "DatasetConformance",
    "encoder": "EncoderConformance",
}
_SUMMARY = {
    "fusion": "MLP over pooled, concatenated modalities (scaffold: edit me)",
    "dataset": "Small generated three-class data (scaffold: replace with a loader)",
    "encoder": "Signed hashed bag of words over raw text (scaffold: edit me)",
}


@dataclass(frozen=True)
class PluginNames:
    """Every name derived from the plugin name and kind (see the module docstring)."""

    name: str
    kind: str
    distribution: str
    module: str
    class_name: str
    impl_module: str
    register_hook: str
    add_method: str
    conformance: str
    summary: str

    @property
    def test_file(self) -> str:
        return f"tests/test_{self.module}.py"


def plugin_names(name: str, kind: str) -> PluginNames:
    """Validate ``name`` and ``kind`` and derive the package names; ``UsageError`` if invalid."""
    if kind not in KINDS:
        raise UsageError(f"--kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if not NAME_PATTERN.match(name or "") or len(name) > MAX_NAME_LENGTH:
        raise UsageError(
            f"invalid plugin name {name!r}: use lowercase letters, digits and single '-' or '_' "
            f"between them, starting with a letter, at most {MAX_NAME_LENGTH} characters "
            "(e.g. my-fusion)"
        )
    if name == "mmbench" or name.startswith(("mmbench-", "mmbench_")):
        raise UsageError(
            f"invalid plugin name {name!r}: leave out the 'mmbench-' prefix, it is added to the "
            f"distribution name (e.g. {name.removeprefix('mmbench').strip('-_') or 'my-fusion'})"
        )
    snake = name.replace("-", "_")
    module = f"mmbench_{snake}"  # the pattern and the prefix make it a valid, non-keyword identifier
    camel = "".join(part.capitalize() for part in re.split(r"[-_]", name))
    suffix = kind.capitalize()
    class_name = camel if camel.endswith(suffix) else camel + suffix
    return PluginNames(
        name=name,
        kind=kind,
        distribution=f"mmbench-{name.replace('_', '-')}",
        module=module,
        class_name=class_name,
        impl_module=_IMPL[kind],
        register_hook=f"mmbench_register_{kind}s",
        add_method=f"add_{kind}",
        conformance=_CONFORMANCE[kind],
        summary=_SUMMARY[kind],
    )


def _mmbench_version() -> str:
    from mmbench import __version__

    return __version__


def render(names: PluginNames, text: bool = False) -> dict[str, str]:
    """The package's files: relative path -> text. ``text`` (datasets only) adds a raw-text modality."""
    from mmbench.tools import scaffold_templates as t

    if text and names.kind != "dataset":
        raise UsageError(f"--text is for --kind dataset (a raw-text example), not --kind {names.kind}")
    values: dict[str, Any] = asdict(names)
    values["text_constants"] = t.TEXT_CONSTANTS if text else ""
    values["text_field"] = t.TEXT_FIELD if text else ""
    values["text_encoder"] = t.TEXT_ENCODER if text else ""
    values["text_build"] = t.TEXT_BUILD if text else ""
    values["mmbench_version"] = _mmbench_version()
    is_dataset = names.kind == "dataset"
    values["package_data"] = t.PACKAGE_DATA.substitute(values) if is_dataset else ""
    values["usage"] = Template(t.USAGE[names.kind]).substitute(values)
    values["protocol_row"] = (
        f"\n| `src/{names.module}/protocol.yaml` | the dataset's default protocol |" if is_dataset else ""
    )
    impl = {"fusion": t.FUSION, "dataset": t.DATASET, "encoder": t.ENCODER}[names.kind]
    files = {
        "pyproject.toml": t.PYPROJECT.substitute(values),
        "README.md": t.README.substitute(values),
        f"src/{names.module}/__init__.py": t.INIT.substitute(values),
        f"src/{names.module}/{names.impl_module}.py": impl.substitute(values),
        names.test_file: t.TESTS[names.kind].substitute(values),
    }
    if is_dataset:
        files[f"src/{names.module}/protocol.yaml"] = t.DATASET_PROTOCOL.substitute(values)
    return files


def check_free(names: PluginNames, registry: Any) -> None:
    """Refuse a name the registry already has for this kind (the new plugin would be ignored)."""
    if names.name in registry.names(names.kind):
        entry = registry.get(names.kind, names.name)
        raise UsageError(
            f"a {names.kind} named {names.name!r} is already registered (by plugin {entry.plugin}); "
            "choose another name"
        )


def generate(
    name: str,
    kind: str,
    output: Path | None = None,
    force: bool = False,
    registry: Any | None = None,
    text: bool = False,
) -> tuple[Path, PluginNames, list[Path]]:
    """Write the plugin package into ``output`` (default ``./NAME``); returns folder, names, files.

    An existing non-empty folder is refused unless ``force``, which overwrites the generated
    files and leaves other files alone. With ``registry``, a name already registered is refused.
    ``text`` (datasets): the generated data also has a raw-text modality, encoded by TF-IDF.
    """
    from mmbench.records import atomic_write_text

    names = plugin_names(name, kind)
    if registry is not None:
        check_free(names, registry)
    target = Path(output) if output is not None else Path.cwd() / name
    if target.exists() and not target.is_dir():
        raise UsageError(f"--output {target} exists and is not a folder")
    if target.is_dir() and any(target.iterdir()) and not force:
        raise UsageError(f"--output {target} exists and is not empty; use --force to overwrite its files")
    written = []
    files = render(names, text)  # refuses --text for other kinds before anything is written
    for rel, content in files.items():
        path = target / rel
        atomic_write_text(path, content)
        written.append(path)
    return target, names, written
