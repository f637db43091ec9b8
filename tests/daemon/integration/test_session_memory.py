"""Session memory (docs/protocol.md, session.create "memory"): a session's
long history is served from a compressed KV cache under its token budget,
continued block by block as the history grows; the setting is checked,
stored and survives a restart; "full" behaves as a session without one."""
import asyncio
import json
import re
import time

from wsclient import Conn, new_session

BUDGET, BLOCK = 256, 128


def run(coro):
    return asyncio.run(coro)


def facts(start, n):
    return " ".join(f"Fact {i}: the code of item {i} is {i * 37 % 1000}." for i in range(start, start + n))


async def long_session(c, memory, messages=6, per=30):
    sid = await new_session(c, sampling={"max_tokens": 4, "temperature": 0}, memory=memory)
    for k in range(messages):
        role = "user" if k % 2 == 0 else "assistant"
        a = await c.rpc({"type": "message.append", "session_id": sid,
                         "message": {"role": role, "content": facts(k * per, per)}})
        assert a["type"] == "message.appended", a
    await c.rpc({"type": "message.append", "session_id": sid,
                 "message": {"role": "user", "content": "What is the code of item 3?"}})
    return sid


def metric(daemon, name):
    _, text = daemon.request("GET", "/metrics")
    m = re.search(rf"^{name} (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


def test_streaming_history_held_within_budget_and_continued(daemon_factory, tmp_path):
    data = tmp_path / "mem"
    d = daemon_factory(data_dir=data)
    memory = {"policy": "streaming", "budget_tokens": BUDGET, "block_tokens": BLOCK}

    async def first():
        c = await Conn.open(d.ws)
        sid = await long_session(c, memory)
        events = await c.respond(sid)
        done = events[-1]
        assert done["type"] == "response.done" and done["finish_reason"] in ("stop", "length"), done
        u = done["usage"]
        assert u["prompt_tokens"] > 4 * BUDGET, u
        m = u["memory"]
        assert m["policy"] == "streaming" and m["budget_tokens"] == BUDGET, m
        assert 0 < m["history_tokens"] <= BUDGET + BLOCK, m
        assert m["compressed_tokens"] > 3 * BUDGET and m["compressed_tokens"] % BLOCK == 0, m
        # The snapshot's tokens are not computed again.
        assert u["cached_tokens"] >= m["compressed_tokens"], u
        assert metric(d, "mnemo_session_memory_builds_total") == 1
        assert metric(d, "mnemo_session_memory_bytes") > 0
        assert metric(d, "mnemo_session_memory_sessions") == 1
        assert metric(d, "mnemo_session_memory_build_seconds_total") > 0
        # The history grows by more than a block: the compressed sequence is continued, not rebuilt.
        await c.rpc({"type": "message.append", "session_id": sid,
                     "message": {"role": "user", "content": facts(500, 20)}})
        done2 = (await c.respond(sid))[-1]
        m2 = done2["usage"]["memory"]
        assert m2["compressed_tokens"] > m["compressed_tokens"], (m, m2)
        assert m2["history_tokens"] <= BUDGET + BLOCK, m2
        assert metric(d, "mnemo_session_memory_builds_total") == 2
        got = await c.rpc({"type": "session.get", "session_id": sid})
        assert got["session"]["memory"] == memory, got["session"]
        await c.close()
        return sid, m2

    sid, before = run(first())
    assert "added to the previous build" in d.log.read_text()
    assert d.stop() == 0

    d2 = daemon_factory(data_dir=data)

    async def after():
        c = await Conn.open(d2.ws)
        r = await c.rpc({"type": "session.resume", "session_id": sid})
        assert r["session"]["memory"] == memory, r
        done = (await c.respond(sid))[-1]
        assert done["type"] == "response.done", done
        m = done["usage"]["memory"]
        assert m["policy"] == "streaming" and m["history_tokens"] <= BUDGET + BLOCK, m
        assert m["compressed_tokens"] >= before["compressed_tokens"], (before, m)
        await c.close()
    run(after())


def test_bad_memory_settings_are_refused_naming_the_field(daemon):
    async def go():
        c = await Conn.open(daemon.ws)
        cases = [
            ({"policy": "lru"}, "memory.policy"),
            ({"budget_tokens": 512}, "memory.policy"),
            ({"policy": "snapkv", "budget": 512}, "memory.budget"),
            ({"policy": "h2o", "budget_tokens": 10}, "memory.budget_tokens"),
            ({"policy": "h2o", "budget_tokens": "many"}, "memory.budget_tokens"),
            ({"policy": "keydiff", "block_tokens": 0}, "memory.block_tokens"),
            ({"policy": "keydiff", "episodes": 0}, "memory.episodes"),
            ("streaming", "memory"),
        ]
        for memory, field in cases:
            m = await c.rpc({"type": "session.create", "memory": memory})
            assert m["type"] == "error" and m.get("field") == field, (memory, m)
        for memory in ({"policy": "snapkv", "embedder": "tfidf"}, {"policy": "episodic", "embedder": "bert"}):
            m = await c.rpc({"type": "session.create", "memory": memory})
            assert m["type"] == "error" and m["field"] == "memory.embedder", (memory, m)
        for memory in ({"policy": "h2o", "segmentation": "time"}, {"policy": "episodic", "segmentation": "dbscan"},
                       {"policy": "episodic", "segmentation": 4}):
            m = await c.rpc({"type": "session.create", "memory": memory})
            assert m["type"] == "error" and m["field"] == "memory.segmentation", (memory, m)
        listed = await c.rpc({"type": "session.list"})
        assert listed["sessions"] == []
        await c.close()
    run(go())


def test_full_memory_is_todays_behaviour(daemon):
    async def go():
        c = await Conn.open(daemon.ws)
        sid = await long_session(c, {"policy": "full", "budget_tokens": BUDGET}, messages=4, per=20)
        done = (await c.respond(sid))[-1]
        assert done["type"] == "response.done", done
        assert "memory" not in done["usage"], done["usage"]
        assert done["usage"]["prompt_tokens"] > BUDGET
        # A second turn still finds its history in the prefix cache.
        await c.rpc({"type": "message.append", "session_id": sid, "message": {"role": "user", "content": "and 4?"}})
        done2 = (await c.respond(sid))[-1]
        assert done2["usage"]["cached_tokens"] >= BUDGET, done2["usage"]
        assert metric(daemon, "mnemo_session_memory_builds_total") == 0
        s = await c.rpc({"type": "session.get", "session_id": sid})
        assert s["session"]["memory"]["policy"] == "full"
        await c.close()
    run(go())


def test_every_evicting_policy_serves_a_long_history(daemon):
    async def go():
        c = await Conn.open(daemon.ws)
        for policy in ("snapkv", "h2o", "keydiff"):
            sid = await long_session(c, {"policy": policy, "budget_tokens": BUDGET, "block_tokens": BLOCK})
            done = (await c.respond(sid))[-1]
            assert done["type"] == "response.done" and done["finish_reason"] in ("stop", "length"), done
            m = done["usage"]["memory"]
            assert m["policy"] == policy and 0 < m["history_tokens"] <= BUDGET + BLOCK, m
            assert done["usage"]["prompt_tokens"] > 4 * BUDGET
        assert metric(daemon, "mnemo_session_memory_builds_total") == 3
        assert metric(daemon, "mnemo_session_memory_sessions") == 3
        await c.close()
    run(go())


COOKING = ("The recipe needs flour, butter and sugar; the oven was set to {} degrees and the cake baked "
           "for forty minutes until the butter crust turned golden in the oven.")
ASTRONOMY = ("The telescope showed the planet Jupiter and its moon number {} tonight; the astronomer logged "
             "the orbit of the moon and the bright planet in the telescope notebook.")


async def episodic_session(c, memory, per_topic=8):
    """A long history of two topics, one after the other."""
    sid = await new_session(c, sampling={"max_tokens": 4, "temperature": 0}, memory=memory)
    for k in range(2 * per_topic):
        text = (COOKING if k < per_topic else ASTRONOMY).format(150 + k)
        role = "user" if k % 2 == 0 else "assistant"
        a = await c.rpc({"type": "message.append", "session_id": sid, "message": {"role": role, "content": text}})
        assert a["type"] == "message.appended", a
    return sid


async def ask(c, sid, question):
    await c.rpc({"type": "message.append", "session_id": sid, "message": {"role": "user", "content": question}})
    done = (await c.respond(sid))[-1]
    assert done["type"] == "response.done" and done["finish_reason"] in ("stop", "length"), done
    m = done["usage"]["memory"]
    assert m["policy"] == "episodic" and m["budget_tokens"] == BUDGET, m
    assert 0 < m["history_tokens"] <= BUDGET + BLOCK, m
    assert 1 <= m["episodes"] <= 2 and 0 <= m["episode"] < m["episodes"], m
    assert isinstance(m["route_cosine"], float), m
    return m


COOK_Q = "How hot was the oven for the butter recipe?"
SKY_Q = "Which moon of Jupiter did the telescope show?"


def test_episodic_model_embedder_answers_every_turn_within_budget(daemon):
    """The default embedder (the served model's hidden states; the test model's
    random weights need not separate the topics, so routing is not checked)."""
    async def go():
        c = await Conn.open(daemon.ws)
        memory = {"policy": "episodic", "budget_tokens": BUDGET, "block_tokens": BLOCK, "episodes": 2}
        sid = await episodic_session(c, memory)
        got = await c.rpc({"type": "session.get", "session_id": sid})
        assert got["session"]["memory"] == {**memory, "embedder": "model", "segmentation": "kmeans"}, got
        for q in (COOK_Q, SKY_Q, "And the cake?"):
            await ask(c, sid, q)
        await c.close()
    run(go())
    assert "question routed to episode" in daemon.log.read_text()


def test_episodic_routes_topics_to_their_episodes_and_survives_a_restart(daemon_factory, tmp_path):
    """TF-IDF embedder: the test model's random weights do not tell topics
    apart, words do. Different questions start from different episodes'
    caches; the episode index is restored from SQLite after a restart."""
    data = tmp_path / "epi"
    d = daemon_factory(data_dir=data)
    memory = {"policy": "episodic", "budget_tokens": BUDGET, "block_tokens": BLOCK, "episodes": 2,
              "embedder": "tfidf"}

    async def first():
        c = await Conn.open(d.ws)
        sid = await episodic_session(c, memory)
        cook = await ask(c, sid, COOK_Q)
        sky = await ask(c, sid, SKY_Q)
        assert cook["episodes"] == 2 and sky["episodes"] == 2, (cook, sky)
        assert cook["episode"] != sky["episode"], (cook, sky)
        assert cook["route_cosine"] > 0 and sky["route_cosine"] > 0, (cook, sky)
        assert metric(d, "mnemo_session_memory_routes_total") == 2
        assert metric(d, "mnemo_session_memory_reclusters_total") >= 1
        assert metric(d, "mnemo_session_memory_episodes") == 2
        # One cache per episode, both held.
        assert metric(d, "mnemo_session_memory_builds_total") == 2
        await c.close()
        return sid, cook, sky

    sid, cook, sky = run(first())
    log = d.log.read_text()
    assert "re-clustered" in log and "silhouette" in log, log[-2000:]
    assert d.stop() == 0

    d2 = daemon_factory(data_dir=data)

    async def after():
        c = await Conn.open(d2.ws)
        await c.rpc({"type": "session.resume", "session_id": sid})
        again = await ask(c, sid, "Which planet did the telescope show with its moon?")
        assert again["episode"] == sky["episode"] and again["episodes"] == 2, (sky, again)
        assert metric(d2, "mnemo_session_memory_episodes") == 2
        # Deleting the session drops its episodes.
        await c.rpc({"type": "session.delete", "session_id": sid})
        assert metric(d2, "mnemo_session_memory_episodes") == 0
        await c.close()
    run(after())
    assert "episode index restored" in d2.log.read_text()


def test_episodic_time_segmentation_answers_routes_and_is_kept(daemon_factory, tmp_path):
    """segmentation "time": episodes are time-ordered chunks of the windows.
    The history is two topics one after the other, so the two chunks are the
    two topics: each question routes to its own chunk. The setting is stored
    with the session and the index keeps its method after a restart."""
    data = tmp_path / "time"
    d = daemon_factory(data_dir=data)
    memory = {"policy": "episodic", "budget_tokens": BUDGET, "block_tokens": BLOCK, "episodes": 2,
              "embedder": "tfidf", "segmentation": "time"}

    async def first():
        c = await Conn.open(d.ws)
        sid = await episodic_session(c, memory)
        got = await c.rpc({"type": "session.get", "session_id": sid})
        assert got["session"]["memory"] == memory, got
        cook = await ask(c, sid, COOK_Q)
        sky = await ask(c, sid, SKY_Q)
        assert cook["episodes"] == 2 and sky["episodes"] == 2, (cook, sky)
        # Cooking came first: the first chunk.
        assert (cook["episode"], sky["episode"]) == (0, 1), (cook, sky)
        assert metric(d, "mnemo_session_memory_builds_total") == 2
        s = metric(d, "mnemo_session_memory_silhouette")
        assert s is not None and 0 < s <= 1, s  # two topics, two chunks: well separated
        await c.close()
        return sid, sky

    sid, sky = run(first())
    log = d.log.read_text()
    assert "by time-chunks" in log, log[-2000:]
    assert d.stop() == 0

    d2 = daemon_factory(data_dir=data)

    async def after():
        c = await Conn.open(d2.ws)
        r = await c.rpc({"type": "session.resume", "session_id": sid})
        assert r["session"]["memory"] == memory, r
        again = await ask(c, sid, "Which planet did the telescope show with its moon?")
        assert again["episode"] == sky["episode"], (sky, again)
        await c.close()
    run(after())
    assert "episode index restored" in d2.log.read_text()


def test_silhouette_gauge_reports_the_last_clustering(daemon):
    """mnemo_session_memory_silhouette: 0 before any clustering, then the
    last clustering's silhouette, the value the log line gives."""
    assert metric(daemon, "mnemo_session_memory_silhouette") == 0

    async def go():
        c = await Conn.open(daemon.ws)
        memory = {"policy": "episodic", "budget_tokens": BUDGET, "block_tokens": BLOCK, "episodes": 2,
                  "embedder": "tfidf"}
        sid = await episodic_session(c, memory)
        await ask(c, sid, COOK_Q)
        await c.close()
    run(go())
    logged = re.findall(r"re-clustered .*silhouette (-?[0-9.]+)", daemon.log.read_text())
    assert logged, daemon.log.read_text()[-2000:]
    s = metric(daemon, "mnemo_session_memory_silhouette")
    assert s != 0 and abs(s - float(logged[-1])) < 5e-4, (s, logged)


def test_a_compressed_history_needs_kv_for_its_kept_slots_only(daemon_factory, model_dir):
    """The KV cache holds a compressed history's kept slots, not its tokens:
    a history twice the pool still gets answers with memory on, and without
    memory the refusal names the KV cache, not the context."""
    cfg = json.loads((model_dir / "config.json").read_text())
    head_dim = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    # K and V, 2 bytes each (--kv-dtype bf16, the default, given explicitly).
    per_token = 2 * 2 * cfg["num_hidden_layers"] * cfg.get("num_key_value_heads", cfg["num_attention_heads"]) * head_dim
    d = daemon_factory("--kv-cache-bytes", str(per_token * 640), "--kv-dtype", "bf16")
    memory = {"policy": "streaming", "budget_tokens": BUDGET, "block_tokens": BLOCK}

    async def go():
        c = await Conn.open(d.ws)
        sid = await long_session(c, memory, messages=4)
        done = (await c.respond(sid))[-1]
        plain = await long_session(c, {"policy": "full"}, messages=4)
        refused = (await c.respond(plain))[-1]
        await c.close()
        return done, refused

    done, refused = run(go())
    assert done["type"] == "response.done" and done["finish_reason"] in ("stop", "length"), done
    assert done["usage"]["prompt_tokens"] > 640 * 2, done["usage"]
    assert done["usage"]["memory"]["history_tokens"] <= BUDGET + BLOCK, done["usage"]
    assert refused["type"] == "error" and "KV cache" in refused["message"], refused
    assert "--kv-cache-bytes" in refused["message"] and refused["field"] == "messages", refused


def test_episodic_cache_behind_the_history_serves_and_is_continued_in_the_background(daemon):
    """The second question about cooking arrives after a few more cooking
    messages (more than a block, less than the budget): it is answered at
    once from the cooking episode's existing cache (the engine computes the
    newer tokens in full), and that cache is continued in the background, so
    the third question starts from a cache that covers them."""
    async def go():
        c = await Conn.open(daemon.ws)
        memory = {"policy": "episodic", "budget_tokens": BUDGET, "block_tokens": BLOCK, "episodes": 2,
                  "embedder": "tfidf"}
        sid = await episodic_session(c, memory)
        first = await ask(c, sid, COOK_Q)
        assert metric(daemon, "mnemo_session_memory_builds_total") == 1
        for k in range(4):
            role = "assistant" if k % 2 == 0 else "user"
            await c.rpc({"type": "message.append", "session_id": sid,
                         "message": {"role": role, "content": COOKING.format(300 + k)}})
        second = await ask(c, sid, "And how long did the butter recipe bake in the oven?")
        assert second["episode"] == first["episode"], (first, second)
        # Served from the cache built for the first question, as it was.
        assert second["compressed_tokens"] == first["compressed_tokens"], (first, second)
        deadline = time.monotonic() + 120
        while metric(daemon, "mnemo_session_memory_background_builds_total") != 1:
            assert time.monotonic() < deadline, daemon.log.read_text()[-3000:]
            await asyncio.sleep(0.2)
        third = await ask(c, sid, "What did the recipe with the butter crust need?")
        assert third["episode"] == first["episode"], (first, third)
        assert third["compressed_tokens"] > first["compressed_tokens"], (first, third)
        assert 0 < third["history_tokens"] <= BUDGET + BLOCK, third
        await c.close()
    run(go())
    log = daemon.log.read_text()
    assert "continuing it in the background" in log, log[-3000:]
    print("\n".join(l for l in log.splitlines() if "session memory" in l))
