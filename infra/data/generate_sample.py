"""Generate ``zhangjiakou.geojson``, the sample jurisdiction tree.

Run: ``python infra/data/generate_sample.py`` (rewrites the file next to this script; the output
is deterministic).

Zhangjiakou city (张家口市) and its 16 districts/counties carry the real administrative division
codes; inside 下花园区 (Xiahuayuan District, 130706) only, its 6 real townships/subdistricts with
their real codes. Communities/villages and grids below them are SYNTHETIC (marked
``"synthetic": true``): grids are small non-overlapping rectangles laid out around Xiahuayuan's
real location (≈115.28°E, 40.49°N), each township in its own block, so point location works.
Districts other than 130706 have no children and no geometry.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

OUT = Path(__file__).parent / "zhangjiakou.geojson"

CITY = ("130700", "张家口市", "Zhangjiakou City")

DISTRICTS = [
    ("130702", "桥东区", "Qiaodong District"),
    ("130703", "桥西区", "Qiaoxi District"),
    ("130705", "宣化区", "Xuanhua District"),
    ("130706", "下花园区", "Xiahuayuan District"),
    ("130708", "万全区", "Wanquan District"),
    ("130709", "崇礼区", "Chongli District"),
    ("130722", "张北县", "Zhangbei County"),
    ("130723", "康保县", "Kangbao County"),
    ("130724", "沽源县", "Guyuan County"),
    ("130725", "尚义县", "Shangyi County"),
    ("130726", "蔚县", "Yu County"),
    ("130727", "阳原县", "Yangyuan County"),
    ("130728", "怀安县", "Huai'an County"),
    ("130730", "怀来县", "Huailai County"),
    ("130731", "涿鹿县", "Zhuolu County"),
    ("130732", "赤城县", "Chicheng County"),
]

DETAILED_DISTRICT = "130706"

ORDINALS = [
    ("第一", "No. 1"),
    ("第二", "No. 2"),
    ("第三", "No. 3"),
    ("第四", "No. 4"),
    ("第五", "No. 5"),
]

# (id, name, name_en, communities) — communities are synthetic (name, name_en).
TOWNSHIPS: list[tuple[str, str, str, list[tuple[str, str]]]] = [
    (
        "130706001",
        "城镇街道",
        "Chengzhen Subdistrict",
        [(f"{zh}社区", f"{en} Community") for zh, en in ORDINALS[:5]],
    ),
    (
        "130706002",
        "煤矿街道",
        "Meikuang Subdistrict",
        [(f"{zh}社区", f"{en} Community") for zh, en in ORDINALS[:4]],
    ),
    (
        "130706200",
        "花园乡",
        "Huayuan Township",
        [
            ("花园村", "Huayuan Village"),
            ("东沟村", "Donggou Village"),
            ("西庄村", "Xizhuang Village"),
            ("南坡村", "Nanpo Village"),
        ],
    ),
    (
        "130706201",
        "辛庄子乡",
        "Xinzhuangzi Township",
        [
            ("辛庄子村", "Xinzhuangzi Village"),
            ("北岭村", "Beiling Village"),
            ("后山村", "Houshan Village"),
        ],
    ),
    (
        "130706202",
        "定方水乡",
        "Dingfangshui Township",
        [
            ("定方水村", "Dingfangshui Village"),
            ("前营村", "Qianying Village"),
            ("河湾村", "Hewan Village"),
            ("石门村", "Shimen Village"),
        ],
    ),
    (
        "130706203",
        "段家堡乡",
        "Duanjiabao Township",
        [
            ("段家堡村", "Duanjiabao Village"),
            ("马家窑村", "Majiayao Village"),
            ("上堡村", "Shangbao Village"),
        ],
    ),
]

GRIDS_TOTAL = 200

# Layout: townships in a 3×2 block arrangement centred on Xiahuayuan; inside a township each
# community is one row of grid cells.
ORIGIN_LON, ORIGIN_LAT = 115.13, 40.40
BLOCK_W, BLOCK_H = 0.10, 0.09
CELL_W, CELL_H = 0.010, 0.016
GAP = 0.001


def r6(x: float) -> float:
    return round(x, 6)


def rect(x0: float, y0: float, x1: float, y1: float) -> dict[str, Any]:
    a, b, c, d = r6(x0), r6(y0), r6(x1), r6(y1)
    return {
        "type": "Polygon",
        "coordinates": [[[a, b], [c, b], [c, d], [a, d], [a, b]]],
    }


def feature(
    uid: str,
    name: str,
    name_en: str,
    level: str,
    parent: str | None,
    geometry: dict[str, Any] | None,
    synthetic: bool = False,
) -> dict[str, Any]:
    props: dict[str, Any] = {
        "id": uid,
        "name": name,
        "name_en": name_en,
        "level": level,
        "parent": parent,
    }
    if synthetic:
        props["synthetic"] = True
    return {"type": "Feature", "id": uid, "properties": props, "geometry": geometry}


def grid_counts() -> list[int]:
    """Grids per community (in file order), spread as evenly as possible over GRIDS_TOTAL."""
    n = sum(len(t[3]) for t in TOWNSHIPS)
    base, extra = divmod(GRIDS_TOTAL, n)
    return [base + (1 if i < extra else 0) for i in range(n)]


def build() -> dict[str, Any]:
    features: list[dict[str, Any]] = [feature(*CITY, "city", None, None)]
    counts = iter(grid_counts())
    detail: list[dict[str, Any]] = []
    for t_index, (t_id, t_name, t_en, communities) in enumerate(TOWNSHIPS):
        bx = ORIGIN_LON + (t_index % 3) * BLOCK_W
        by = ORIGIN_LAT + (t_index // 3) * BLOCK_H
        t_geom = rect(bx, by, bx + BLOCK_W - GAP, by + BLOCK_H - GAP)
        detail.append(feature(t_id, t_name, t_en, "township", DETAILED_DISTRICT, t_geom))
        for c_index, (c_name, c_en) in enumerate(communities):
            c_id = f"{t_id}{c_index + 1:03d}"
            n_grids = next(counts)
            cy = by + GAP + c_index * CELL_H
            c_geom = rect(bx + GAP, cy, bx + GAP + n_grids * CELL_W, cy + CELL_H - GAP)
            detail.append(feature(c_id, c_name, c_en, "community", t_id, c_geom, True))
            for g in range(1, n_grids + 1):
                gx = bx + GAP + (g - 1) * CELL_W
                g_geom = rect(
                    gx + GAP / 2, cy + GAP / 2, gx + CELL_W - GAP / 2, cy + CELL_H - GAP * 1.5
                )
                detail.append(
                    feature(
                        f"{c_id}{g:03d}",
                        f"{t_name}{c_name}网格{g:02d}",
                        f"{t_en} {c_en} Grid {g:02d}",
                        "grid",
                        c_id,
                        g_geom,
                        True,
                    )
                )
    d_geom = rect(ORIGIN_LON, ORIGIN_LAT, ORIGIN_LON + 3 * BLOCK_W, ORIGIN_LAT + 2 * BLOCK_H)
    for d_id, d_name, d_en in DISTRICTS:
        geom = d_geom if d_id == DETAILED_DISTRICT else None
        features.append(feature(d_id, d_name, d_en, "district", CITY[0], geom))
        if d_id == DETAILED_DISTRICT:
            features.extend(detail)
    return {
        "type": "FeatureCollection",
        "name": "zhangjiakou",
        "description": (
            "Sample jurisdiction tree: Zhangjiakou city and its 16 districts/counties (real "
            "division codes); Xiahuayuan District's 6 real townships; communities and grids "
            "below them are synthetic."
        ),
        "features": features,
    }


def main() -> None:
    text = json.dumps(build(), ensure_ascii=False, separators=(",", ":"))
    # One feature per line keeps diffs readable.
    text = text.replace(',{"type":"Feature"', ',\n{"type":"Feature"')
    OUT.write_text(text + "\n", encoding="utf-8")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
