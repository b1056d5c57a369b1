import pytest
import torch

from digitrec.errors import ConfigError
from digitrec.models import count_parameters, create_model, list_models, model_task, register_model


@pytest.mark.parametrize("name", [n for n in list_models("digit") if n != "ensemble"])  # the line reader: test_lines
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


def test_pool_first_cnn_keeps_shapes_and_parameter_count():
    plain, fast = create_model("cnn", kernel=3), create_model("cnn", kernel=3, pool_first=True)
    assert count_parameters(plain) == count_parameters(fast)
    assert fast(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    # Same weights, different order of pool and BN: not the same function (a BN with a negative
    # scale does not commute with max-pooling), so old checkpoints must keep pool_first=False.
    fast.load_state_dict(plain.state_dict())
    assert create_model("cnn").pool_first is False
    mixed = create_model("cnn", kernel=[5, 3])  # one size per layer
    assert mixed.conv1.kernel_size == (5, 5) and mixed.conv2.kernel_size == (3, 3)
    assert mixed(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_examples_cnn_is_pytorch_examples_net():
    # pytorch/examples' mnist Net has 1,199,882 parameters.
    assert count_parameters(create_model("examples_cnn")) == 1_199_882


def test_ensemble_averages_member_probabilities():
    torch.manual_seed(0)
    members = [{"arch": "mlp", "arch_args": {"hidden": 16}}, {"arch": "cnn", "arch_args": {"channels": [4, 8]}}]
    ens = create_model("ensemble", members=members).eval()
    x = torch.randn(5, 1, 28, 28)
    expected = (ens.members[0](x).softmax(-1) + ens.members[1](x).softmax(-1)) / 2
    out = ens(x)
    assert torch.allclose(out.exp(), expected, atol=1e-6)
    assert torch.allclose(out.softmax(-1), expected, atol=1e-6)  # log-probabilities behave as logits
    with pytest.raises(ConfigError, match="at least one member"):
        create_model("ensemble", members=[])


def test_a_tilted_ensemble_also_reads_the_digit_turned():
    torch.manual_seed(0)
    members = [{"arch": "cnn", "arch_args": {"channels": [4, 8]}}]
    # A quarter turn of a 28x28 image about its centre moves every pixel onto another exactly, so
    # the view inside the model is exactly torch.rot90's.
    ens = create_model("ensemble", members=members, tilts=[90]).eval()
    x = torch.rand(5, 1, 28, 28)
    m = ens.members[0]
    with torch.no_grad():
        expected = (m(x).softmax(-1) + m(torch.rot90(x, 1, dims=(2, 3))).softmax(-1)) / 2
        assert torch.allclose(ens(x).exp(), expected, atol=1e-5)
        upright = create_model("ensemble", members=members, tilts=[]).eval()
        upright.load_state_dict(ens.state_dict())  # the views' grids are not weights
        assert torch.allclose(upright(x).exp(), m(x).softmax(-1), atol=1e-6)
    assert "grids" not in "".join(ens.state_dict())


def test_every_model_has_a_task_and_list_models_filters_by_it():
    assert list_models("line") == ["linecnn"]
    assert set(list_models("digit")) | set(list_models("line")) == set(list_models())
    assert {"mlp", "cnn", "deepcnn", "ensemble"} <= set(list_models("digit"))
    assert model_task("cnn") == "digit" and model_task("linecnn") == "line"
    with pytest.raises(ConfigError, match="unknown model"):
        model_task("resnet")
    with pytest.raises(ValueError, match="unknown task"):
        register_model(task="sentence")
