"""Writing export files row by row, so memory stays flat however many rows there are.

CSV: UTF-8 with a byte-order mark (Excel on Windows reads a BOM-less file in the local code
page and garbles Chinese), comma-separated, CRLF line ends (RFC 4180). A text cell that a
spreadsheet would take for a formula (``= + - @``, tab, CR at the start) gets a leading
apostrophe, so a nickname like ``=HYPERLINK(...)`` stays text (OWASP "CSV injection").

XLSX: XlsxWriter in ``constant_memory`` mode, which writes each row to a temporary file as
soon as the next begins and keeps no shared-string table. Strings are always written as text
(never turned into numbers, formulas or links). A sheet holds at most 1,048,576 rows; larger
exports continue on "<title> 2", "<title> 3" ..., each with the header.
"""

from __future__ import annotations

import csv
from pathlib import Path

import xlsxwriter

XLSX_MAX_ROWS = 1_048_576
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CONTENT_TYPES = {
    "csv": "text/csv",  # Werkzeug adds "; charset=utf-8" to text types
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def _as_text(cell) -> str:
    if cell is None:
        return ""
    if isinstance(cell, str) and cell.startswith(FORMULA_STARTS):
        return "'" + cell
    return str(cell)


class CsvFile:
    def __init__(self, path: Path, *, headers: tuple[str, ...], title: str):
        self._file = open(path, "w", newline="", encoding="utf-8-sig")  # noqa: SIM115
        self._csv = csv.writer(self._file)
        self._csv.writerow(headers)

    def write(self, cells: tuple) -> None:
        self._csv.writerow([_as_text(cell) for cell in cells])

    def close(self) -> None:
        self._file.close()


class XlsxFile:
    def __init__(self, path: Path, *, headers: tuple[str, ...], title: str,
                 rows_per_sheet: int = XLSX_MAX_ROWS):
        self._book = xlsxwriter.Workbook(str(path), {
            "constant_memory": True, "tmpdir": str(path.parent),
            "strings_to_numbers": False, "strings_to_formulas": False,
            "strings_to_urls": False})
        self._bold = self._book.add_format({"bold": True})
        self._headers, self._title = headers, title
        self._rows_per_sheet = rows_per_sheet
        self._sheets = 0
        self._new_sheet()

    def _new_sheet(self) -> None:
        self._sheets += 1
        name = self._title if self._sheets == 1 else f"{self._title} {self._sheets}"
        self._sheet = self._book.add_worksheet(name)
        self._sheet.freeze_panes(1, 0)
        for column, header in enumerate(self._headers):
            self._sheet.write_string(0, column, header, self._bold)
        self._row = 1

    def write(self, cells: tuple) -> None:
        if self._row >= self._rows_per_sheet:
            self._new_sheet()
        sheet, row = self._sheet, self._row
        for column, cell in enumerate(cells):
            if cell is None:
                continue
            if isinstance(cell, int):
                sheet.write_number(row, column, cell)
            else:
                sheet.write_string(row, column, cell)
        self._row = row + 1

    def close(self) -> None:
        self._book.close()


WRITERS = {"csv": CsvFile, "xlsx": XlsxFile}
