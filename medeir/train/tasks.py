"""The two training stages as tasks: each builds its model and data and turns a step number into a loss."""

from __future__ import annotations

import itertools
from pathlib import Path

import torch
import torch.utils.checkpoint

from .data import (
    ClozeSplitter,
    PackedRows,
    Pair,
    PairMixture,
    PassageDegrader,
    QueryShortener,
    ScoredPairSampler,
    TextSampler,
    expand_files,
    mask_tokens,
    read_pairs,
)
from .losses import (
    cosine_distillation_loss,
    embedding_distillation_loss,
    graded_similarity_loss,
    in_batch_contrastive_loss,
    similarity_distillation_loss,
)
from .settings import RunSettings


def holdout_filter(file_name: str, record: dict) -> bool:
    """Keep a training record unless an evaluation task holds it out (see medeir.evaluation). Held-out records are
    recognised by their text (the MQP hold-out's questions, the clustering sample's answers), so that a re-ordered or
    filtered copy of a staged file is filtered exactly as the staged file is."""
    from medeir.evaluation.clustering import clustering_answers
    from medeir.evaluation.pair_classification import mqp_holdout_questions

    if file_name.startswith("mqp_pairs"):
        return record.get("query") not in mqp_holdout_questions()
    if "sentence1" in record:  # a graded pair (e.g. MQP's, python -m medeir.train.graded_mqp) of any file
        texts = {text for text in (record.get("sentence1"), record.get("sentence2")) if isinstance(text, str)}
        return not texts & mqp_holdout_questions()  # a row without text fails read_scored_pairs' own check
    return not (file_name.startswith("medquad_pairs") and record.get("positive") in clustering_answers())


