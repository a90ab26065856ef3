"""tools/watermark_eval.py: the attacks of a shared clip, the false-positive conditions and the output."""
import importlib.util
import json
import math
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ATTACKS = ["delivered", "crf28", "up2+crf23", "crop4+crf23", "down0.75"]
CONDITIONS = ["as is", "crf28"]


def _tool():
    spec = importlib.util.spec_from_file_location("watermark_eval", ROOT / "tools" / "watermark_eval.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def test_watermark_eval_attacks_and_false_positives(tmp_path, capsys):
    tool = _tool()
    out_json = tmp_path / "r.json"
    res = tool.main(["--marked", "shapes", "--num-clips", "2", "--num-real", "3", "--frames", "8",
                     "--resolution", "64", "--attacks", ",".join(ATTACKS), "--real-attacks", ",".join(CONDITIONS),
                     "--json", str(out_json)])
    printed = capsys.readouterr().out
    assert json.loads(out_json.read_text()) == json.loads(json.dumps(res))
    # kept in the table's order
    assert res["config"]["attacks"] == [a for a in tool.ATTACKS if a in ATTACKS]
    assert res["config"]["real_attacks"] == CONDITIONS
    assert res["config"]["frames"] == 8 and res["config"]["num_real"] == 3

    (row,) = res["marked"]
    assert row["set"] == "shapes" and row["clips"] == 2 and row["size"] == "64x64" and row["frames"] == 8
    for field in ("recall", "score_p5", "id_exact", "id_verified", "p_bound_below_0.0043", "hypotheses_max",
                  "geometry", "view_size", "detect_s_mean"):
        assert set(row[field]) == set(ATTACKS), field
    assert all(0.0 <= row["recall"][a] <= 1.0 for a in ATTACKS)
    assert row["recall"]["delivered"] == 1.0
    assert row["view_size"] == {"delivered": "64x64", "crf28": "64x64", "up2+crf23": "128x128",
                                "crop4+crf23": "56x56", "down0.75": "48x48"}
    assert all(row["hypotheses_max"][a] >= 1 for a in ATTACKS)
    assert math.isfinite(row["cost_db"]) and row["cost_db"] < 3.0 and math.isfinite(row["mark_psnr_db"])
    assert row["embed_s_per_clip"] > 0 and 0 < row["detect_s_per_clip"] <= row["detect_s_max"]
    assert set(row["wrong_key"]) == set(CONDITIONS)
    assert all(v["clips"] == 2 and 0.0 <= v["false_positives"] <= 1.0 for v in row["wrong_key"].values())

    real_sets = [r["set"] for r in res["real"]]
    assert real_sets[0] == "shapes" and set(real_sets) <= {"shapes", "weizmann"}
    for r in res["real"]:
        assert r["clips"] == 3 and set(r["conditions"]) == set(CONDITIONS)
        for v in r["conditions"].values():
            assert v["clips"] == 3 and 0.0 <= v["false_positives"] <= 1.0
            assert 0 <= v["p_bound_below_0.0043"] <= 3 and math.isfinite(v["score_max"]) and v["hypotheses_max"] >= 1

    # the marked table is transposed: one row per attack, one column per set
    assert "| attack | shapes |" in printed
    assert all(f"| {a} | " in printed for a in ATTACKS) and "| shapes | real | as is | 3 |" in printed


def test_watermark_eval_names_errors(tmp_path):
    tool = _tool()
    with pytest.raises(SystemExit) as e:
        tool.main(["--marked", "shapes", "--attacks", "crf28,blur3"])
    msg = str(e.value)
    assert "blur3" in msg and all(a in msg for a in ("delivered", "crf23", "up4+crf28", "crf28 veryfast", "gif"))
    with pytest.raises(SystemExit) as e:
        tool.main(["--marked", "shapes", "--real-attacks", "as is,rotate"])
    assert "rotate" in str(e.value) and "as is" in str(e.value)
    with pytest.raises(SystemExit) as e:
        tool.main(["--checkpoint", str(tmp_path / "missing.ckpt")])
    assert "missing.ckpt" in str(e.value) and "does not exist" in str(e.value)


def test_attack_geometry():
    """The steps do what their names say (sizes; odd sizes lose a row or column before H.264)."""
    import numpy as np

    tool = _tool()
    clip = np.random.default_rng(0).integers(0, 256, (3, 34, 34, 3), dtype=np.uint8)
    assert tool.ATTACKS["crop4+up4+crf23"](clip, clip).shape == (3, 104, 104, 3)
    assert tool.ATTACKS["down0.75+crop2+crf28"](clip, clip).shape == (3, 22, 22, 3)     # 34 -> 26 -> 22
    assert tool.encode(clip[:, :33, :31], 23).shape == (3, 32, 30, 3)
    assert tool.ATTACKS["crop4"](clip, clip).shape == (3, 26, 26, 3)
    assert tool.ATTACKS["down0.5"](clip, clip).shape == (3, 17, 17, 3)
