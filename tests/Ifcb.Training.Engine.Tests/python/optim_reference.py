"""PyTorch's answers for OptimizerParityTests, with Debian's python3-torch (and python3-sklearn for class weights).

Reads one JSON request on stdin, writes one JSON answer on stdout:
  {"command": "optimizers", "runs": [{"name": adam|adamw|sgd, "lr", "weight_decay", "params": [[...]], "shapes": [[...]],
   "grads": [[[...] per param] per step]}]}  ->  {"params": [[[[...] per param] after each step] per run]}
  {"command": "schedule", "name": cosine|plateau, "lr", "emax", "patience", "factor", "val_losses": [...]}
                                           ->  {"lrs": [the rate each epoch trains with]}
  {"command": "loss", "logits": [[...]], "targets": [...], "weight": [...], "batch": B}
                      ->  {"mean", "sum", "unweighted_mean", "batch_means": [weighted mean of each batch of B rows]}
  {"command": "balanced", "classes": n, "y": [...]}  ->  {"weights": sklearn's compute_class_weight("balanced")}
"""
import json
import sys

import torch


def optimizer(req):
    params = [torch.tensor(p, dtype=torch.float32).reshape(s).requires_grad_() for p, s in zip(req["params"], req["shapes"])]
    lr, wd = req["lr"], req["weight_decay"]
    if req["name"] == "adam":
        opt = torch.optim.Adam(params, lr=lr, weight_decay=wd)
    elif req["name"] == "adamw":
        opt = torch.optim.AdamW(params, lr=lr, weight_decay=wd)
    else:
        opt = torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=wd)
    after = []
    for grads in req["grads"]:
        for p, g, s in zip(params, grads, req["shapes"]):
            p.grad = torch.tensor(g, dtype=torch.float32).reshape(s)
        opt.step()
        after.append([p.detach().reshape(-1).tolist() for p in params])
    return {"params": after}


def optimizers(req):
    return {"params": [optimizer(run)["params"] for run in req["runs"]]}


def schedule(req):
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=req["lr"])
    if req["name"] == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=req["emax"], eta_min=0)
    else:
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=req["factor"], patience=req["patience"])
    lrs = []
    for v in req["val_losses"]:
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        if req["name"] == "cosine":
            sched.step()
        else:
            sched.step(v)
    return {"lrs": lrs}


def loss(req):
    logits = torch.tensor(req["logits"], dtype=torch.float32)
    targets = torch.tensor(req["targets"], dtype=torch.int64)
    weight = torch.tensor(req["weight"], dtype=torch.float32)
    mean = torch.nn.CrossEntropyLoss(weight=weight, reduction="mean")(logits, targets)
    total = torch.nn.CrossEntropyLoss(weight=weight, reduction="sum")(logits, targets)
    plain = torch.nn.CrossEntropyLoss()(logits, targets)
    b = req["batch"]
    batch_means = [torch.nn.CrossEntropyLoss(weight=weight)(logits[i:i + b], targets[i:i + b]).item()
                   for i in range(0, len(targets), b)]
    return {"mean": mean.item(), "sum": total.item(), "unweighted_mean": plain.item(), "batch_means": batch_means}


def balanced(req):
    import numpy as np
    from sklearn.utils.class_weight import compute_class_weight
    classes = np.arange(req["classes"])
    return {"weights": compute_class_weight("balanced", classes=classes, y=np.array(req["y"])).tolist()}


request = json.load(sys.stdin)
answer = {"optimizers": optimizers, "schedule": schedule, "loss": loss, "balanced": balanced}[request["command"]](request)
print(json.dumps(answer))
