"""What complementary pairing costs in accuracy, on a real task that runs here.

A small CNN (conv 3x3 1->16, conv 3x3/2 16->32, fc 512->10) is trained with
numpy on the handwritten digits shipped with scikit-learn (no download),
its weights quantized to 8 bits per layer, and every layer's filters paired
(filter j := NOT filter i) by the exact least-distortion pairing and by each
heuristic.  The table gives the test accuracy before and after pairing, the
total distortion, and the accuracy after a short fine-tuning that keeps each
pair complementary (filter j tied to -u - 1 LSB), the remedy DDC-PIM's
filter-wise complementary correlation applies.

    pip install scikit-learn     # the extra 'bench' of pyproject.toml
    python benchmarks/pairing_accuracy.py [--seed 0] [--epochs 40]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from mapcert.formulations.pairing import PairingProblem, solve_pairing
from mapcert.formulations.pairing.cost import paired_weights
from mapcert.solvers.pairing_heuristics import PAIRING_HEURISTICS

BITS = 8


def im2col(x: np.ndarray, k: int, stride: int, pad: int) -> tuple[np.ndarray, int, int]:
    n, c, h, w = x.shape
    x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    ho, wo = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    cols = np.empty((n, c, k, k, ho, wo))
    for i in range(k):
        for j in range(k):
            cols[:, :, i, j] = x[:, :, i:i + stride * ho:stride, j:j + stride * wo:stride]
    return cols.transpose(0, 4, 5, 1, 2, 3).reshape(n * ho * wo, -1), ho, wo


def col2im(cols: np.ndarray, shape, k: int, stride: int, pad: int) -> np.ndarray:
    n, c, h, w = shape
    ho, wo = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    cols = cols.reshape(n, ho, wo, c, k, k).transpose(0, 3, 4, 5, 1, 2)
    x = np.zeros((n, c, h + 2 * pad, w + 2 * pad))
    for i in range(k):
        for j in range(k):
            x[:, :, i:i + stride * ho:stride, j:j + stride * wo:stride] += cols[:, :, i, j]
    return x[:, :, pad:pad + h, pad:pad + w]


LAYERS = [("conv1", 16, 1, 1), ("conv2", 32, 16, 2)]  # name, filters, channels, stride


class SmallCNN:
    def __init__(self, seed: int):
        rng = np.random.default_rng(seed)
        self.w = {
            "conv1": rng.normal(0, np.sqrt(2 / 9), (16, 9)),
            "conv2": rng.normal(0, np.sqrt(2 / 144), (32, 144)),
            "fc": rng.normal(0, np.sqrt(2 / 512), (10, 512)),
        }
        self.b = {k: np.zeros(v.shape[0]) for k, v in self.w.items()}

    def forward(self, x: np.ndarray, weights=None, keep=False):
        w = weights or self.w
        cache = {}
        h = x
        for name, filters, _, stride in LAYERS:
            cols, ho, wo = im2col(h, 3, stride, 1)
            z = cols @ w[name].T + self.b[name]
            cache[name] = (cols, h.shape, ho, wo, z)
            h = np.maximum(z, 0).reshape(x.shape[0], ho, wo, filters).transpose(0, 3, 1, 2)
        flat = h.reshape(x.shape[0], -1)
        cache["fc"] = flat
        logits = flat @ w["fc"].T + self.b["fc"]
        return (logits, cache) if keep else logits

    def gradients(self, x: np.ndarray, y: np.ndarray):
        logits, cache = self.forward(x, keep=True)
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        p[np.arange(len(y)), y] -= 1
        d = p / len(y)
        grads = {"fc": d.T @ cache["fc"]}
        bias = {"fc": d.sum(axis=0)}
        dh = (d @ self.w["fc"]).reshape(x.shape[0], 32, 4, 4)
        for name, filters, _, stride in reversed(LAYERS):
            cols, shape, ho, wo, z = cache[name]
            dz = dh.transpose(0, 2, 3, 1).reshape(-1, filters) * (z > 0)
            grads[name] = dz.T @ cols
            bias[name] = dz.sum(axis=0)
            dh = col2im(dz @ self.w[name], shape, 3, stride, 1)
        return grads, bias


def accuracy(model: SmallCNN, x, y, weights=None) -> float:
    return float((model.forward(x, weights).argmax(axis=1) == y).mean())


def train(model: SmallCNN, x, y, epochs: int, seed: int, ties=None, lr: float = 0.01) -> None:
    """Adam; ``ties`` maps a layer to pairs whose second filter is kept at
    -first - lsb (complementary in the quantized domain)."""
    rng = np.random.default_rng(seed)
    params = list(model.w) + [f"b:{k}" for k in model.b]
    m = {k: 0.0 for k in params}
    v = {k: 0.0 for k in params}
    t = 0
    for _ in range(epochs):
        order = rng.permutation(len(y))
        for start in range(0, len(y), 64):
            idx = order[start:start + 64]
            gw, gb = model.gradients(x[idx], y[idx])
            if ties:
                for name, (pairs, _) in ties.items():
                    for i, j in pairs:  # w_j = -w_i - lsb: one free parameter per pair
                        gw[name][i] = gw[name][i] - gw[name][j]
                        gw[name][j] = 0.0
            t += 1
            for key in params:
                target, grad = (model.b, gb) if key.startswith("b:") else (model.w, gw)
                name = key[2:] if key.startswith("b:") else key
                m[key] = 0.9 * m[key] + 0.1 * grad[name]
                v[key] = 0.999 * v[key] + 0.001 * grad[name] ** 2
                target[name] -= lr * (m[key] / (1 - 0.9 ** t)) / (np.sqrt(v[key] / (1 - 0.999 ** t)) + 1e-8)
            if ties:
                for name, (pairs, lsb) in ties.items():
                    for i, j in pairs:
                        model.w[name][j] = -model.w[name][i] - lsb


def quantize(w: np.ndarray) -> tuple[np.ndarray, float]:
    scale = np.abs(w).max() / (2 ** (BITS - 1) - 1)
    return np.clip(np.rint(w / scale), -(2 ** (BITS - 1)), 2 ** (BITS - 1) - 1).astype(np.int64), scale


def paired_model_weights(model: SmallCNN, method: str) -> tuple[dict, dict, int]:
    out, pairings, distortion = {}, {}, 0
    for name, w in model.w.items():
        q, scale = quantize(w)
        problem = PairingProblem(q, bits=BITS, name=name)
        if method == "exact":
            pairing = solve_pairing(problem, "milp").pairing
        else:
            pairing = PAIRING_HEURISTICS[method](problem)
        paired = paired_weights(problem, pairing)
        distortion += int(((paired - q) ** 2).sum())
        out[name] = paired * scale
        pairings[name] = (pairing, scale)
    return out, pairings, distortion


def main() -> int:
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        print("needs scikit-learn: pip install 'mapcert[bench]' (or scikit-learn)")
        return 2
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--finetune", type=int, default=15, help="epochs of complementary fine-tuning")
    args = parser.parse_args()

    digits = load_digits()
    x = (digits.images / 16.0)[:, None, :, :]
    y = digits.target
    order = np.random.default_rng(args.seed).permutation(len(y))
    train_idx, test_idx = order[:1400], order[1400:]
    model = SmallCNN(args.seed)
    train(model, x[train_idx], y[train_idx], args.epochs, args.seed)
    float_acc = accuracy(model, x[test_idx], y[test_idx])
    quantized = {k: quantize(w)[0] * quantize(w)[1] for k, w in model.w.items()}
    quant_acc = accuracy(model, x[test_idx], y[test_idx], quantized)
    print(f"digits: {len(train_idx)} train, {len(test_idx)} test images; float accuracy {100 * float_acc:.2f}%, "
          f"8-bit accuracy {100 * quant_acc:.2f}%")
    print(f"{'pairing':14s} {'distortion':>12s} {'accuracy':>9s} {'drop':>7s} {'after fine-tune':>16s}")
    for method in ["exact"] + list(PAIRING_HEURISTICS):
        weights, pairings, distortion = paired_model_weights(model, method)
        acc = accuracy(model, x[test_idx], y[test_idx], weights)
        tuned = SmallCNN(args.seed)
        tuned.w = {k: v.copy() for k, v in weights.items()}
        tuned.b = {k: v.copy() for k, v in model.b.items()}
        ties = {name: (p.pairs, scale) for name, (p, scale) in pairings.items()}
        train(tuned, x[train_idx], y[train_idx], args.finetune, args.seed + 1, ties=ties, lr=0.002)
        refit = {}
        for name, w in tuned.w.items():
            pairing, scale = pairings[name]
            q = np.clip(np.rint(w / scale), -(2 ** (BITS - 1)), 2 ** (BITS - 1) - 1).astype(np.int64)
            refit[name] = paired_weights(PairingProblem(q, bits=BITS), pairing) * scale
        tuned_acc = accuracy(tuned, x[test_idx], y[test_idx], refit)
        print(f"{method:14s} {distortion:12,d} {100 * acc:8.2f}% {100 * (quant_acc - acc):6.2f}% {100 * tuned_acc:15.2f}%",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
