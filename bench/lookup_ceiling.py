#!/usr/bin/env python3
"""How fast prompt lookup could make one of `localchat bench`'s cases at best on this machine, beside what it does.

The speed-up lookup can reach is set by two things measured here, in one process on the real model:
  cost(k)   a decode of k rows (all logits, as lookup's checks need) over a one-row decode, at the context the
            reply is decoded in (the case's prompt, ~2,000 tokens for the edit, plus half the reply): each width's
            fastest of --repeats decodes, widths interleaved (other work on a shared machine only adds time)
  the reply the model gives (plain decoding; sampled with a fixed seed, lookup's reply is the same one):
            where lookup's drafts would be taken in it

The oracle knows the reply in advance: at each step it drafts exactly the tokens of lookup's match that the
model will take (none that it will reject), or fewer where a narrower batch yields more per second. Its
speed-up is tokens / Σ cost(rows of each step): no policy that does not know the reply can beat it with
lookup's drafts. `perfect copy` is the best (k+1)/cost(k+1): a reply that copied the context throughout.
`policy_model` replays the reply with the engine's own DraftPolicy priced by the measured costs (three
replies, sharing what each width cost, as the bench's replies do): what the policy leaves on the table against
the oracle, without the machine's noise. Then the real thing: --pairs interleaved replies with and without
lookup, the median of each pair's ratio (as `localchat bench` does).

  bench/lookup_ceiling.py [--model M.gguf] [--case edit|prose|prose_sampled] [--tokens 400] [--pairs 5]
                          [--out bench/results/FILE.json]
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import default_model, emit, load_runner  # noqa: E402
from localchat.bench_cases import EDIT_REQUEST, PROSE_REQUEST, edit_source  # noqa: E402
from localchat.chat.sampling import SamplingParams  # noqa: E402
from localchat.engine.lookup import DraftPolicy, PromptLookup  # noqa: E402
from localchat.engine.protocol import ChatMessage, LoadOptions  # noqa: E402
from localchat.engine.runner import LlamaRunner  # noqa: E402

MOST = 16  # the policy's longest draft (engine/lookup.py, DraftPolicy.most)


def batch_costs(runner: LlamaRunner, context: list[int], filler: list[int], repeats: int) -> dict[int, float]:
    """cost(rows) for rows 1..MOST+1: a decode of `rows` tokens after `context`, all logits."""
    import llama_cpp as ll

    runner._forget_from(0)
    runner._decode(context, 0, want_logits=True)
    batch, start = runner.batch, len(context)
    fastest: dict[int, float] = {}
    for _ in range(repeats):
        for rows in range(1, MOST + 2):
            for i in range(rows):
                batch.token[i], batch.pos[i], batch.logits[i] = filler[i], start + i, True
                batch.n_seq_id[i], batch.seq_id[i][0] = 1, 0
            batch.n_tokens = rows
            began = time.perf_counter()
            if ll.llama_decode(runner.ctx, batch) != 0:
                raise SystemExit("llama_decode failed")
            ll.llama_get_logits_ith(runner.ctx, rows - 1)  # (the CPU's results are ready when decode returns)
            spent = time.perf_counter() - began
            ll.llama_memory_seq_rm(ll.llama_get_memory(runner.ctx), 0, start, -1)
            fastest[rows] = min(fastest.get(rows, spent), spent)
    runner.cached = list(context)
    return {rows: seconds / fastest[1] for rows, seconds in fastest.items()}


def oracle(prompt: list[int], reply: list[int], cost: dict[int, float]) -> dict[str, float]:
    """Replay `reply` with lookup's drafts, each cut to what the model takes (or shorter where that pays)."""
    lookup = PromptLookup(prompt)
    spent = 0.0
    steps = from_drafts = 0
    i = 0  # reply[i] has just been sampled; a step decodes it with its draft
    while i < len(reply):
        lookup.append(reply[i])
        draft, _ = lookup.draft(min(MOST, len(reply) - i - 1))
        taken = 0
        while taken < len(draft) and draft[taken] == reply[i + 1 + taken]:
            taken += 1
        k = max(range(taken + 1), key=lambda n: (n + 1) / cost[n + 1])
        for token in reply[i + 1 : i + 1 + k]:
            lookup.append(token)
        spent += cost[k + 1]
        steps += 1
        from_drafts += k
        i += k + 1
    return {
        "speedup": len(reply) / spent,
        "decodes": steps,
        "share_drafted": from_drafts / len(reply),
    }


