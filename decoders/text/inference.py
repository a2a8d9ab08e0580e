"""Free-running text generation: the only way text is ever produced for evaluation or display.

The functions take a model *object* with two methods, ``encode(x) -> (memory, codes, loss)`` and
``next_token_logits(memory, prefix) -> (B, V)``, and never see a reference sentence: there is no
argument through which teacher forcing could leak in. Each step feeds the model's own previous
outputs (greedy, or beam search).
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["generate"]


@torch.inference_mode()
def generate(model, x: torch.Tensor, max_len: int, bos_id: int = 1, eos_id: int = 2,
             beam: int = 1) -> tuple[list[list[int]], np.ndarray]:
    """Decode token ids from EEG windows without any reference text.

    Parameters
    ----------
    model : object with ``encode`` and ``next_token_logits`` (see module docstring)
    x : tensor (B, C, T)
    max_len : int
        Longest sequence incl. <bos> and <eos>.
    beam : int
        1 = greedy; > 1 = beam search (length-normalised log-probability).

    Returns
    -------
    ids : list of B lists of int (without <bos>, up to and excluding <eos>)
    confidence : ndarray (B,)
        exp(mean log-probability) of the emitted tokens incl. <eos>, in (0, 1].
    """
    memory = model.encode(x)[0]
    if beam > 1:
        return _beam(model, memory, max_len, bos_id, eos_id, beam)
    B = memory.shape[0]
    prefix = torch.full((B, 1), bos_id, dtype=torch.long)
    logp_sum = torch.zeros(B)
    n_tok = torch.zeros(B)
    done = torch.zeros(B, dtype=torch.bool)
    for _ in range(max_len - 1):
        logp = torch.log_softmax(model.next_token_logits(memory, prefix).float(), -1)
        nxt = logp.argmax(-1)
        lp = logp.gather(1, nxt[:, None])[:, 0]
        logp_sum += torch.where(done, torch.zeros_like(lp), lp)
        n_tok += (~done).float()
        nxt = torch.where(done, torch.full_like(nxt, eos_id), nxt)
        done |= nxt == eos_id
        prefix = torch.cat([prefix, nxt[:, None]], 1)
        if bool(done.all()):
            break
    ids = []
    for row in prefix[:, 1:].tolist():
        ids.append(row[: row.index(eos_id)] if eos_id in row else row)
    conf = torch.exp(logp_sum / n_tok.clamp(min=1)).numpy()
    return ids, conf


def _beam(model, memory, max_len, bos_id, eos_id, beam):
    out_ids, out_conf = [], []
    for b in range(memory.shape[0]):
        mem = memory[b:b + 1]
        beams = [([bos_id], 0.0, False)]
        for _ in range(max_len - 1):
            if all(d for _, _, d in beams):
                break
            alive = [bm for bm in beams if not bm[2]]
            prefix = torch.tensor([s for s, _, _ in alive], dtype=torch.long)
            logp = torch.log_softmax(
                model.next_token_logits(mem.expand(len(alive), -1, -1), prefix).float(), -1)
            cand = [bm for bm in beams if bm[2]]
            top = torch.topk(logp, min(beam, logp.shape[-1]), dim=-1)  # beam > vocabulary
            for i, (seq, score, _) in enumerate(alive):
                for lp, tok in zip(top.values[i].tolist(), top.indices[i].tolist()):
                    cand.append((seq + [tok], score + lp, tok == eos_id))
            beams = sorted(cand, key=lambda c: c[1] / (len(c[0]) - 1), reverse=True)[:beam]
        seq, score, _ = beams[0]
        body = seq[1:]
        out_ids.append(body[: body.index(eos_id)] if eos_id in body else body)
        out_conf.append(float(np.exp(score / max(len(seq) - 1, 1))))
    return out_ids, np.asarray(out_conf)
