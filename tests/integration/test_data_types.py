"""Every Redis data type works through readthru with an ordinary client (redis-py, RESP2)."""

import time

import pytest
import redis


def test_strings_set_get_incr_append_range(r):
    assert r.set("s", "hello") is True
    assert r.get("s") == b"hello"
    assert r.append("s", " world") == 11
    assert r.getrange("s", 0, 4) == b"hello"
    assert r.setrange("s", 6, "WORLD") == 11
    assert r.get("s") == b"hello WORLD"
    assert r.strlen("s") == 11
    assert r.set("n", 10)
    assert r.incr("n") == 11
    assert r.incrby("n", 9) == 20
    assert r.decrby("n", 5) == 15
    assert r.incrbyfloat("n", 0.5) == 15.5
    assert r.set("s", "x", nx=True) is None
    assert r.set("s", "new", xx=True, get=True) == b"hello WORLD"
    assert r.getdel("s") == b"new"
    assert r.get("s") is None
    assert r.mset({"a": "1", "b": "2", "c": "3"})
    assert r.mget("a", "missing", "c") == [b"1", None, b"3"]
    assert r.msetnx({"a": "x", "d": "4"}) is False
    assert r.exists("a", "b", "c", "d") == 3
    assert r.getex("a", px=100000) == b"1"
    assert 0 < r.pttl("a") <= 100000
    assert r.lcs("a", "b") == b""


def test_lists_push_pop_range_and_move(r):
    assert r.rpush("l", "a", "b", "c") == 3
    assert r.lpush("l", "z") == 4
    assert r.lrange("l", 0, -1) == [b"z", b"a", b"b", b"c"]
    assert r.llen("l") == 4
    assert r.lindex("l", 2) == b"b"
    assert r.lpos("l", "b") == 2
    assert r.linsert("l", "before", "b", "ab") == 5
    assert r.lset("l", 0, "zz")
    assert r.lrem("l", 1, "ab") == 1
    assert r.ltrim("l", 0, 2)
    assert r.lrange("l", 0, -1) == [b"zz", b"a", b"b"]
    assert r.lmove("l", "l2", "LEFT", "RIGHT") == b"zz"
    assert r.rpoplpush("l", "l2") == b"b"
    assert r.lrange("l2", 0, -1) == [b"b", b"zz"]
    assert r.lpop("l2") == b"b"
    assert r.rpop("l2") == b"zz"
    assert r.exists("l2") == 0
    assert r.rpush("l3", *range(10)) == 10
    assert r.lpop("l3", 3) == [b"0", b"1", b"2"]
    assert r.lmpop(2, "nolist", "l3", direction="RIGHT", count=2) == [b"l3", [b"9", b"8"]]


def test_hashes_fields_counters_and_scan(r):
    assert r.hset("h", mapping={"f1": "v1", "f2": "v2", "n": "5"}) == 3
    assert r.hget("h", "f1") == b"v1"
    assert r.hmget("h", ["f1", "nope", "f2"]) == [b"v1", None, b"v2"]
    assert r.hgetall("h") == {b"f1": b"v1", b"f2": b"v2", b"n": b"5"}
    assert r.hincrby("h", "n", 3) == 8
    assert r.hincrbyfloat("h", "n", 0.25) == 8.25
    assert r.hexists("h", "f2") is True
    assert r.hdel("h", "f2", "absent") == 1
    assert sorted(r.hkeys("h")) == [b"f1", b"n"]
    assert r.hlen("h") == 2
    assert r.hsetnx("h", "f1", "other") == 0
    assert r.hstrlen("h", "f1") == 2
    big = {f"field:{i}": f"value:{i}" for i in range(600)}  # past listpack: a real hashtable
    r.hset("hbig", mapping=big)
    seen = {}
    cursor = 0
    for _ in range(1000):
        cursor, page = r.hscan("hbig", cursor, count=100)
        seen.update(page)
        if cursor == 0:
            break
    assert seen == {k.encode(): v.encode() for k, v in big.items()}


def test_sets_members_algebra_and_cardinality(r):
    assert r.sadd("s1", "a", "b", "c") == 3
    assert r.sadd("s2", "b", "c", "d") == 3
    assert r.smembers("s1") == {b"a", b"b", b"c"}
    assert r.sismember("s1", "a") is True
    assert r.smismember("s1", ["a", "x"]) == [1, 0]
    assert r.sinter("s1", "s2") == {b"b", b"c"}
    assert r.sunion("s1", "s2") == {b"a", b"b", b"c", b"d"}
    assert r.sdiff("s1", "s2") == {b"a"}
    assert r.sintercard(2, ["s1", "s2"]) == 2
    assert r.sinterstore("s3", ["s1", "s2"]) == 2
    assert r.smove("s1", "s2", "a") is True
    assert r.scard("s2") == 4
    assert r.srem("s2", "a", "zz") == 1
    assert r.sadd("ints", *range(100)) == 100
    assert r.scard("ints") == 100
    assert r.spop("s3") in (b"b", b"c")