def policy_model(prompt: list[int], reply: list[int], cost: dict[int, float], replies: int = 3) -> float:
    """The speed-up DraftPolicy gets on `reply` when each width costs `cost` (the last of `replies` replays)."""
    step_s: dict = {}
    speedup = 0.0
    for _ in range(replies):
        policy, lookup = DraftPolicy(step_s, most=MOST), PromptLookup(prompt)
        spent, i = 0.0, 0
        while i < len(reply):
            lookup.append(reply[i])
            room = min(MOST, len(reply) - i - 1)
            draft, agreement = lookup.draft(room) if room else ([], 0)
            draft = draft[: policy.length(agreement, len(draft))]
            taken = 0
            while taken < len(draft) and draft[taken] == reply[i + 1 + taken]:
                taken += 1
            if draft:
                policy.record(agreement, len(draft), taken)
            for token in reply[i + 1 : i + 1 + taken]:
                lookup.append(token)
            policy.timed(len(draft) + 1, cost[len(draft) + 1])
            spent += cost[len(draft) + 1]
            i += taken + 1
        speedup = len(reply) / spent
    return speedup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--case", choices=("edit", "prose", "prose_sampled"), default="edit")
    parser.add_argument("--tokens", type=int, default=400)
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--out")
    args = parser.parse_args()
    model = args.model or default_model()
    runner = load_runner(model, LoadOptions(n_ctx=4096))
    request = f"```python\n{edit_source()}```\n\n{EDIT_REQUEST}" if args.case == "edit" else PROSE_REQUEST
    prompt = runner.chat_tokens([ChatMessage("user", request)])
    # as localchat bench samples its cases (localchat/bench.py, _lookup_cases)
    sampling = SamplingParams(temperature=0.0, max_tokens=args.tokens)
    if args.case == "prose_sampled":
        sampling = SamplingParams(temperature=0.8, max_tokens=args.tokens, seed=3)

    def reply(lookup: bool) -> tuple[list[int], float, int, int]:
        runner._forget_from(len(prompt) - 1)  # every reply reuses the prompt alike (bench's first step)
        done = runner.generate(prompt, sampling, lambda text, n: None, lookup=lookup, draft=False)
        spec = done.speculative
        tokens = runner.cached[len(prompt) :]
        return tokens, done.timings.decode_tok_s, spec.drafted if spec else 0, spec.accepted if spec else 0

    runner._decode(prompt, 0, want_logits=True)
    plain_reply = reply(False)[0]
    ratios, drafted, accepted, same = [], 0, 0, True
    for _ in range(args.pairs):
        plain_tokens, plain_rate, _, _ = reply(False)
        lookup_tokens, lookup_rate, d, a = reply(True)
        ratios.append(lookup_rate / plain_rate)
        drafted, accepted = drafted + d, accepted + a
        same &= plain_tokens == lookup_tokens
    half = plain_reply[: len(plain_reply) // 2]
    cost = batch_costs(runner, prompt + half, plain_reply, args.repeats)
    ceiling = oracle(prompt, plain_reply, cost)
    best = max(range(1, MOST + 2), key=lambda rows: rows / cost[rows])
    summary = {
        "date": datetime.date.today().isoformat(),
        "model": Path(model).name,
        "case": args.case,
        "threads": runner.info.threads,
        "prompt_tokens": len(prompt),
        "reply_tokens": len(plain_reply),
        "cost_context_tokens": len(prompt) + len(half),
        "cost": {str(rows): round(value, 3) for rows, value in cost.items()},
        "oracle": {key: round(value, 3) for key, value in ceiling.items()},
        "perfect_copy": {"speedup": round(best / cost[best], 3), "rows": best},
        "policy_model": {"speedup": round(policy_model(prompt, plain_reply, cost), 3)},
        "lookup": {
            "speedup": round(statistics.median(ratios), 3),
            "rounds": [round(r, 3) for r in ratios],
            "acceptance": round(accepted / drafted, 3) if drafted else 0.0,
            "share_drafted": round(accepted / (args.pairs * len(plain_reply)), 3),
            "same_text": same,
        },
    }
    runner.close()
    emit(summary, args.out)


if __name__ == "__main__":
    main()
