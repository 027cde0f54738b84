"""The real node on image_transport's compressed topics (jpeg RGB, compressedDepth png)."""

import subprocess

import pytest

from anyseg_tools.harness import Watcher, node_command, rig_command
from anyseg_tools.localdds import child, loopback_env
from anyseg_tools.params import write_params

pytestmark = pytest.mark.ros


def test_node_segments_compressed_rgb_and_compressed_depth(tmp_path, tiny_checkpoint):
    values = {
        "checkpoint": str(tiny_checkpoint),
        "device": "cpu",
        "modalities": ["rgb", "depth"],
        "rgb.transport": "compressed",
        "depth.transport": "compressedDepth",
        "depth.registered": True,  # the rig renders depth on the RGB grid, own frame_id
    }
    params = write_params(tmp_path / "params.yaml", values)
    env = loopback_env()
    log = (tmp_path / "node.log").open("w")
    with (
        child(node_command(params), env, stdout=log, stderr=subprocess.STDOUT) as node,
        child(
            rig_command("--compressed", "--rates", "rgb=10,depth=10"),
            env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        ) as rig,
    ):
        w = Watcher(rig, watch=(node,))
        info = w.wait_for(
            lambda e: e["ev"] == "info" and e["modalities"] == ["rgb", "depth"], timeout=90
        )
        assert info["size"] == [160, 120]
        diag = w.wait_for(lambda e: e["ev"] == "diag", timeout=5)
        seg = diag["status"]["segmentation"]
        assert seg["rgb.transport"] == "compressed" and seg["depth.transport"] == "compressedDepth"
        assert diag["status"]["rgb"]["decode_errors"] == "0"
    text = (tmp_path / "node.log").read_text()
    assert "Traceback" not in text and "rgb.transport compressed" in text, text
