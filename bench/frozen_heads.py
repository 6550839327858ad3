"""What bench/structure_heads.py and bench/refit_head.py share: one epoch of a linear head on
frozen, standardised encoder features, with the training script's weighted, smoothed losses."""
import torch
import torch.nn.functional as F

import finetune_encoder as fe


def head_epoch(head, opt, x, labels, weights, groups, batch=256, dropout=0.3):
    """One shuffled pass over `x`; the loss sums the first `groups` label groups."""
    order = torch.randperm(len(x))
    for i in range(0, len(x), batch):
        idx = order[i:i + batch]
        logits = head(F.dropout(x[idx], dropout, True))
        loss = sum(F.cross_entropy(logits[:, fe.OFFSETS[a]:fe.OFFSETS[a + 1]], labels[idx, a],
                                   weight=weights[a], label_smoothing=0.1)
                   for a in range(groups))
        opt.zero_grad()
        loss.backward()
        opt.step()
