"""Inference backends behind :class:`~anyseg_model.inference.Segmentor`, and thread counts.

A backend takes the encoded batch ``{modality: (1, 3, H, W)}`` (made by
:func:`anyseg_model.preprocess.to_batch` on the backend's device) and returns the head's logits
``(1, K, H/4, W/4)`` float32; the Segmentor upsamples and takes the argmax, whichever it is.

- ``torch``: the checkpoint's model, eager; on CUDA under fp16 autocast.
- ``onnxruntime``: the graphs of ``anyseg-export`` (:mod:`anyseg_model.export`), a session
  opened the first time a modality subset needs its graph. Providers: TensorRT, then CUDA,
  when the device is CUDA and the installed onnxruntime has them (the ``onnxruntime-gpu``
  package), else the CPU. CUDA tensors are bound in place (IO binding), so a batch made on the
  GPU never visits the host. Without an export directory the graphs are exported from the
  checkpoint into a temporary one as subsets first come.

Threads: :func:`default_threads` (half the cores this process may use, at least one) is the
node's default for torch's intra-op pool and onnxruntime's; on a shared CPU more threads cost
more than they give (BENCHMARKS.md). :func:`keep_freed_memory` stops the C allocator from
giving every frame fresh pages.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from .modalities import canonical, subset_name

BACKENDS = ("torch", "onnxruntime")


def default_threads() -> int:
    """Half the CPU cores available to this process, at least one."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, cores // 2)


def set_threads(threads: int) -> int:
    """torch's intra-op threads for this process (0 = :func:`default_threads`); returns it."""
    n = threads or default_threads()
    torch.set_num_threads(n)
    return n


def keep_freed_memory() -> bool:
    """For a process that handles frame after frame (glibc only; False elsewhere): buffers up
    to 32 MB come from the heap, and freed heap memory is not given back to the system. By
    default glibc maps each large buffer afresh and returns it when freed, so every frame
    touches new pages: about a thousand page faults and several ms per frame set at 640x480
    (more in a virtual machine). The resident size stays at its peak, which the next frame
    reaches again anyway."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
    return bool(mallopt(m_mmap_threshold, 32 << 20)) and bool(mallopt(m_trim_threshold, 1 << 30))


class TorchBackend:
    """The checkpoint's model, eager (fp16 autocast on CUDA)."""

    name = "torch"

    def __init__(self, model: torch.nn.Module, device: torch.device) -> None:
        self.model = model.to(device).eval()
        self.device = device
        self.dtype = torch.float16 if device.type == "cuda" else None

    @torch.inference_mode()
    def __call__(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype is not None):
            return self.model.forward_head(self.model.forward_features(batch).fused).float()


def providers_for(device: torch.device, available: list[str], cache: Path) -> list[Any]:
    """onnxruntime providers for ``device``, best first, among those installed; TensorRT
    builds fp16 engines once and keeps them in ``cache``."""
    if device.type != "cuda":
        return ["CPUExecutionProvider"]
    index = device.index or 0
    chosen: list[Any] = []
    if "TensorrtExecutionProvider" in available:
        options = {
            "device_id": index,
            "trt_fp16_enable": True,
            "trt_engine_cache_enable": True,
            "trt_engine_cache_path": str(cache),
        }
        chosen.append(("TensorrtExecutionProvider", options))
    if "CUDAExecutionProvider" in available:
        chosen.append(("CUDAExecutionProvider", {"device_id": index}))
    if not chosen:
        raise ValueError(
            f"device {device} asked for, but this onnxruntime has only {available}; "
            "install onnxruntime-gpu (CUDA / TensorRT) or use device cpu"
        )
    return [*chosen, "CPUExecutionProvider"]


def _import_onnxruntime() -> Any:
    try:
        import onnxruntime  # the [deploy] extra
    except ImportError:
        raise ValueError(
            "backend onnxruntime: onnxruntime is not installed "
            "(pip install 'anyseg_ros[deploy]', or onnxruntime-gpu for CUDA / TensorRT)"
        ) from None
    return onnxruntime


