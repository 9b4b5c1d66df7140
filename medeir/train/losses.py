"""Training losses, written on embeddings so they can be checked on plain tensors."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def in_batch_contrastive_loss(
    queries: torch.Tensor,
    passages: torch.Tensor,
    scale: float = 20.0,
    negatives: torch.Tensor | None = None,
    symmetric: bool = False,
) -> torch.Tensor:
    """InfoNCE with in-batch negatives (MultipleNegativesRanking): query i must pick passage i among all passages
    (and the optional hard ``negatives``) by scaled cosine similarity. ``symmetric`` adds passage -> query."""
    q = F.normalize(queries.float(), dim=-1)
    p = F.normalize(passages.float(), dim=-1)
    candidates = p if negatives is None else torch.cat([p, F.normalize(negatives.float(), dim=-1)])
    target = torch.arange(len(q), device=q.device)
    loss = F.cross_entropy(scale * q @ candidates.T, target)
    if symmetric:
        loss = (loss + F.cross_entropy(scale * p @ q.T, target)) / 2
    return loss


def embedding_distillation_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Mean squared distance between L2-normalised student and teacher embeddings (same dimension), summed over the
    embedding dimension: 0 when the directions agree, 4 when opposite."""
    s = F.normalize(student.float(), dim=-1)
    t = F.normalize(teacher.float(), dim=-1)
    return (s - t).pow(2).sum(-1).mean()


def similarity_distillation_loss(
    student_queries: torch.Tensor,
    student_candidates: torch.Tensor,
    teacher_queries: torch.Tensor,
    teacher_candidates: torch.Tensor,
    scale: float = 20.0,
) -> torch.Tensor:
    """KL divergence from the teacher's to the student's in-batch ranking: for every query, the softmax over scaled
    cosine similarities to all candidates. 0 when the student ranks (and spaces) the candidates as the teacher does."""

    def log_probs(queries: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        q = F.normalize(queries.float(), dim=-1)
        c = F.normalize(candidates.float(), dim=-1)
        return F.log_softmax(scale * q @ c.T, dim=-1)

    target = log_probs(teacher_queries, teacher_candidates)
    return F.kl_div(log_probs(student_queries, student_candidates), target, reduction="batchmean", log_target=True)
