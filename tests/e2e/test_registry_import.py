"""`linkage registry import`: good rows kept, each bad row reported by line, nothing half
written, a second import changes nothing; the server then sees what was imported."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from click.testing import CliRunner

from domain.registry import id_check_digit
from infra.cli import main
from tests.conftest import start_server

GRID, FAR_GRID = "130706001001001", "130706002001001"


def number(seq: int) -> str:
    base = f"13070619900202{seq:03d}"
    return base + id_check_digit(base)


def write(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def notifications(data_dir: Path) -> int:
    from infra.bootstrap import build_service
    from infra.loaders.jurisdiction import load_jurisdiction
    from infra.settings import Settings

    settings = Settings().with_(data_dir=data_dir)
    service = build_service(settings, load_jurisdiction(settings.jurisdiction))
    try:
        return service.recorder.max_notification_id() or 0
    finally:
        service.close()


def test_a_csv_of_good_and_bad_residents_imports_exactly_the_good_ones(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    bad_check = number(3)[:17] + ("1" if number(3)[17] != "1" else "2")
    rows = [
        f"{number(1)},王一,13900001111,1号楼,permanent,{GRID},2026-11-01",  # line 2
        f"{bad_check},王二,13900002222,2号楼,floating,{GRID},2026-11-01",  # line 3: check digit
        f"{number(4)},王四,13900004444,4号楼,tourist,{GRID},2026-11-01",  # line 4: kind
        f"{number(5)},王五,13900005555,5号楼,rental,nowhere,2026-11-01",  # line 5: grid
        f"{number(6)},王六,13900006666,6号楼,rental,{GRID}",  # line 6: a field short
        f"{number(7)},王七,13900007777,7号楼,rental,{GRID},2026-11-31",  # line 7: date
        f"{number(8)},王八,13900008888,8号楼,floating,{FAR_GRID},2026-11-02",  # line 8
        f"{number(1)},王一,13900001111,1号楼,permanent,{FAR_GRID},2026-11-01",  # 9: elsewhere
    ]
    csv_file = write(tmp_path / "residents.csv",
                     "id_number,name,phone,household,kind,grid,arrived", rows)
    args = ["registry", "import", "residents", str(csv_file), "--data-dir", str(data_dir)]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 1, first.output
    assert "2 saved, 0 unchanged, 6 refused, of 8 rows" in first.stdout
    errors = first.stderr
    for line, word in ((3, "check digit"), (4, "kind"), (5, "grid"), (6, "number of fields"),
                       (7, "arrived"), (9, "use move")):
        assert f"residents.csv:{line}: " in errors and word in errors, (line, errors)
    assert bad_check not in errors  # an error report never repeats an ID number
    stored = notifications(data_dir)
    second = CliRunner().invoke(main, args)
    assert "0 saved, 2 unchanged, 6 refused" in second.stdout, second.output
    assert notifications(data_dir) == stored  # the second import wrote nothing

    server = start_server(data_dir)
    try:
        token = server.embedded.tokens.issue("root", "admin", None)  # type: ignore[attr-defined]
        headers = {"Authorization": f"Bearer {token}"}
        listed = httpx.get(f"{server.url}/api/residents?grid={GRID}", headers=headers).json()
        assert [p["id_number"] for p in listed["items"]] == [number(1)]
        figures = httpx.get(f"{server.url}/api/population?center=130706",
                            headers=headers).json()
        assert figures["total"] == 2
    finally:
        server.stop()


def test_workers_and_parties_import_and_a_bad_header_is_refused(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    workers = write(tmp_path / "workers.csv",
                    "id,name_zh,name_en,employment,grid,lead,training_course,training_date", [
                        f"gw-a,甲,Jia,full_time,{GRID},true,Basics,2026-10-01",
                        "gw-b,乙,Yi,sometimes,,,,",  # employment
                        f"gw-c,丙,Bing,part_time,{GRID},maybe,,",  # lead
                        f"gw-d,丁,Ding,part_time,{GRID},no,Basics,not-a-date",  # date
                    ])
    args: list[Any] = ["registry", "import", "workers", str(workers), "--data-dir", str(data_dir)]
    first = CliRunner().invoke(main, args)
    assert "1 saved, 0 unchanged, 3 refused" in first.stdout, first.output
    for line in (3, 4, 5):
        assert f"workers.csv:{line}: " in first.stderr
    stored = notifications(data_dir)
    assert "0 saved, 1 unchanged" in CliRunner().invoke(main, args).stdout
    assert notifications(data_dir) == stored
    parties = write(tmp_path / "parties.csv", "id,kind,name_zh,name_en,serves,categories", [
        "green,volunteer_group,绿色志愿者,Green Volunteers,130706001,garbage noise",
        "bad,club,俱乐部,Club,130706001,garbage",
        "far,department,远方,Far,999,garbage",
    ])
    result = CliRunner().invoke(main, ["registry", "import", "parties", str(parties),
                                       "--data-dir", str(data_dir)])
    assert "1 saved, 0 unchanged, 2 refused" in result.stdout, result.output
    header = write(tmp_path / "h.csv", "id,name", ["x,y"])
    refused = CliRunner().invoke(main, ["registry", "import", "parties", str(header),
                                        "--data-dir", str(data_dir)])
    assert refused.exit_code == 1 and "missing column 'kind'" in refused.output
