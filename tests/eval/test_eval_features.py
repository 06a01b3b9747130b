import pytest
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from openjepa.eval.features import extract_features


class _DictDS(Dataset):
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return {"x": self.x[i], "y": int(self.y[i])}


def _data(n=37):
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 3, 4, generator=g), torch.arange(n) % 5


def test_tokens_are_average_pooled():
    x, y = _data()
    loader = DataLoader(TensorDataset(x, y), batch_size=8)
    feats, labels = extract_features(lambda b: b * 2.0, loader, "cpu", progress=False)  # (B, N=3, D=4)
    assert feats.shape == (37, 4) and feats.dtype == torch.float32 and feats.device.type == "cpu"
    torch.testing.assert_close(feats, (x * 2.0).mean(dim=1))
    assert labels.dtype == torch.int64 and torch.equal(labels, y)


def test_pooled_features_pass_through_and_max_items():
    x, y = _data()
    loader = DataLoader(_DictDS(x, y), batch_size=10)
    encode = lambda b: b.flatten(1).to(torch.float16)  # (B, 12), non-float32 output
    feats, labels = extract_features(encode, loader, torch.device("cpu"), max_items=25, progress=False)
    assert feats.shape == (25, 12) and feats.dtype == torch.float32
    torch.testing.assert_close(feats, x[:25].flatten(1).half().float())
    assert torch.equal(labels, y[:25])
    feats, _ = extract_features(encode, loader, "cpu", max_items=0, progress=False)
    assert feats.shape == (37, 12)


def test_encoder_runs_without_grad():
    x, y = _data(8)
    w = torch.ones(4, 2, requires_grad=True)
    feats, _ = extract_features(lambda b: b @ w, DataLoader(TensorDataset(x, y), batch_size=4), "cpu", progress=False)
    assert not feats.requires_grad and feats.shape == (8, 2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_autocast_returns_float32_cpu():
    x, y = _data(16)
    lin = torch.nn.Linear(4, 6).cuda()
    feats, labels = extract_features(lin, DataLoader(TensorDataset(x, y), batch_size=5), "cuda", progress=False)
    assert feats.device.type == "cpu" and feats.dtype == torch.float32 and feats.shape == (16, 6)
    torch.testing.assert_close(feats, lin.cpu()(x).mean(1).detach(), atol=0.05, rtol=0.05)


def test_extract_keeps_float16_tokens_and_pixel_patches_match_unfold():
    from openjepa.eval.features import extract, pixel_patches

    x, y = _data()
    f = extract(lambda b: b * 2.0, DataLoader(TensorDataset(x, y), batch_size=8), "cpu", max_items=20,
                progress=False, keep_tokens=True)
    assert f.tokens.dtype == torch.float16 and f.tokens.shape == (20, 3, 4)
    torch.testing.assert_close(f.tokens, (x[:20] * 2.0).half())
    torch.testing.assert_close(f.x, (x[:20] * 2.0).mean(1))
    assert extract(lambda b: b, DataLoader(TensorDataset(x, y), batch_size=8), "cpu", progress=False).tokens is None
    img = torch.randn(2, 3, 8, 12)
    want = torch.nn.functional.unfold(img, kernel_size=4, stride=4).transpose(1, 2)  # (B, T, C*p*p), (C, p, p) order
    assert torch.equal(pixel_patches(img, 4), want)
    with pytest.raises(ValueError):
        pixel_patches(img, 5)
