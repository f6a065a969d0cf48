

def test_handshake_rate_bucket_refills_over_time() -> None:
    from socketio_sync.wsgi.engine import _TokenBucket

    bucket = _TokenBucket(3, 60.0)
    now = bucket.stamp
    assert [bucket.take(now) for _ in range(4)] == [True, True, True, False]
    assert bucket.take(now + 19.0) is False  # 0.95 of a token back
    assert bucket.take(now + 21.0) is True   # one token per 20 s
    assert bucket.take(now + 21.0) is False
    assert [bucket.take(now + 1000.0) for _ in range(4)] == [True, True, True, False]  # capped at 3