def test_sorted_sets_scores_ranges_and_pops(r):
    assert r.zadd("z", {"a": 1, "b": 2.5, "c": -3}) == 3
    assert r.zscore("z", "b") == 2.5
    assert r.zrange("z", 0, -1, withscores=True) == [(b"c", -3.0), (b"a", 1.0), (b"b", 2.5)]
    assert r.zrangebyscore("z", 0, 10) == [b"a", b"b"]
    assert r.zrevrange("z", 0, 0) == [b"b"]
    assert r.zrank("z", "a") == 1
    assert r.zincrby("z", 10, "c") == 7.0
    assert r.zcount("z", "-inf", "+inf") == 3
    assert r.zadd("z", {"a": 100}, xx=True, ch=True) == 1
    assert r.zpopmin("z") == [(b"b", 2.5)]
    assert r.zpopmax("z") == [(b"a", 100.0)]
    assert r.zadd("lex", {"a": 0, "b": 0, "c": 0, "d": 0}) == 4
    assert r.zrangebylex("lex", "[b", "(d") == [b"b", b"c"]
    assert r.zmscore("lex", ["a", "nope"]) == [0.0, None]
    assert r.zrangestore("lex2", "lex", 1, 2) == 2
    assert r.zcard("lex2") == 2
    assert r.zmpop(1, ["lex"], min=True, count=2) == [b"lex", [[b"a", b"0"], [b"b", b"0"]]]


def test_streams_add_range_groups_and_ack(r):
    assert r.xadd("st", {"k": "v1"}, id="1-1") == b"1-1"
    assert r.xadd("st", {"k": "v2"}, id="1-2") == b"1-2"
    auto = r.xadd("st", {"k": "v3"})
    assert r.xlen("st") == 3
    assert r.xrange("st", "-", "+", count=2) == [(b"1-1", {b"k": b"v1"}), (b"1-2", {b"k": b"v2"})]
    assert r.xrevrange("st", "+", "-", count=1)[0][0] == auto
    assert r.xgroup_create("st", "g", id="0") is True
    got = r.xreadgroup("g", "c1", {"st": ">"}, count=2)
    assert got == [[b"st", [(b"1-1", {b"k": b"v1"}), (b"1-2", {b"k": b"v2"})]]]
    assert r.xpending("st", "g")["pending"] == 2
    assert r.xack("st", "g", "1-1", "1-2") == 2
    assert r.xpending("st", "g")["pending"] == 0
    assert r.xread({"st": "1-2"}) == [[b"st", [(auto, {b"k": b"v3"})]]]
    assert r.xdel("st", "1-1") == 1
    assert r.xtrim("st", maxlen=1, approximate=False) == 1
    info = r.xinfo_stream("st")
    assert info["length"] == 1 and info["groups"] == 1


def test_hyperloglog_counts_and_merges(r):
    assert r.pfadd("hll1", *[f"a{i}" for i in range(1000)]) == 1
    assert r.pfadd("hll2", *[f"a{i}" for i in range(500, 1500)]) == 1
    assert 970 <= r.pfcount("hll1") <= 1030
    assert r.pfmerge("hll3", "hll1", "hll2")
    assert 1450 <= r.pfcount("hll3") <= 1550
    assert r.get("hll1").startswith(b"HYLL")


def test_bitmaps_setbit_count_pos_and_bitfield(r):
    assert r.setbit("bm", 7, 1) == 0
    assert r.setbit("bm", 7, 1) == 1
    assert r.getbit("bm", 7) == 1
    assert r.get("bm") == b"\x01"
    r.setbit("bm", 100, 1)
    assert r.bitcount("bm") == 2
    assert r.bitpos("bm", 1) == 7
    r.set("b1", b"\xff\x0f")
    r.set("b2", b"\x0f\xff")
    assert r.bitop("AND", "band", "b1", "b2") == 2
    assert r.get("band") == b"\x0f\x0f"
    result = r.bitfield("bf").set("u8", 0, 200).incrby("u8", 0, 100).get("u4", 0).execute()
    assert result == [0, 44, 2]


def test_geo_add_distance_search(r):
    assert r.geoadd("geo", [13.361389, 38.115556, "Palermo", 15.087269, 37.502669, "Catania"]) == 2
    dist = r.geodist("geo", "Palermo", "Catania", unit="km")
    assert 166.0 < dist < 167.0
    pos = r.geopos("geo", "Palermo", "nowhere")
    assert abs(pos[0][0] - 13.361389) < 1e-5 and pos[1] is None
    assert r.geosearch("geo", longitude=15, latitude=37, radius=200, unit="km", sort="ASC") == [
        b"Catania",
        b"Palermo",
    ]
    assert len(r.geohash("geo", "Palermo")[0]) == 11


def test_expire_ttl_persist_and_expiry(r):
    r.set("e", "v")
    assert r.ttl("e") == -1
    assert r.ttl("missing") == -2
    assert r.expire("e", 100) is True
    assert 95 <= r.ttl("e") <= 100
    assert r.persist("e") is True
    assert r.ttl("e") == -1
    assert r.expireat("e", 4102444800) is True  # 2100-01-01
    assert r.expiretime("e") == 4102444800
    assert r.set("short", "v", px=200)
    deadline = time.monotonic() + 5
    while r.exists("short") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert r.get("short") is None
    r.set("e2", "v")
    assert r.pexpire("e2", 50000)
    assert 45000 < r.pttl("e2") <= 50000


def test_key_space_commands(r):
    r.mset({"k:1": "a", "k:2": "b", "other": "c"})
    assert sorted(r.keys("k:*")) == [b"k:1", b"k:2"]
    assert r.type("k:1") == b"string"
    assert r.rename("k:1", "k:3")
    assert r.renamenx("k:3", "k:2") is False
    assert r.copy("k:3", "k:4") is True
    assert r.delete("k:3", "k:4", "nope") == 2
    assert r.unlink("k:2") == 1
    assert r.dbsize() == 1
    assert r.object("encoding", "other") == b"embstr"
    assert r.touch("other") == 1
    assert r.dump("other") is not None


def test_wrong_type_error_surfaces_as_response_error(r):
    r.set("str", "v")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        r.lpush("str", "x")
