import pytest
import torch

from digitrec.errors import ConfigError
from digitrec.models import count_parameters, create_model, list_models, register_model


@pytest.mark.parametrize("name", list_models())
def test_every_model_maps_a_batch_to_ten_logits_and_learns(name):
    torch.manual_seed(0)
    model = create_model(name)
    x = torch.randn(8, 1, 28, 28)
    y = torch.arange(8) % 10
    logits = model(x)
    assert logits.shape == (8, 10)
    # One optimisation step on a fixed batch must lower its loss: the graph is wired end to end.
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    model.eval()  # no dropout noise, so the comparison is fair
    before = torch.nn.functional.cross_entropy(model(x), y)
    opt.zero_grad()
    before.backward()
    opt.step()
    after = torch.nn.functional.cross_entropy(model(x), y)
    assert after < before


def test_mlp_is_the_tutorial_simplenn():
    model = create_model("mlp")
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes == {"fc1.weight": (128, 784), "fc1.bias": (128,), "fc2.weight": (10, 128), "fc2.bias": (10,)}
    assert count_parameters(model) == 784 * 128 + 128 + 128 * 10 + 10


def test_registry_is_strict():
    assert {"mlp", "cnn"} <= set(list_models())
    with pytest.raises(ConfigError, match="unknown model 'resnet'"):
        create_model("resnet")
    with pytest.raises(ConfigError, match="bad arguments"):
        create_model("mlp", width=3)
    with pytest.raises(ValueError, match="'mlp' is already registered"):

        def mlp():  # same name as the tutorial model
            return None

        register_model(mlp)


def test_models_accept_flat_and_image_batches_alike():
    mlp = create_model("mlp")
    x = torch.randn(3, 1, 28, 28)
    assert torch.allclose(mlp(x), mlp(x.reshape(3, 784)))
