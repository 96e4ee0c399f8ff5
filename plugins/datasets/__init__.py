"""Built-in dataset plugins (registered lazily: nothing is imported until a dataset is loaded)."""

from mmbench.registry import Registry, hookimpl

_PKG = "mmbench.plugins.datasets"


@hookimpl
def mmbench_register_datasets(registry: Registry) -> None:
    registry.add_dataset(
        "synthetic",
        f"{_PKG}.synthetic:SyntheticDataset",
        "Embedded generator: IEMOCAP-shaped presets (redundant/unique/synergy/mixed, alignment, "
        "context) and a sentiment regression preset (--protocol synthetic-regression)",
    )
    registry.add_dataset(
        "mfeat",
        f"{_PKG}.mfeat:MfeatDataset",
        "UCI Multiple Features: 2,000 digits, 6 views, 10 classes (shipped, CC BY 4.0)",
    )
    registry.add_dataset(
        "iemocap",
        f"{_PKG}.iemocap:IemocapDataset",
        "IEMOCAP (your licensed files): reference spreadsheet or DialogueRNN pickle; test = session 5",
    )
    registry.add_dataset(
        "meld",
        f"{_PKG}.meld:MeldDataset",
        "MELD (your files): official CSVs, reference spreadsheet or DialogueRNN pickle; 7 classes",
    )
    registry.add_dataset(
        "table",
        f"{_PKG}.table:TableDataset",
        "Any table (CSV/TSV/xlsx/parquet): label, text and feature columns named by data.* options",
    )
    for name, cls, summary in (
        ("mosi", "MosiDataset", "CMU-MOSI sentiment regression [-3, 3] (your MMSA feature pickle)"),
        ("mosei", "MoseiDataset", "CMU-MOSEI sentiment regression [-3, 3] (your MMSA feature pickle)"),
        ("sims", "SimsDataset", "CH-SIMS sentiment regression [-1, 1] (your MMSA feature pickle)"),
    ):
        registry.add_dataset(name, f"{_PKG}.mmsa:{cls}", summary)
