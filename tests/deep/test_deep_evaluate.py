"""The trainer's streamed evaluation (ufm.deep.evaluate.measure) equals the one-shot functions of ufm.analysis on
all the embeddings at once, in any batching; the model's mode is kept."""

import pytest
import torch

from ufm.analysis import class_means, geometry_summary, gram_distance, mean_gram, nc_report
from ufm.deep.evaluate import Normalizer, embed, embedded, measure
from ufm.deep.model import ResNet18
from ufm.geometry import etf_gram, prototypes_from_gram

K = 4


def images(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images ``[n, 3, 8, 8]`` of K colours with noise, labels ``[n]``."""
    gen = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % K
    x = 40 + 50 * y.view(-1, 1, 1, 1) + 20 * torch.randn(n, 3, 8, 8, generator=gen)
    return x.clamp(0, 255).to(torch.uint8), y


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    model = ResNet18(width=2, head="linear", embed_dim=6).double()
    normalize = Normalizer((120.0,) * 3, (60.0,) * 3, 3, torch.device("cpu"), dtype=torch.float64)
    w = prototypes_from_gram(etf_gram(K), 6, seed=0, dtype=torch.float64)
    return model, normalize, w


@pytest.mark.parametrize("batch", [1, 4, 512])
def test_streamed_measures_equal_the_one_shot_functions(setup, batch):
    model, normalize, w = setup
    train, test = images(19, 1), images(11, 2)
    g_star, minority = etf_gram(K).double(), torch.tensor([False, False, True, True])
    metrics, grams = measure(model, train, test, normalize, w, g_star, minority, batch=batch)
    z, z_test = embed(model, train[0], normalize), embed(model, test[0], normalize)
    expected = {key: float(v) for key, v in geometry_summary(z, train[1], g_star, minority).items()}
    expected["distance_centered"] = float(gram_distance(mean_gram(z, train[1], K, center=True), g_star))
    expected.update(nc_report(z, train[1], K, w))
    centers = torch.nn.functional.normalize(class_means(z, train[1], K), dim=-1)
    expected["train_ncc_accuracy"] = float(((z @ centers.T).argmax(1) == train[1]).double().mean())
    expected["ncc_accuracy"] = float(((z_test @ centers.T).argmax(1) == test[1]).double().mean())
    expected["prototype_accuracy"] = float(((z_test @ w.T).argmax(1) == test[1]).double().mean())
    assert list(metrics) == list(expected)
    assert metrics == pytest.approx(expected, rel=1e-10, abs=1e-12)
    assert torch.allclose(grams["g_m"], mean_gram(z, train[1], K), atol=1e-12)
    assert torch.allclose(grams["g_m_centered"], mean_gram(z, train[1], K, center=True), atol=1e-12)


def test_embedding_keeps_the_models_mode_even_when_stopped_early(setup):
    model, normalize, _ = setup
    model.train()
    batches = embedded(model, images(10, 3)[0], normalize, batch=4)
    first = next(batches)
    assert first.shape == (4, 6) and model.training and torch.is_grad_enabled()
    assert torch.equal(torch.cat([first, *batches]), embed(model, images(10, 3)[0], normalize))
    assert model.training
