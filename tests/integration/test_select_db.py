"""SELECT through readthru changes the database for that client only."""


def test_select_3_then_set_lands_in_db_3_on_the_server(proxy, upstream):
    with proxy.raw() as c:
        assert c.command("SELECT", "3") == b"OK"
        assert c.command("SET", "in-three", "yes") == b"OK"
        assert c.command("GET", "in-three") == b"yes"
    db3 = upstream.client(db=3)
    db0 = upstream.client(db=0)
    try:
        assert db3.get("in-three") == b"yes"
        assert db0.get("in-three") is None
        assert db0.dbsize() == 0
    finally:
        db3.close()
        db0.close()


def test_select_is_per_client_and_survives_many_commands(proxy, upstream):
    a = proxy.raw()
    b = proxy.raw()
    try:
        assert a.command("SELECT", "5") == b"OK"
        for i in range(200):
            a.send_command("SET", f"k{i}", f"a{i}")
            b.send_command("SET", f"k{i}", f"b{i}")
        assert [a.read_reply() for _ in range(200)] == [b"OK"] * 200
        assert [b.read_reply() for _ in range(200)] == [b"OK"] * 200
        assert a.command("GET", "k7") == b"a7"
        assert b.command("GET", "k7") == b"b7"
        assert a.command("SELECT", "0") == b"OK"
        assert a.command("GET", "k7") == b"b7"
    finally:
        a.close()
        b.close()
    direct5 = upstream.client(db=5)
    try:
        assert direct5.dbsize() == 200
    finally:
        direct5.close()


def test_new_connection_starts_in_db_0(proxy, upstream):
    with proxy.raw() as c:
        assert c.command("SELECT", "2") == b"OK"
        assert c.command("SET", "x", "2") == b"OK"
    with proxy.raw() as c:
        assert c.command("GET", "x") is None
        assert c.command("SET", "x", "0") == b"OK"
    db2, db0 = upstream.client(db=2), upstream.client(db=0)
    try:
        assert db2.get("x") == b"2"
        assert db0.get("x") == b"0"
    finally:
        db2.close()
        db0.close()


def test_select_errors_match_redis(proxy, upstream):
    for endpoint in (upstream, proxy):
        with endpoint.raw() as c:
            assert c.raw_command("SELECT", "100") == b"-ERR DB index is out of range\r\n"
            assert c.raw_command("SELECT", "abc") == (
                b"-ERR value is not an integer or out of range\r\n"
            )
            assert c.command("SET", "still-db0", "1") == b"OK"
    assert upstream.client(db=0).get("still-db0") == b"1"


def test_redis_py_client_with_db_option(proxy, upstream):
    client = proxy.client(db=4)
    try:
        client.set("via-url-db", "4")
        pipe = client.pipeline(transaction=True)
        pipe.incr("ctr").incr("ctr")
        assert pipe.execute() == [1, 2]
    finally:
        client.close()
    assert upstream.client(db=4).mget("via-url-db", "ctr") == [b"4", b"2"]
    assert upstream.client(db=0).exists("via-url-db", "ctr") == 0


def test_move_between_databases(proxy, upstream):
    with proxy.raw() as c:
        assert c.command("SET", "mv", "v") == b"OK"
        assert c.command("MOVE", "mv", "7") == 1
        assert c.command("GET", "mv") is None
        assert c.command("SELECT", "7") == b"OK"
        assert c.command("GET", "mv") == b"v"
    assert upstream.client(db=7).get("mv") == b"v"
