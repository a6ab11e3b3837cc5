"""Every table a command writes reads back, with the standard csv reader, into exactly the rows of its JSON twin."""

import csv
import json
from pathlib import Path

from ufm.runio import csv_cell


def assert_table_reads_back(folder: Path) -> list[dict]:
    rows = json.loads((folder / "table.json").read_text())
    with open(folder / "table.csv", newline="") as f:
        read = list(csv.DictReader(f))
    assert len(read) == len(rows)
    header = list(dict.fromkeys(key for row in rows for key in row))
    for written, back in zip(rows, read):
        assert None not in back, f"a row longer than the header: {back[None]}"  # DictReader's spill-over key
        assert list(back) == header
        assert back == {h: csv_cell(written.get(h)) for h in header}
        for h, value in written.items():
            if isinstance(value, list):
                assert json.loads(back[h]) == value
            elif isinstance(value, float):
                assert float(back[h]) == value
    return read
