"""Episodic session memory end to end on a long conversation (docs/protocol.md,
session.create "memory"): a ~32k-token conversation on four interleaved
topics, served under a 4096-token budget with 4 episodes. Questions are asked
as the history grows; after every answer the compressed caches mnemod holds
stay within budget + one block each (usage.memory and /metrics), and every
answer started from a routed episode's cache.

The built-in model's config says 4096 positions; its weights do not depend on
the context length (RoPE), so the test serves a copy of it whose config allows
the conversation's length. The KV pool must hold the whole prompt (the
responder sizes a turn's room by the prompt, not by its compressed history).

Slow (minutes on one thread): runs only with MNEMO_LONG_TESTS=1. Prints the
turn latencies, build seconds and resident KV (pytest -s shows them).
"""
import asyncio
import json
import os
import pathlib
import re
import shutil
import sys
import time

import pytest

import wsclient
from wsclient import Conn, new_session

pytestmark = pytest.mark.skipif(os.environ.get("MNEMO_LONG_TESTS") != "1",
                                reason="long test: set MNEMO_LONG_TESTS=1 to run it")

BUDGET, BLOCK, EPISODES = 4096, 512, 4
TARGET_TOKENS = 32_000
CONTEXT = 40_960

# The conversation bench/episodic_turns.py times: the same topics and questions.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[3] / "bench"))
from episodic_turns import QUESTIONS, TOPICS  # noqa: E402


def metrics(daemon):
    _, text = daemon.request("GET", "/metrics")
    return {m.group(1): float(m.group(2)) for m in re.finditer(r"^(mnemo_session_memory_\w+) (\S+)$", text, re.M)}


@pytest.fixture
def long_model(model_dir, tmp_path):
    d = tmp_path / "model-long"
    shutil.copytree(model_dir, d)
    cfg = json.loads((d / "config.json").read_text())
    cfg["max_position_embeddings"] = CONTEXT
    (d / "config.json").write_text(json.dumps(cfg, indent=2))
    tc = d / "tokenizer_config.json"
    if tc.exists():
        t = json.loads(tc.read_text())
        if "model_max_length" in t:
            t["model_max_length"] = CONTEXT
            tc.write_text(json.dumps(t, indent=2))
    return d


def test_long_episodic_conversation_stays_within_budget(daemon_factory, long_model, monkeypatch):
    # A cache built from scratch over ~30k tokens takes over a minute on one thread.
    monkeypatch.setattr(wsclient, "TIMEOUT", 600)
    # 4 KiB of KV per token in the built-in model: the whole prompt plus the
    # turn. The later --model and --kv-cache-bytes win over conftest's.
    d = daemon_factory("--model", str(long_model), "--kv-cache-bytes", "176M")
    memory = {"policy": "episodic", "budget_tokens": BUDGET, "episodes": EPISODES}
    topics = list(TOPICS)
    report = []

    async def go():
        c = await Conn.open(d.ws)
        sid = await new_session(c, sampling={"max_tokens": 4, "temperature": 0}, memory=memory)
        got = await c.rpc({"type": "session.get", "session_id": sid})
        assert got["session"]["memory"] == {**memory, "block_tokens": BLOCK, "embedder": "model",
                                            "segmentation": "kmeans"}, got
        prompt_tokens, pair, asked = 0, 0, 0
        # Ask first once the history is well past the budget, then every ~4.5k tokens.
        next_ask, per_pair = 6_000, 130  # per_pair: tokens a pair of messages, measured as it goes
        while prompt_tokens < TARGET_TOKENS:
            # Interleaved topics: each pair of messages on the next one.
            topic = topics[pair % len(topics)]
            for role in ("user", "assistant"):
                text = TOPICS[topic].format(i=pair, n=pair * 7 % 97 + 3, d=pair * 13 % 300 + 100)
                a = await c.rpc({"type": "message.append", "session_id": sid,
                                 "message": {"role": role, "content": text}})
                assert a["type"] == "message.appended", a
            pair += 1
            prompt_tokens += per_pair  # an estimate between the measured prompts
            # The last question once the conversation reaches its length.
            if prompt_tokens < next_ask and prompt_tokens < TARGET_TOKENS:
                continue
            q = topics[asked % len(topics)]
            asked += 1
            await c.rpc({"type": "message.append", "session_id": sid,
                         "message": {"role": "user", "content": QUESTIONS[q]}})
            t0 = time.monotonic()
            events = await c.respond(sid)
            seconds = time.monotonic() - t0
            done = events[-1]
            assert done["type"] == "response.done" and done["finish_reason"] in ("stop", "length"), done
            u = done["usage"]
            prompt_tokens = u["prompt_tokens"]
            per_pair = max(1, prompt_tokens // pair)
            m = u["memory"]
            assert m["policy"] == "episodic" and m["budget_tokens"] == BUDGET, m
            assert 0 < m["history_tokens"] <= BUDGET + BLOCK, m
            assert m["compressed_tokens"] % BLOCK == 0 and m["compressed_tokens"] > BUDGET, m
            assert 1 <= m["episodes"] <= EPISODES and 0 <= m["episode"] < m["episodes"], m
            assert u["cached_tokens"] >= m["compressed_tokens"], u
            x = metrics(d)
            # Every compressed cache held is within budget + one block, the
            # episodes' caches of this one session together within E of them.
            assert 0 < x["mnemo_session_memory_largest_cache_tokens"] <= BUDGET + BLOCK, x
            held = x["mnemo_session_memory_sessions"]  # caches held (one per episode here)
            assert 1 <= held <= EPISODES, x
            assert x["mnemo_session_memory_resident_tokens"] <= held * (BUDGET + BLOCK), x
            assert x["mnemo_session_memory_resident_tokens"] >= m["history_tokens"], (x, m)
            assert -1.0 <= x["mnemo_session_memory_silhouette"] <= 1.0, x
            assert x["mnemo_session_memory_routes_total"] == asked, x
            report.append({"prompt_tokens": prompt_tokens, "seconds": round(seconds, 2), "episode": m["episode"],
                           "history_tokens": m["history_tokens"], "compressed_tokens": m["compressed_tokens"],
                           "resident_tokens": x["mnemo_session_memory_resident_tokens"],
                           "caches": held, "bytes": x["mnemo_session_memory_bytes"],
                           "build_seconds_total": round(x["mnemo_session_memory_build_seconds_total"], 2),
                           "silhouette": round(x["mnemo_session_memory_silhouette"], 3)})
            next_ask = prompt_tokens + 4_500
        await c.close()
        return asked

    asked = asyncio.run(go())
    for r in report:
        print("long episodic turn:", json.dumps(r))
    assert asked >= 6 and report[-1]["prompt_tokens"] >= TARGET_TOKENS, report
    # The bytes held are the slots the gauge counts (4 KiB a slot, plus the
    # snapshots' token lists): the same per slot at every turn.
    per_slot = [r["bytes"] / r["resident_tokens"] for r in report]
    assert max(per_slot) < 1.02 * min(per_slot), per_slot
    # The conversation outgrew its first clustering: it re-clustered as it grew.
    assert metrics(d)["mnemo_session_memory_reclusters_total"] >= 2
    assert "question routed to episode" in d.log.read_text()
