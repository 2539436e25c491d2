import json
import re
from pathlib import Path

import pytest

from mmlearn import taxonomy

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("inputs, outputs, expected", [
    ({"image"}, {"label"}, "unimodal"),                  # CIFAR-10: a named class is not text
    ({"image", "audio"}, {"label"}, "multimodal"),        # Part I's digit fusion
    ({"image", "text"}, {"label"}, "multimodal"),         # VQA: answers from a fixed set
    ({"image", "text"}, {"text"}, "multimodal"),          # a written answer is still in an input's modality
    ({"audio"}, {"text"}, "cross-modal"),                 # speech recognition
    ({"text"}, {"audio"}, "cross-modal"),                 # speech synthesis
    ({"image", "text"}, {"audio"}, "cross-modal"),        # several in, another out
    ({"text"}, {"text"}, "unimodal"),                     # translation between languages
])
def test_kind(inputs, outputs, expected):
    assert taxonomy.kind(inputs, outputs) == expected


def test_fusion_is_named_by_what_is_combined():
    two = ("image", "audio")
    assert [taxonomy.fusion(two, c) for c in ("inputs", "representations", "predictions")] == \
        ["early", "intermediate", "late"]
    assert taxonomy.fusion(("image",), None) is None


def test_bad_descriptions_say_what_to_pass():
    with pytest.raises(ValueError, match="fuses nothing"):
        taxonomy.fusion(("image",), "inputs")
    with pytest.raises(ValueError, match="combines them somewhere"):
        taxonomy.fusion(("image", "text"), None)
    with pytest.raises(ValueError, match="can only be an output"):
        taxonomy.kind({"label"}, {"text"})
    with pytest.raises(ValueError, match="unknown"):
        taxonomy.kind({"picture"}, {"label"})
    with pytest.raises(TypeError, match="collection of names"):
        taxonomy.kind("image", {"label"})
    with pytest.raises(ValueError, match="term must be"):
        taxonomy.Claim("x", taxonomy.Model("m", ("image",), ("label",)), "says", "fused")


def test_a_claim_can_be_wrong():
    wrong = taxonomy.Claim("x", taxonomy.Model("m", ("image", "audio"), ("label",), "representations"),
                           "early fusion", "early")
    assert not wrong.holds


def _chapter_text(chapter):
    cells = json.loads((ROOT / f"{chapter}.ipynb").read_text())["cells"]
    return re.sub(r"\s+", " ", "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown"))


@pytest.mark.parametrize("claim", taxonomy.BOOK, ids=lambda c: f"{Path(c.chapter).name}:{c.model.name}")
def test_every_chapter_says_what_the_definition_gives(claim):
    assert claim.holds, f"{claim.model.name} is {claim.model.describe()}, but {claim.chapter} calls it {claim.term}"
    says = re.sub(r"\s+", " ", claim.says)
    assert says in _chapter_text(claim.chapter), f"{claim.chapter} no longer says {claim.says!r}: update taxonomy.BOOK"
