"""Where a parameter override came from: ROS arguments, params-file keys matched like rcl."""

from __future__ import annotations

import pytest

from anyseg_ros.core.overrides import (
    RosArgs,
    Sources,
    classify_unknown,
    flat_names,
    key_is_shared,
    key_matches,
    node_keys,
    override_sources,
    parse_ros_args,
)


def test_ros_args_params_files_and_p_names():
    argv = [
        "prog",
        "--not-ros",
        "--params-file",
        "ignored.yaml",  # outside --ros-args: not a ROS argument
        "--ros-args",
        "-r",
        "__ns:=/robot1",
        "--params-file",
        "a.yaml",
        "-p",
        "slop_ms:=10.0",
        "--param",
        "anyseg_node:wait_msx:=3",
        "-p",
        "other_node:foo:=1",
        "--",
        "-p",
        "after_end:=1",
        "--ros-args",
        "--params-file",
        "b.yaml",
    ]
    args = parse_ros_args(argv, "anyseg_node")
    assert args.params_files == ["a.yaml", "b.yaml"]
    assert args.param_names == ["slop_ms", "wait_msx"]


@pytest.mark.parametrize(
    "key, root, robot1, nested",
    [
        ("anyseg_node", True, False, False),
        ("/anyseg_node", True, False, False),
        ("/**/anyseg_node", True, True, True),
        ("/**", True, True, True),
        ("/*/anyseg_node", False, True, False),
        ("/robot1/anyseg_node", False, True, False),
        ("robot1/anyseg_node", False, True, False),
        ("/robot1/*", False, True, False),
        ("other_node", False, False, False),
    ],
)
def test_keys_match_node_names_like_rcl(key, root, robot1, nested):
    assert key_matches(key, "/anyseg_node") is root
    assert key_matches(key, "/robot1/anyseg_node") is robot1
    assert key_matches(key, "/a/b/anyseg_node") is nested


def test_shared_keys_and_nested_documents():
    assert key_is_shared("/**") and key_is_shared("/robot1/*") and key_is_shared("/*")
    assert not key_is_shared("/**/anyseg_node") and not key_is_shared("anyseg_node")
    doc = {
        "/**": {"ros__parameters": {"use_sim_time": True, "frame_rate": 5}},
        "robot1": {"anyseg_node": {"ros__parameters": {"slop_ms": 10, "lidar": {"timeout": 3}}}},
        "junk": 3,
    }
    keys = node_keys(doc)
    assert [k for k, _ in keys] == ["/**", "robot1/anyseg_node"]
    assert flat_names(keys[1][1]) == ["slop_ms", "lidar.timeout"]
    src = override_sources(
        RosArgs(params_files=["p.yaml"], param_names=["wait_msx"]),
        "/robot1/anyseg_node",
        lambda path: doc,
    )
    assert src.own == {"wait_msx", "slop_ms", "lidar.timeout"}
    assert src.shared == {"use_sim_time", "frame_rate"}
    # The same file for a node in the root namespace: only the shared key reaches it.
    root = override_sources(RosArgs(params_files=["p.yaml"]), "/anyseg_node", lambda p: doc)
    assert root.own == set() and root.shared == {"use_sim_time", "frame_rate"}


def test_unknown_names_are_refused_unless_only_a_shared_key_brought_them():
    src = Sources(own={"slop_msx", "frame_rate"}, shared={"frame_rate", "gain"})
    refused, warned = classify_unknown({"slop_msx", "frame_rate", "gain", "mystery"}, src)
    assert refused == ["frame_rate", "mystery", "slop_msx"] and warned == ["gain"]
