"""The family interface's own checks (src/ganlab/core/family.py)."""

from __future__ import annotations

import importlib
import pkgutil

import pytest
from omegaconf import OmegaConf

import ganlab.families
from ganlab.core.errors import GanlabError
from ganlab.core.family import Family


def family_classes() -> list[type[Family]]:
    """Every family class the package defines (each module of ``ganlab.families``)."""
    found: dict[str, type[Family]] = {}
    for info in pkgutil.iter_modules(ganlab.families.__path__):
        module = importlib.import_module(f"ganlab.families.{info.name}")
        for value in vars(module).values():
            if (isinstance(value, type) and issubclass(value, Family)
                    and value.__module__ == module.__name__ and "name" in vars(value)):
                found[value.name] = value
    return [found[k] for k in sorted(found)]


FAMILIES = family_classes()


def test_every_family_is_found() -> None:
    assert [f.name for f in FAMILIES] == ["aae", "avb", "cyclegan", "gan", "gawwn", "lapgan",
                                          "pix2pix", "srgan", "srresnet", "vae"]


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_only_the_gan_takes_several_minibatches_an_iteration(family: type[Family]) -> None:
    family.check_config(OmegaConf.create({"train": {"d_steps": 1}}))
    three = OmegaConf.create({"train": {"d_steps": 3}})
    if family.name == "gan":
        assert family.reads_d_steps
        family.check_config(three)
        return
    assert not family.reads_d_steps
    with pytest.raises(GanlabError) as error:
        family.check_config(three)
    assert str(error.value) == (f"model={family.name} takes one minibatch per iteration: "
                                "train.d_steps must be 1, got 3")
