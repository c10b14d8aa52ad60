import json
import os
import stat

from mlpjax import files


def test_write_json_atomic_writes_readable_json_with_the_usual_mode(tmp_path):
    path = tmp_path / "sub" / "metrics.json"
    files.write_json(path, {"a": [1, 2]})
    files.write_json(path, {"a": [3]})
    assert json.loads(path.read_text()) == {"a": [3]}
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    assert [p.name for p in path.parent.iterdir()] == ["metrics.json"]  # no temporary file left behind
