"""The build-level outputs every build path writes: ``out_dir/manifest.json`` and ``out_dir/report.html``."""

from __future__ import annotations

from edgekd.report.html import write_html
from edgekd.report.manifest import build_manifest, write_manifest


def write_outputs(matrix, data, teacher, teacher_info, loss, settings, shared, command, html: bool = True) -> None:
    """Write the manifest (and the HTML report) of ``matrix``; sets its ``manifest`` and paths."""
    matrix.manifest = build_manifest(matrix, data=data, teacher=teacher, teacher_info=teacher_info, loss=loss,
                                     settings=settings, shared=shared, command=command)
    matrix.manifest_path = write_manifest(matrix.manifest, matrix.out_dir)
    if html:
        matrix.html_path = write_html(matrix, matrix.out_dir / "report.html")
