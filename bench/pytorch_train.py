"""PyTorch side of `npm run bench:train`: one ResNet-20-shaped BNN training step (forward + backward
+ SGD) with float-simulated binarization (sign with the clipped straight-through estimator for
weights and activations), the same architecture as onebit's `resnet20` with the `ste` preset.
Prints one JSON line: {"img_per_s": ..., "threads": ..., "torch": ...}.
Usage: python3 bench/pytorch_train.py BATCH STEPS THREADS"""
import json, sys, time
import torch
import torch.nn as nn
import torch.nn.functional as F

batch, steps, threads = (int(a) for a in sys.argv[1:4])
torch.set_num_threads(threads)
torch.manual_seed(0)


class SignSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * (x.abs() <= 1).to(g.dtype)


class BinConv(nn.Conv2d):
    def forward(self, x):
        return F.conv2d(SignSTE.apply(x), SignSTE.apply(self.weight), None, self.stride, self.padding)


def shortcut_a(x, out_c):
    pad = (out_c - x.shape[1]) // 2
    return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, pad, pad))


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.cin, self.cout, self.stride = cin, cout, stride
        self.conv1 = BinConv(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = BinConv(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)

    def forward(self, x):
        r = x if self.stride == 1 and self.cin == self.cout else shortcut_a(x, self.cout)
        out = self.bn1(self.conv1(x)) + r
        return self.bn2(self.conv2(out)) + out


layers = [nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16)]
cin = 16
for stage, c in enumerate([16, 32, 64]):
    for b in range(3):
        layers.append(Block(cin, c, 2 if b == 0 and stage > 0 else 1))
        cin = c
layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.BatchNorm1d(64), nn.Linear(64, 10)]
model = nn.Sequential(*layers)
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
x = torch.randn(batch, 3, 32, 32)
y = torch.randint(0, 10, (batch,))


def step():
    opt.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    opt.step()


step()  # warm-up
t0 = time.perf_counter()
for _ in range(steps):
    step()
dt = time.perf_counter() - t0
print(json.dumps({"img_per_s": batch * steps / dt, "threads": torch.get_num_threads(), "torch": torch.__version__}))
