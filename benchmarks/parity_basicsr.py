"""Parity of afvsr's SPyNet, BasicVSR and IconVSR with BasicSR's own classes (random weights).

  python benchmarks/parity_basicsr.py --basicsr PATH/TO/BasicSR [--out report.json]

PATH is a BasicSR checkout (a work tree, or a bare git directory: its HEAD is read). Only its
``basicsr/archs/{arch_util,spynet_arch,edvr_arch,basicvsr_arch}.py`` are imported, from a
temporary folder, with small stand-ins for what they import and this machine may lack: the
registry, the logger, torchvision (absent, so BasicSR's DCNv2Pack takes its non-torchvision
branch) and ``basicsr.ops.dcn``, whose compiled DCNv2 is replaced by afvsr's pure-PyTorch one
(the DCN itself is tested against a loop reference in tests/test_dcn.py). Each BasicSR network
gets random weights, is saved as BasicSR does (``{"params": state_dict}``), loaded with
``afvsr.load_model`` and both are run on the same random clip in fp32; the report is the max
|difference| of the outputs. Nothing of BasicSR is kept or copied into afvsr.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ARCHS = ("arch_util", "spynet_arch", "edvr_arch", "basicvsr_arch")

STUBS = {
    "basicsr/__init__.py": "",
    "basicsr/archs/__init__.py": "",
    "basicsr/ops/__init__.py": "",
    "basicsr/utils/__init__.py": (
        "import logging\n\ndef get_root_logger(*args, **kwargs):\n"
        "    return logging.getLogger('basicsr')\n"
    ),
    "basicsr/utils/registry.py": (
        "class _Registry:\n    def register(self):\n        return lambda cls: cls\n\n"
        "ARCH_REGISTRY = _Registry()\n"
    ),
    "torchvision/__init__.py": "__version__ = '0.0.0'\n",
    "basicsr/ops/dcn/__init__.py": """
import torch
from torch import nn

from afvsr.models.dcn import modulated_deform_conv2d


def modulated_deform_conv(x, offset, mask, weight, bias, stride, padding, dilation, groups,
                          deformable_groups):
    first = lambda v: v if isinstance(v, int) else v[0]
    assert first(stride) == 1 and groups == 1
    return modulated_deform_conv2d(x, offset, mask, weight, bias, padding=first(padding),
                                   dilation=first(dilation), deform_groups=deformable_groups)


class ModulatedDeformConvPack(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, deformable_groups=1, bias=True):
        super().__init__()
        self.stride, self.padding, self.dilation = stride, padding, dilation
        self.groups, self.deformable_groups = groups, deformable_groups
        k = kernel_size
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, k, k) * 0.05)
        self.bias = nn.Parameter(torch.randn(out_channels) * 0.05)
        self.conv_offset = nn.Conv2d(in_channels, deformable_groups * 3 * k * k, k, stride, padding)
""",
}


def arch_source(checkout: Path, name: str) -> str:
    rel = f"basicsr/archs/{name}.py"
    if (checkout / rel).is_file():
        return (checkout / rel).read_text()
    return subprocess.run(
        ["git", "-C", str(checkout), "show", f"HEAD:{rel}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def stage(checkout: Path, folder: Path) -> None:
    for rel, text in STUBS.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(text)
    for name in ARCHS:
        (folder / f"basicsr/archs/{name}.py").write_text(arch_source(checkout, name))


def randomized(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.01)
    return model.eval()


def compare(theirs: torch.nn.Module, folder: Path, name: str, *inputs: torch.Tensor) -> dict:
    import afvsr

    path = folder / f"{name}.pth"
    torch.save({"params": theirs.state_dict()}, path)
    ours = afvsr.load_model(path)
    start = time.perf_counter()
    with torch.no_grad():
        diff = (theirs(*inputs) - ours(*inputs)).abs().max().item()
    shape = [tuple(x.shape) for x in inputs]
    print(f"{name}: inputs {shape}, max |difference| {diff:.2e}", flush=True)
    return {
        "name": name,
        "inputs": shape,
        "kwargs": getattr(ours, "kwargs", {}),
        "max_abs_diff": diff,
        "seconds": round(time.perf_counter() - start, 1),
    }


def run(folder: Path) -> list[dict]:
    sys.path.insert(0, str(folder))
    from basicsr.archs.basicvsr_arch import BasicVSR, IconVSR
    from basicsr.archs.spynet_arch import SpyNet

    g = torch.Generator().manual_seed(0)
    rand = lambda *shape: torch.rand(*shape, generator=g)  # noqa: E731
    return [
        compare(randomized(SpyNet(), 1), folder, "spynet", rand(2, 3, 64, 96), rand(2, 3, 64, 96)),
        compare(randomized(BasicVSR(64, 3), 2), folder, "basicvsr_c64n3", rand(1, 5, 3, 66, 90)),
        compare(randomized(BasicVSR(64, 30), 3), folder, "basicvsr_c64n30", rand(1, 7, 3, 64, 64)),
        compare(randomized(IconVSR(64, 2), 4), folder, "iconvsr_c64n2", rand(1, 12, 3, 66, 70)),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--basicsr", type=Path, required=True, help="a BasicSR checkout")
    parser.add_argument("--out", type=Path, help="write the report (JSON) here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)  # BasicSR's own initialisation draws from the global generator
    with tempfile.TemporaryDirectory() as tmp:
        stage(args.basicsr, Path(tmp))
        results = run(Path(tmp))
    commit = subprocess.run(
        ["git", "-C", str(args.basicsr), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    report = {
        "basicsr_commit": commit or None,
        "torch": torch.__version__,
        "dtype": "float32",
        "device": "cpu",
        "results": results,
    }
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0 if all(r["max_abs_diff"] <= 1e-5 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
