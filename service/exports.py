"""Spreadsheet and CSV downloads with Chinese headers (openpyxl for .xlsx).

Exports are complete: every row the filters select, read from the database in batches and written
row by row (openpyxl's write-only mode) into a file that is spooled to disk when it grows, so a
company's whole trail exports without holding it in memory.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Sequence
from itertools import chain, islice
from tempfile import SpooledTemporaryFile
from typing import BinaryIO
from urllib.parse import quote

from flask import Response
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ROWS_PER_SHEET = 1_048_575  # Excel's limit less the header row; more rows go on to another sheet
SIZED_BY = 200  # column widths follow the header and the first rows (the file is written as it goes)
IN_MEMORY = 8 * 1024 * 1024  # bytes of export kept in memory before spooling to a temporary file


def _spooled(write: Callable[[BinaryIO], None]) -> SpooledTemporaryFile:
    """A temporary file holding what `write` wrote; the response that sends it closes it."""
    body = SpooledTemporaryFile(IN_MEMORY)  # noqa: SIM115 - closed by `_chunks` once sent
    try:
        write(body)
    except BaseException:
        body.close()
        raise
    return body


def _download(body: SpooledTemporaryFile, mimetype: str, filename: str) -> Response:
    size = body.tell()
    body.seek(0)
    # RFC 5987: Chinese file names need the UTF-8 form; the ASCII fallback keeps old clients working.
    disposition = f"attachment; filename=export; filename*=UTF-8''{quote(filename)}"
    response = Response(_chunks(body), mimetype=mimetype, headers={"Content-Disposition": disposition})
    response.content_length = size
    return response


def _chunks(body: SpooledTemporaryFile, size: int = 64 * 1024):
    try:
        while chunk := body.read(size):
            yield chunk
    finally:
        body.close()


def _text(value) -> object:
    return "" if value is None else value


def xlsx(
    title: str,
    headers: Sequence[str],
    rows: Iterable[Sequence],
    filename: str,
    *,
    rows_per_sheet: int = ROWS_PER_SHEET,
) -> Response:
    """A workbook of every row: bold frozen header on each sheet, columns sized to their content."""
    rows = iter(rows)
    first = [[_text(v) for v in row] for row in islice(rows, SIZED_BY)]
    widths = [len(h) * 2 + 2 for h in headers]
    for values in first:
        widths = [max(w, min(60, len(str(v)) * 2 + 2)) for w, v in zip(widths, values, strict=False)]
    book = Workbook(write_only=True)
    sheet, written, count = None, 0, 0
    for values in chain(first, ([_text(v) for v in row] for row in rows)):
        if sheet is None or written == rows_per_sheet:
            count += 1
            sheet, written = _sheet(book, title if count == 1 else f"{title}（{count}）", headers, widths), 0
        sheet.append(values)
        written += 1
    if sheet is None:
        _sheet(book, title, headers, widths)
    return _download(_spooled(book.save), XLSX, filename)


def _sheet(book: Workbook, title: str, headers: Sequence[str], widths: list[int]):
    sheet = book.create_sheet(title[:31])
    for index, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = width
    sheet.freeze_panes = "A2"
    header = []
    for text in headers:
        cell = WriteOnlyCell(sheet, value=text)
        cell.font = Font(bold=True)
        header.append(cell)
    sheet.append(header)
    return sheet


def csv_file(headers: Sequence[str], rows: Iterable[Sequence], filename: str) -> Response:
    """UTF-8 CSV with a byte-order mark, so Excel on Chinese Windows opens it correctly."""

    def write(body: BinaryIO) -> None:
        text = io.TextIOWrapper(body, encoding="utf-8", newline="")
        text.write("\ufeff")
        writer = csv.writer(text)
        writer.writerow(headers)
        for row in rows:
            writer.writerow([_text(v) for v in row])
        text.flush()
        text.detach()  # leaves `body` open for the response

    return _download(_spooled(write), "text/csv", filename)
