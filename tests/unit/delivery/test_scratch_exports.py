"""An export written to scratch space (``durable=False``, what the delivery service
does before storing it in the vault) is the same export, byte for byte."""

from __future__ import annotations

from pathlib import Path

from fairtrain.delivery import ExportDescription, ExportItem, export_dataset, verify_export


def test_a_scratch_export_has_the_same_files_and_manifest(
    tmp_path: Path, items: list[ExportItem], description: ExportDescription
) -> None:
    durable = export_dataset(items, description, tmp_path / "durable")
    scratch = export_dataset(items, description, tmp_path / "scratch", durable=False)
    assert scratch == durable
    assert verify_export(tmp_path / "scratch").ok
    for entry in durable["files"]:
        assert (tmp_path / "scratch" / entry["path"]).read_bytes() == (
            tmp_path / "durable" / entry["path"]
        ).read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["durable", "scratch"]