class MLMTask:
    """Masked-language modelling on packed rows; the sequence length follows the curriculum's phases."""

    model_class = "MedEIRForMaskedLM"
    prompts = None  # an MLM folder is no embedding model: no sentence-transformers files

    def __init__(self, settings: RunSettings, tokenizer, device: torch.device):
        self.settings = settings.mlm
        self.tokenizer = tokenizer
        self.device = device
        self.files = expand_files(settings.data_dir, settings.mlm.text_files)
        self.seed = settings.seed
        self.generator = torch.Generator().manual_seed(settings.seed)
        self.phase_ends = list(itertools.accumulate(steps for _, steps in self.settings.curriculum))
        self.stream: PackedRows | None = None

    @property
    def total_steps(self) -> int:
        return self.phase_ends[-1]

    def seq_len(self, step: int) -> int:
        phase = next(i for i, end in enumerate(self.phase_ends) if step < end)
        return self.settings.curriculum[phase][0]

    def data_state(self) -> dict:
        """Where the row stream stands (None before the first step), the masking generator's state and the seed
        of the streams built at later curriculum phases."""
        stream = self.stream.state_dict() if self.stream is not None else None
        return {"seed": self.seed, "stream": stream, "masks": self.generator.get_state()}

    def resume(self, step: int, state: dict | None) -> None:
        """Continue exactly where ``data_state`` was taken; without one (a checkpoint of another process count),
        re-seed by ``step``: the shards are then read in a new order, so rows read before may come again."""
        self.stream = None
        if state is None:
            self.seed += step
            self.generator.manual_seed(self.seed)
            return
        self.seed = state["seed"]  # the base seed, re-seeded by an earlier resume without a state
        self.generator.set_state(state["masks"])
        if state["stream"] is not None:
            self.stream = PackedRows(self.tokenizer, self.files, state["stream"]["seq_len"], self.seed)
            self.stream.load_state_dict(state["stream"])

    def loss(self, model, step: int) -> torch.Tensor:
        length = self.seq_len(step)
        if self.stream is None or length != self.stream.seq_len:
            self.stream = PackedRows(self.tokenizer, self.files, length, self.seed)
        rows = max(1, self.settings.tokens_per_batch // length)
        ids = torch.tensor([next(self.stream) for _ in range(rows)])
        masked, labels = mask_tokens(ids, self.tokenizer, self.settings.mask_prob, self.generator)
        return model(input_ids=masked.to(self.device), labels=labels.to(self.device)).loss


class ContrastiveTask:
    """In-batch-negative contrastive loss on pair mixtures, plus optional distillation from a teacher
    (all-MiniLM-L6-v2): squared distance to its embeddings of the same texts (and of extra distill-only text lines),
    KL toward its in-batch ranking of the candidates, KL toward its ranking of graded sentence pairs (each KL
    optionally with the squared difference of the cosines themselves), and KL toward its ranking of inverse-cloze
    passages cut from distill-only text lines."""

    model_class = "MedEIRModel"

    def __init__(self, settings: RunSettings, tokenizer, device: torch.device):
        self.settings = settings.contrastive
        self.tokenizer = tokenizer
        self.device = device
        self.seed = settings.seed
        data_dir = Path(settings.data_dir)
        sources = {  # a glob's shards are pooled into one source of the pattern's weight
            name: [pair for file in expand_files(data_dir, [name]) for pair in read_pairs(file, holdout_filter)]
            for name in self.settings.pair_files
        }
        self.mixture = PairMixture(sources, self.settings.pair_files, settings.seed)
        self.texts = None
        if self.settings.distill_texts_per_batch:
            files = {}
            for name, weight in self.settings.distill_text_files.items():
                shards = expand_files(data_dir, [name])
                files.update({file: weight / len(shards) for file in shards})  # a glob's weight is shared
            self.texts = TextSampler(files, settings.seed)
        self.graded = None
        if self.settings.graded_pairs_per_batch:
            files = expand_files(data_dir, self.settings.graded_pair_files)
            self.graded = ScoredPairSampler(files, settings.seed, holdout_filter)
        degraded, keywords = self.settings.degraded_passage_share, self.settings.keyword_query_share
        self.degrader = PassageDegrader(degraded, settings.seed) if degraded else None
        queries = (pair.query for pairs in sources.values() for pair in pairs)
        shortenable = self._pairs_of(sources, "keyword_query_files")
        self.shortener = QueryShortener(keywords, queries, settings.seed, shortenable) if keywords else None
        keyword_only = self.settings.similarity_distill_keyword_only
        taught_files = self.settings.similarity_distill_files
        if keyword_only and not ((keywords > 0 or taught_files) and self.settings.similarity_distill_weight > 0):
            raise ValueError("similarity_distill_keyword_only needs keyword_query_share > 0 or "
                             "similarity_distill_files, and similarity_distill_weight > 0")
        if taught_files and not keyword_only:
            raise ValueError("similarity_distill_files needs similarity_distill_keyword_only")
        self.taught = self._pairs_of(sources, "similarity_distill_files") or frozenset()
        if self.settings.graded_teacher_weight > 0 and self.graded is None:
            raise ValueError("graded_teacher_weight needs graded_pair_files and graded_pairs_per_batch > 0")
        if self.settings.cosine_distill_weight > 0 and not (
            self.settings.similarity_distill_weight > 0 or self.settings.graded_teacher_weight > 0
        ):
            raise ValueError("cosine_distill_weight needs similarity_distill_weight > 0 or graded_teacher_weight > 0")
        self.cloze = None
        if self.settings.cloze_distill_weight > 0:
            if self.texts is None or not self.settings.distill_text_files:
                raise ValueError("cloze_distill_weight needs distill_text_files and distill_texts_per_batch > 0")
            self.cloze = ClozeSplitter(settings.seed)
        self.cloze_degrader = None
        if self.settings.cloze_degraded_share > 0:
            if self.cloze is None:
                raise ValueError("cloze_degraded_share needs cloze_distill_weight > 0")
            self.cloze_degrader = PassageDegrader(self.settings.cloze_degraded_share, settings.seed,
                                                  stream="cloze-degrade", setting="cloze_degraded_share")
        uses_teacher = self._teaches_pairs or self.settings.graded_teacher_weight > 0 or self.cloze is not None
        self.teacher = self._load_teacher() if uses_teacher else None

    @property
    def _teaches_pairs(self) -> bool:
        """Whether a teacher term reads the pairs (embedding or ranking distillation)."""
        return self.settings.distill_weight > 0 or self.settings.similarity_distill_weight > 0

    @property
    def total_steps(self) -> int:
        return self.settings.steps

    def _pairs_of(self, sources: dict[str, list[Pair]], setting: str) -> frozenset[Pair] | None:
        """The pairs of the pair_files named by the contrastive setting ``setting`` (``keyword_query_files``: whose
        queries alone may become keywords; ``similarity_distill_files``: whose rows the keyword-only KL counts too);
        None when it names none."""
        names = getattr(self.settings, setting)
        unknown = sorted(set(names) - set(sources))
        if unknown:
            raise ValueError(f"{setting} not among the pair_files: {unknown}")
        return frozenset(pair for name in names for pair in sources[name]) if names else None

    def _load_teacher(self):
        from sentence_transformers import SentenceTransformer

        from ..loading import minilm_path

        teacher = SentenceTransformer(str(minilm_path()), device=str(self.device))
        teacher.max_seq_length = self.settings.passage_max_length  # the student sees no more than this either
        teacher.eval()
        for param in teacher.parameters():
            param.requires_grad_(False)
        return teacher

    def _samplers(self) -> dict:
        """The run's data samplers by name (graded pairs, distill-only texts, the degrader and the shortener only
        where configured)."""
        samplers = {"mixture": self.mixture, "graded": self.graded, "texts": self.texts, "degrader": self.degrader,
                    "shortener": self.shortener, "cloze": self.cloze, "cloze_degrader": self.cloze_degrader}
        return {name: sampler for name, sampler in samplers.items() if sampler is not None}

    def data_state(self) -> dict:
        """The samplers' state: with it, a resumed run draws exactly the batches an uninterrupted one would."""
        return {name: sampler.state_dict() for name, sampler in self._samplers().items()}

    def resume(self, step: int, state: dict | None) -> None:
        """Continue the samplers from ``state`` (from ``data_state``); without one, re-seed them by ``step``."""
        for name, sampler in self._samplers().items():
            if state is None:
                sampler.rng.seed(f"{name}-{self.seed + step}")  # a stream of its own per sampler
            elif name not in state:
                raise ValueError(f"the checkpoint has no state for the {name} sampler (saved with other settings?)")
            else:
                sampler.load_state_dict(state[name])

    def embed(self, model, texts: list[str], max_length: int) -> torch.Tensor:
        """Pooled embeddings of ``texts``; with ``chunk_size`` set, chunk by chunk through activation checkpoints,
        so the loss still sees every in-batch negative while the backward pass holds one chunk's activations."""
        size = self.settings.chunk_size
        if not size:
            return self._embed_chunk(model, texts, max_length)
        chunks = [texts[start : start + size] for start in range(0, len(texts), size)]
        return torch.cat([self._embed_chunk(model, chunk, max_length, checkpointed=True) for chunk in chunks])

    def _embed_chunk(self, model, texts: list[str], max_length: int, checkpointed: bool = False) -> torch.Tensor:
        inputs = self.tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        ids, mask = (inputs[name].to(self.device) for name in ("input_ids", "attention_mask"))

        def forward(ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            return model(input_ids=ids, attention_mask=mask).pooler_output

        if checkpointed and torch.is_grad_enabled():
            # the recomputation replays the RNG state, so dropout masks match the first pass
            return torch.utils.checkpoint.checkpoint(forward, ids, mask, use_reentrant=False)
        return forward(ids, mask)

    @torch.no_grad()
    def teacher_embed(self, texts: list[str]) -> torch.Tensor:
        embeddings = self.teacher.encode(
            texts, batch_size=len(texts), convert_to_tensor=True, normalize_embeddings=True
        )
        return embeddings.to(self.device)

    @property
    def prompts(self) -> dict[str, str]:
        """The query/document prompts the student was trained with (written beside its weights)."""
        return {"query": self.settings.query_prompt, "document": self.settings.passage_prompt}

    def embed_queries(self, model, texts: list[str]) -> torch.Tensor:
        return self.embed(model, [self.settings.query_prompt + t for t in texts], self.settings.query_max_length)

    def embed_passages(self, model, texts: list[str]) -> torch.Tensor:
        return self.embed(model, [self.settings.passage_prompt + t for t in texts], self.settings.passage_max_length)

    def loss(self, model, step: int) -> torch.Tensor:
        s = self.settings
        drawn = pairs = self.mixture.batch(s.batch_size)
        if self.shortener is not None:
            pairs = self.shortener(drawn)
        queries = [p.query for p in pairs]
        passages = [p.positive for p in pairs]
        negatives = [p.negative for p in pairs if p.negative]
        read = passages + negatives  # what the student reads; the teacher reads the intact text
        if self.degrader is not None:
            read = self.degrader(read)
        q = self.embed_queries(model, queries)
        p = self.embed_passages(model, read[: len(passages)])
        n = self.embed_passages(model, read[len(passages) :]) if negatives else None
        loss = in_batch_contrastive_loss(q, p, s.scale, n, s.symmetric)
        if self.graded is not None:
            graded = self.graded.batch(s.graded_pairs_per_batch)
            firsts, seconds = [g.first for g in graded], [g.second for g in graded]
            first, second = self.embed_queries(model, firsts), self.embed_queries(model, seconds)
            scores = torch.tensor([g.score for g in graded])
            loss = loss + s.graded_weight * graded_similarity_loss(first, second, scores, s.scale)
            if s.graded_teacher_weight > 0:
                t_first, t_second = self.teacher_embed(firsts), self.teacher_embed(seconds)
                ranking = similarity_distillation_loss(first, second, t_first, t_second, s.scale)
                loss = loss + s.graded_teacher_weight * ranking
                if s.cosine_distill_weight > 0:
                    loss = loss + s.cosine_distill_weight * cosine_distillation_loss(first, second, t_first, t_second)
        if self.cloze is not None:
            loss = loss + s.cloze_distill_weight * self.cloze_loss(model)
        if not self._teaches_pairs:
            return loss
        t_q, t_p = self.teacher_embed(queries), self.teacher_embed(passages)
        row_sets = [list(range(len(pairs)))]
        if s.similarity_distill_keyword_only:  # the keyword rows, then the taught files' other rows: a term each
            changed = [old.query != new.query for old, new in zip(drawn, pairs, strict=True)]
            shortened = [i for i, c in enumerate(changed) if c]
            taught = [i for i, (old, c) in enumerate(zip(drawn, changed, strict=True)) if not c and old in self.taught]
            row_sets = [rows for rows in (shortened, taught) if rows]
        if s.similarity_distill_weight > 0 and row_sets:
            s_candidates, t_candidates = p, t_p
            if n is not None:
                s_candidates, t_candidates = torch.cat([p, n]), torch.cat([t_p, self.teacher_embed(negatives)])
            for rows in row_sets:
                ranking = similarity_distillation_loss(q[rows], s_candidates, t_q[rows], t_candidates, s.scale)
                loss = loss + s.similarity_distill_weight * ranking
                if s.cosine_distill_weight > 0:
                    levels = cosine_distillation_loss(q[rows], s_candidates, t_q[rows], t_candidates)
                    loss = loss + s.cosine_distill_weight * levels
        if s.distill_weight > 0:
            students, teachers = [q, p], [t_q, t_p]
            if self.texts is not None:
                extra = self.texts.sample(s.distill_texts_per_batch)
                students.append(self.embed_passages(model, extra))
                teachers.append(self.teacher_embed(extra))
            distill = embedding_distillation_loss(torch.cat(students), torch.cat(teachers))
            loss = loss + s.distill_weight * distill
        return loss

    def cloze_loss(self, model) -> torch.Tensor:
        """The ranking KL toward the teacher on a batch of inverse-cloze pairs from the distill text lines (0 when
        fewer than two lines qualify); the student reads ``cloze_degraded_share`` of the passages as keyword lists."""
        pairs = self.cloze(self.texts.sample(self.settings.distill_texts_per_batch))
        if len(pairs) < 2:
            return torch.zeros((), device=self.device)
        queries, passages = [query for query, _ in pairs], [passage for _, passage in pairs]
        read = self.cloze_degrader(passages) if self.cloze_degrader is not None else passages
        return similarity_distillation_loss(
            self.embed_queries(model, queries), self.embed_passages(model, read),
            self.teacher_embed(queries), self.teacher_embed(passages), self.settings.scale,
        )


TASKS = {"mlm": MLMTask, "contrastive": ContrastiveTask}
