"""codesign.runtime.optim.Adam: the same steps as torch.optim.Adam, without importing torch._dynamo."""

import subprocess
import sys

import torch

from codesign.runtime.optim import Adam


def _run(make, steps=5):
    torch.manual_seed(0)
    lin1, lin2 = torch.nn.Linear(6, 5), torch.nn.Linear(5, 3)
    x, y = torch.randn(20, 6), torch.randint(0, 3, (20,))
    groups = [{"params": list(lin1.parameters()), "weight_decay": 5e-4},
              {"params": list(lin2.parameters()), "weight_decay": 0.0}]
    opt = make(groups)
    for i in range(steps):
        opt.zero_grad()
        out = lin2(torch.relu(lin1(x)))
        loss = torch.nn.functional.cross_entropy(out, y)
        loss.backward()
        if i == 2:  # a parameter without a gradient this step is skipped (its state does not advance)
            lin2.bias.grad = None
        opt.step()
    return [p.detach().clone() for p in (*lin1.parameters(), *lin2.parameters())]


def test_steps_match_torch_adam():
    ours = _run(lambda g: Adam(g, lr=0.01))
    theirs = _run(lambda g: torch.optim.Adam(g, lr=0.01))
    for a, b in zip(ours, theirs, strict=True):
        assert torch.equal(a, b)  # the same update function on the same state: bit-identical


def test_plain_tensor_list_and_state():
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = Adam([p], lr=0.1)
    p.grad = torch.tensor([0.5, -0.5])
    opt.step()
    # first step: m_hat = g, v_hat = g^2, so p -= lr * g / (|g| + eps) = lr * sign(g)
    assert torch.allclose(p.detach(), torch.tensor([0.9, -1.9]), atol=1e-6)
    assert float(opt.state[p]["step"]) == 1.0
    opt.zero_grad()
    assert p.grad is None


def test_no_dynamo_import():
    code = ("import sys, torch\nfrom codesign.runtime.optim import Adam\n"
            "p = torch.nn.Parameter(torch.ones(3)); o = Adam([p], lr=0.1)\n"
            "p.grad = torch.ones(3); o.step(); o.zero_grad()\n"
            "print('torch._dynamo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
