"""Training losses, written on embeddings so they can be checked on plain tensors."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def cosine_logits(queries: torch.Tensor, candidates: torch.Tensor, scale: float) -> torch.Tensor:
    """``scale`` x the cosine similarity of every query (rows) to every candidate (columns), in fp32."""
    return scale * F.normalize(queries.float(), dim=-1) @ F.normalize(candidates.float(), dim=-1).T


def in_batch_contrastive_loss(
    queries: torch.Tensor,
    passages: torch.Tensor,
    scale: float = 20.0,
    negatives: torch.Tensor | None = None,
    symmetric: bool = False,
) -> torch.Tensor:
    """InfoNCE with in-batch negatives (MultipleNegativesRanking): query i must pick passage i among all passages
    (and the optional hard ``negatives``) by scaled cosine similarity. ``symmetric`` adds passage -> query."""
    candidates = passages if negatives is None else torch.cat([passages, negatives])
    target = torch.arange(len(queries), device=queries.device)
    loss = F.cross_entropy(cosine_logits(queries, candidates, scale), target)
    if symmetric:
        loss = (loss + F.cross_entropy(cosine_logits(passages, queries, scale), target)) / 2
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
    student = F.log_softmax(cosine_logits(student_queries, student_candidates, scale), dim=-1)
    teacher = F.log_softmax(cosine_logits(teacher_queries, teacher_candidates, scale), dim=-1)
    return F.kl_div(student, teacher, reduction="batchmean", log_target=True)


def cosine_distillation_loss(
    student_queries: torch.Tensor,
    student_candidates: torch.Tensor,
    teacher_queries: torch.Tensor,
    teacher_candidates: torch.Tensor,
) -> torch.Tensor:
    """Squared difference between the student's and the teacher's cosine similarity of every query to every
    candidate, summed over the candidates and averaged over the queries. Unlike the ranking KL, which a constant shift
    of one query's cosines leaves unchanged, it also asks for the teacher's levels: what a single similarity threshold
    or a global ordering of pairs reads."""
    student = cosine_logits(student_queries, student_candidates, 1.0)
    teacher = cosine_logits(teacher_queries, teacher_candidates, 1.0)
    return (student - teacher).pow(2).sum(-1).mean()


def graded_similarity_loss(
    first: torch.Tensor, second: torch.Tensor, scores: torch.Tensor, scale: float = 20.0
) -> torch.Tensor:
    """CoSENT-style ranking loss on graded pairs: for every two pairs whose gold ``scores`` differ, the pair with the
    higher score should have the higher cosine: log(1 + sum over such (hi, lo) of exp(scale * (cos_lo - cos_hi))),
    which approaches 0 as the cosines sort the pairs as the scores do, with margin. Only the order of the scores
    matters, not their scale."""
    cosines = F.cosine_similarity(first.float(), second.float(), dim=-1) * scale
    diffs = cosines[None, :] - cosines[:, None]  # [i, j] = cos_j - cos_i
    scores = scores.to(cosines.device)
    ordered = scores[:, None] > scores[None, :]  # pair i should beat pair j
    terms = torch.cat([torch.zeros(1, device=cosines.device), diffs[ordered]])
    return torch.logsumexp(terms, dim=0)
