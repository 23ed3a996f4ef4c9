"""Spreadsheet and CSV downloads with Chinese headers (openpyxl for .xlsx)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from urllib.parse import quote

from flask import Response
from openpyxl import Workbook
from openpyxl.styles import Font

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _download(body: bytes, mimetype: str, filename: str) -> Response:
    # RFC 5987: Chinese file names need the UTF-8 form; the ASCII fallback keeps old clients working.
    disposition = f"attachment; filename=export; filename*=UTF-8''{quote(filename)}"
    return Response(body, mimetype=mimetype, headers={"Content-Disposition": disposition})


def xlsx(title: str, headers: Sequence[str], rows: Iterable[Sequence], filename: str) -> Response:
    """A one-sheet workbook: bold header row, frozen, columns sized to their content."""
    book = Workbook()
    sheet = book.active
    sheet.title = title[:31]
    sheet.append(list(headers))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    widths = [len(h) * 2 + 2 for h in headers]
    for row in rows:
        values = ["" if v is None else v for v in row]
        sheet.append(values)
        widths = [max(w, min(60, len(str(v)) * 2 + 2)) for w, v in zip(widths, values, strict=False)]
    for index, width in enumerate(widths, start=1):
        sheet.column_dimensions[sheet.cell(row=1, column=index).column_letter].width = width
    sheet.freeze_panes = "A2"
    buffer = io.BytesIO()
    book.save(buffer)
    return _download(buffer.getvalue(), XLSX, filename)


def csv_file(headers: Sequence[str], rows: Iterable[Sequence], filename: str) -> Response:
    """UTF-8 CSV with a byte-order mark, so Excel on Chinese Windows opens it correctly."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(headers)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    return _download(("\ufeff" + buffer.getvalue()).encode("utf-8"), "text/csv", filename)
