"""The helpers and Fast DDS profiles that keep DDS on loopback (anyseg_tools.localdds, config/)."""

import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from anyseg_tools.localdds import child, loopback_env, run_domain_id

REPO = Path(__file__).resolve().parents[2]

NS = {"f": "http://www.eprosima.com"}


def test_environment_is_loopback_only_on_a_fresh_domain():
    env = loopback_env(base={"ROS_LOCALHOST_ONLY": "1", "PATH": "/bin"})
    assert env["FASTDDS_DEFAULT_PROFILES_FILE"].endswith("config/fastdds_loopback.xml")
    assert os.path.isfile(env["FASTDDS_DEFAULT_PROFILES_FILE"])
    assert env["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"
    assert env["RMW_IMPLEMENTATION"] == "rmw_fastrtps_cpp"
    assert "ROS_LOCALHOST_ONLY" not in env and env["PATH"] == "/bin"
    assert int(env["ROS_DOMAIN_ID"]) == run_domain_id()
    ids = {run_domain_id(pid) for pid in range(1000, 1300)}
    assert ids == set(range(1, 101))  # never 0, the domain everything else uses


def _transport(root, tid):
    for d in root.iterfind(".//f:transport_descriptor", NS):
        if d.findtext("f:transport_id", namespaces=NS) == tid:
            return d
    raise AssertionError(f"no transport {tid}")


def _check_profile(name):
    root = ET.parse(REPO / "config" / name).getroot()
    (participant,) = root.iterfind(".//f:participant", NS)
    assert participant.get("is_default_profile") == "true"
    rtps = participant.find("f:rtps", NS)
    assert rtps.findtext("f:useBuiltinTransports", namespaces=NS) == "false"
    ids = [t.text for t in rtps.iterfind("f:userTransports/f:transport_id", NS)]
    kinds = {
        _transport(root, t).findtext("f:type", namespaces=NS): _transport(root, t) for t in ids
    }
    assert set(kinds) == {"SHM", "UDPv4"}
    assert kinds["SHM"].findtext("f:segment_size", namespaces=NS) == str(16 * 1024 * 1024)
    for tag in ("sendBufferSize", "receiveBufferSize"):
        assert kinds["UDPv4"].findtext(f"f:{tag}", namespaces=NS) == str(4 * 1024 * 1024)
    return kinds["UDPv4"]


def test_fastdds_profiles():
    udp = _check_profile("fastdds.xml")
    assert udp.find("f:interfaceWhiteList", NS) is None
    udp = _check_profile("fastdds_loopback.xml")
    assert [a.text for a in udp.iterfind("f:interfaceWhiteList/f:address", NS)] == ["127.0.0.1"]


def test_child_is_killed_with_its_process_group():
    env = loopback_env()
    code = (
        "import subprocess, sys, time; "
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
        "print('up', flush=True); time.sleep(60)"
    )
    with child([sys.executable, "-c", code], env, stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout.readline().strip() == "up"
        pgid = proc.pid
    assert proc.poll() is not None
    time.sleep(0.2)
    assert _live_members(pgid) == [], "a grandchild survived"


def _live_members(pgid: int) -> list[int]:
    """Pids in process group ``pgid`` that are running (zombies waiting for a reaper are dead)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z" and int(fields[2]) == pgid:
                out.append(int(entry))
    return out