class OnnxBackend:
    """onnxruntime on the graphs of an export directory; sessions opened on first use."""

    name = "onnxruntime"

    def __init__(
        self,
        directory: str | Path | None,
        device: torch.device,
        threads: int = 0,
        checkpoint: Any = None,
        checkpoint_path: str | Path | None = None,
    ) -> None:
        from .export import describe, export_subset, file_sha256, graph_file, read_manifest

        self._ort = _import_onnxruntime()
        self.device = device
        self.threads = threads or default_threads()
        self._sessions: dict[str, Any] = {}  # subset name -> session
        self._files: dict[str, Any] = {}  # graph file -> session (shared by its subsets)
        self._export = None
        if directory is None:  # export on demand from the loaded checkpoint
            if checkpoint is None or checkpoint_path is None:
                raise ValueError("onnxruntime backend: give an export directory or a checkpoint")
            if checkpoint.input_size is None:
                raise ValueError(
                    f"checkpoint {str(checkpoint_path)!r} has no input_size: the onnxruntime "
                    "backend needs fixed-size graphs; export them with anyseg-export --size HxW "
                    "and give their directory (onnx_dir)"
                )
            self.directory = Path(tempfile.mkdtemp(prefix="anyseg_onnx_"))
            self.manifest = describe(checkpoint, checkpoint_path, checkpoint.input_size, False)
            config = checkpoint.model.config

            def export_on_demand(subset: tuple[str, ...]) -> Path:
                path = self.directory / graph_file(config, subset)
                if path.exists():  # another subset of the same graph came first
                    return path
                served = [subset]  # every subset this graph can serve
                return export_subset(checkpoint, subset, path, self.manifest, served)

            self._export = export_on_demand
        else:
            self.directory = Path(directory)
            self.manifest = read_manifest(directory)
            if checkpoint_path is not None:
                sha = file_sha256(checkpoint_path)
                if self.manifest["checkpoint_sha256"] != sha:
                    raise ValueError(
                        f"onnx_dir {str(directory)!r} was exported from "
                        f"{self.manifest['checkpoint']!r}, not from {str(checkpoint_path)!r} "
                        "(SHA-256 differs); export this checkpoint with anyseg-export"
                    )
        self.input_size = tuple(self.manifest["input_size"])
        # TensorRT engines next to the graphs they were built from: built once, on first use
        cache = self.directory / "trt_cache"
        self.providers = providers_for(device, self._ort.get_available_providers(), cache)

    def _graph(self, name: str, modalities: tuple[str, ...]) -> Path:
        if self._export is not None:
            return self._export(modalities)
        if name not in self.manifest["graphs"]:
            raise ValueError(
                f"no graph for subset {name!r} in {str(self.directory)!r}; it has "
                f"{sorted(self.manifest['graphs'])}: export it with anyseg-export --subsets"
            )
        return self.directory / self.manifest["graphs"][name]

    def session(self, modalities: tuple[str, ...]) -> Any:
        """The session serving a subset, opened (and exported, on demand) the first time."""
        name = subset_name(modalities)
        if name not in self._sessions:
            path = self._graph(name, modalities)
            if str(path) not in self._files:
                opts = self._ort.SessionOptions()
                opts.intra_op_num_threads = self.threads
                opts.inter_op_num_threads = 1
                # Idle pool threads spin by default: on a CPU shared with drivers that burns
                # a core for nothing.
                opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
                session = self._ort.InferenceSession(str(path), opts, providers=self.providers)
                self._files[str(path)] = session
            session = self._files[str(path)]
            meta = json.loads(session.get_modelmeta().custom_metadata_map["anyseg"])
            if self._export is None and name not in meta["subsets"]:
                raise ValueError(f"{path}: graph serves {meta['subsets']}, not {name!r}")
            self._sessions[name] = session
        return self._sessions[name]

    def __call__(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        mods = canonical(batch)
        session = self.session(mods)
        first = batch[mods[0]]
        if first.device.type == "cuda" and self.providers[0] != "CPUExecutionProvider":
            return self._run_bound(session, [batch[m] for m in mods])
        feed = {f"x{i}": batch[m].detach().cpu().contiguous().numpy() for i, m in enumerate(mods)}
        return torch.from_numpy(session.run(["logits"], feed)[0]).to(first.device)

    def _run_bound(self, session: Any, tensors: list[torch.Tensor]) -> torch.Tensor:
        """CUDA tensors in, CUDA tensor out: onnxruntime reads and writes torch's memory."""
        import numpy as np

        binding = session.io_binding()
        device = tensors[0].device
        index = device.index or 0
        inputs = [x.contiguous() for x in tensors]  # kept alive until the run ends
        for i, x in enumerate(inputs):
            binding.bind_input(f"x{i}", "cuda", index, np.float32, tuple(x.shape), x.data_ptr())
        shape = tuple(session.get_outputs()[0].shape)  # fixed: a graph has one input size
        out = torch.empty(shape, dtype=torch.float32, device=device)
        binding.bind_output("logits", "cuda", index, np.float32, tuple(out.shape), out.data_ptr())
        torch.cuda.current_stream(device).synchronize()  # torch has written the inputs
        session.run_with_iobinding(binding)
        return out
