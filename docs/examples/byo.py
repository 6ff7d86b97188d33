"""Price a PyG model on three devices, train a GEBT ticket on your own graph, reload it in PyG."""
import torch
from torch_geometric.data import Data
from torch_geometric.nn.models import GCN
from torch_geometric.utils import stochastic_blockmodel_graph as sbm

from codesign.dispatch.byo import price_model
from codesign.graphs.export import export_pyg, load_pyg, test_accuracy
from codesign.graphs.pipeline import GraphTrainConfig, train

for r in price_model(lambda f, c: GCN(f, 64, 2, c), "cora", ["h100", "jetson-agx-orin", "gcn-accelerator"]):
    print(f"{r['device']:16} {r['phase']:20} {r['latency_s']:.2e} s {r['energy_j']:.2e} J")
torch.manual_seed(0)  # the graph below is random: seeded, so the accuracies printed are these
y = torch.arange(400) // 200  # a user's graph: two communities of 200 nodes, noisy features
g = Data(x=torch.randn(400, 32) + 0.3 * y[:, None], y=y, edge_index=sbm([200, 200], [[.05, .005], [.005, .05]]))
torch.save({k: g[k] for k in g.keys()}, "g.pt")  # a plain dict of tensors: loads without running code
result = train(GraphTrainConfig(dataset="file:g.pt", method="gebt", epochs=30, out="runs/mine"), progress=False)
model, data, edge_indices = load_pyg(export_pyg("runs/mine", "runs/mine-pyg"))
reloaded = test_accuracy(model, data, edge_indices)
print(f"ticket test accuracy {result['test_accuracy']:.4f}, reloaded in PyG {reloaded:.4f}")
