extends NetkitTest
## HTTPPool.stream()/stream_events() and HTTPStream against the test server's /sse,
## /sse/fixture, /lines and /trickle endpoints: order, reconnection with Last-Event-ID,
## the event-stream grammar, lines and chunks, limits, cancel, the dispatch budget, and
## handlers that free the pool or drop the stream.

const TIMEOUT := 60.0

var http_url := ""


func _ready() -> void:
	http_url = env("http-url")
	if http_url == "":
		fail("no --http-url given: run the suite through `cargo test`")


func make_pool(props := {}) -> HTTPPool:
	return http_pool(http_url, props) as HTTPPool


func ended(stream: HTTPStream, timeout_s := 40.0) -> HTTPResponse:
	if stream.is_done():
		return stream.response
	var args = await wait_signal(stream.finished, timeout_s)
	return null if args == null else args[0]


func server_log(pool: HTTPPool, key: String) -> Array:
	var task := pool.fetch("/transfer/log?key=" + key)
	var res: HTTPResponse = task.response if task.is_done() else (await wait_signal(task.completed))[0]
	return res.json


func check_thousand(events: Array) -> void:
	assert_eq(events.size(), 1000)
	for i in events.size():
		var ev: Dictionary = events[i]
		if ev["id"] != str(i) or ev["data"] != "event %d" % i or ev["event"] != "message":
			fail("event %d is %s" % [i, ev])
			return
	assert_eq(events[0]["retry"], 20, "the server's retry field")


func test_a_thousand_events_arrive_in_order() -> void:
	var pool := make_pool()
	var key := fresh_key("gd-sse")
	var stream := pool.stream_events("/sse?count=1000&retry=20&key=" + key)
	assert_eq(stream.mode, HTTPStream.MODE_EVENTS)
	var events := []
	stream.event_received.connect(func(ev: Dictionary): events.append(ev))
	var res := await ended(stream)
	if not assert_not_null(res): return
	assert_true(res.ok, res.error_message)
	assert_eq(res.status, 204, "the server said no more with 204")
	check_thousand(events)
	assert_eq(stream.last_event_id, "999")
	assert_eq(await server_log(pool, key), ["last-event-id=-", "last-event-id=999"])


func test_a_dropped_stream_reconnects_with_last_event_id() -> void:
	var pool := make_pool()
	var key := fresh_key("gd-sse-drop")
	var stream := pool.stream_events("/sse?count=1000&retry=20&drop_after=400&key=" + key)
	var events := []
	stream.event_received.connect(func(ev: Dictionary): events.append(ev))
	var res := await ended(stream)
	if not assert_not_null(res): return
	assert_true(res.ok, res.error_message)
	check_thousand(events)
	assert_eq(await server_log(pool, key), ["last-event-id=-", "last-event-id=399", "last-event-id=999"])
	assert_eq(res.attempts, 3, "three connections")


func test_the_event_stream_grammar() -> void:
	var pool := make_pool()
	var stream := pool.stream(HTTPClient.METHOD_GET, "/sse/fixture", null, HTTPStream.MODE_EVENTS)
	var events := []
	stream.event_received.connect(func(ev: Dictionary): events.append(ev))
	var res := await ended(stream)
	if not assert_not_null(res): return
	assert_eq(events, [
		{"event": "greeting", "data": "hello\n two spaces", "id": "", "retry": 25},
		{"event": "message", "data": "\nafter an empty line", "id": "", "retry": 25},
		{"event": "message", "data": "{\"json\": true}", "id": "7", "retry": 25},
		{"event": "bye", "data": "last", "id": "end", "retry": 25},
	])
	var plain := await ended(pool.stream_events("/sse/plain"))
	assert_eq(plain.error, HTTPResponse.ERR_DECODE)
	assert_contains(plain.error_message, "not text/event-stream")


func test_lines_chunks_and_an_over_long_line() -> void:
	var pool := make_pool({"stream_max_line_bytes": 4096})
	var lines := []
	var s := pool.stream(HTTPClient.METHOD_GET, "/lines?count=50", null, HTTPStream.MODE_LINES)
	s.line_received.connect(func(line: String): lines.append(line))
	var res := await ended(s)
	assert_true(res.ok, res.error_message)
	var want := []
	for i in 50:
		want.append("line %d" % i)
	assert_eq(lines, want, "LF, CRLF and CR all end a line")

	var bytes := PackedByteArray()
	var c := pool.stream(HTTPClient.METHOD_GET, "/trickle?chunks=4&interval_ms=20", null, HTTPStream.MODE_CHUNKS)
	c.chunk_received.connect(func(data: PackedByteArray): bytes.append_array(data))
	res = await ended(c)
	assert_true(res.ok, res.error_message)
	assert_eq(bytes.get_string_from_utf8(), "chunk 0\nchunk 1\nchunk 2\nchunk 3\n")

	lines.clear()
	var long := pool.stream(HTTPClient.METHOD_GET, "/lines?count=3&long=5000", null, HTTPStream.MODE_LINES)
	long.line_received.connect(func(line: String): lines.append(line))
	res = await ended(long)
	assert_eq(lines, ["line 0", "line 1", "line 2"])
	assert_eq(res.error, HTTPResponse.ERR_BODY_TOO_LARGE)
	assert_contains(res.error_message, "longer than max_line_bytes (4096 bytes)")

	var bad := await ended(pool.stream(HTTPClient.METHOD_GET, "/sse", null, 7))
	assert_eq(bad.error, HTTPResponse.ERR_INVALID_REQUEST)
	assert_contains(bad.error_message, "HTTPStream.Mode")


func test_cancel_ends_the_stream_at_once() -> void:
	var pool := make_pool()
	var stream := pool.stream_events("/sse?count=1000&interval_ms=50")
	var events := []
	stream.event_received.connect(func(ev: Dictionary):
		events.append(ev)
		if events.size() == 3:
			stream.cancel())
	var res := await ended(stream, 20.0)
	if not assert_not_null(res): return
	assert_eq(res.error, HTTPResponse.ERR_CANCELLED)
	assert_eq(events.size(), 3, "nothing after cancel()")
	await wait_frames(10)
	assert_eq(events.size(), 3)


func test_events_are_delivered_within_the_dispatch_budget() -> void:
	var pool := make_pool({"dispatch_max_per_frame": 10, "stream_buffer_bytes": 2048})
	var stream := pool.stream_events("/sse?count=300")
	var per_frame := {}
	stream.event_received.connect(func(_ev: Dictionary):
		var f := Engine.get_process_frames()
		per_frame[f] = per_frame.get(f, 0) + 1)
	var res := await ended(stream)
	assert_true(res.ok, res.error_message)
	var total := 0
	for f in per_frame:
		total += per_frame[f]
		assert_le(per_frame[f], 10, "frame %d delivered too many" % f)
	assert_eq(total, 300, "none lost although the game took only 10 a frame")
	assert_ge(per_frame.size(), 30)


func test_handlers_may_free_the_pool_or_drop_the_stream() -> void:
	# The pool freed from an event handler: no crash, the stream ends cancelled.
	var pool := make_pool()
	var stream := pool.stream_events("/sse?count=1000&interval_ms=5")
	var events := [0]
	stream.event_received.connect(func(_ev: Dictionary):
		events[0] += 1
		if events[0] == 2:
			pool.free())
	var res := await ended(stream, 20.0)
	if not assert_not_null(res): return
	assert_eq(res.error, HTTPResponse.ERR_CANCELLED)
	assert_false(is_instance_valid(pool))
	assert_eq(events[0], 2)
	# The game drops its last reference from a handler and cancels: the stream still ends
	# once, and a second pool keeps working.
	var other := make_pool()
	var state := {"stream": other.stream_events("/sse?count=1000&interval_ms=5"), "events": 0, "finished": 0}
	(state["stream"] as HTTPStream).finished.connect(func(_r): state["finished"] += 1)
	(state["stream"] as HTTPStream).event_received.connect(func(_ev: Dictionary):
		state["events"] += 1
		if state["stream"] != null:
			(state["stream"] as HTTPStream).cancel()
			state["stream"] = null)
	assert_true(await wait_until(func(): return state["finished"] == 1, 20.0))
	assert_eq(state["events"], 1)
	var s2 := other.stream_events("/sse?count=5")
	var r2 := await ended(s2)
	assert_true(r2.ok, r2.error_message)


func test_leaving_the_tree_cancels_streams_and_downloads() -> void:
	var pool := make_pool()
	var stream := pool.stream_events("/sse?count=1000&interval_ms=20")
	var file := "user://netkit_test_leave.bin"
	var dl := pool.download("/download?bytes=%d" % (500 * 1024 * 1024), file)
	assert_true(await wait_until(func(): return dl.bytes_received > 0, 20.0), "the download runs")
	assert_eq(pool.get_stats()["streams"], 1)
	assert_eq(pool.get_stats()["downloads"], 1)
	remove_child(pool)
	var res := await ended(stream, 10.0)
	if not assert_not_null(res): return
	assert_eq(res.error, HTTPResponse.ERR_CANCELLED)
	# Both end in the same frames: the download may be done already (a signal is not replayed).
	if not dl.is_done() and await wait_signal(dl.completed, 10.0) == null:
		return
	assert_eq(dl.response.error, HTTPResponse.ERR_CANCELLED)
	assert_true(FileAccess.file_exists(file + ".part"), "the part file is kept")
	assert_eq(pool.get_stats()["streams"], 0)
	assert_eq(pool.get_stats()["downloads"], 0)
	DirAccess.remove_absolute(file + ".part")
	DirAccess.remove_absolute(file + ".part.meta")
	pool.free()


func test_a_silent_stream_ends_after_stream_idle_timeout() -> void:
	# The server sends one chunk, then stays silent for 5 s: with stream_idle_timeout the
	# game learns it in half a second instead of waiting on a stream that just stopped.
	var pool := make_pool({"stream_idle_timeout": 0.5})
	var stream := pool.stream(HTTPClient.METHOD_GET, "/trickle?chunks=3&interval_ms=5000", null, HTTPStream.MODE_CHUNKS)
	var chunks := []
	stream.chunk_received.connect(func(c: PackedByteArray): chunks.append(c.get_string_from_utf8()))
	var res := await ended(stream, 30.0)
	if not assert_not_null(res): return
	assert_eq(res.error, HTTPResponse.ERR_TIMEOUT, res.error_message)
	assert_contains(res.error_message, "stream_idle_timeout")
	assert_eq(chunks, ["chunk 0\n"], "the chunk from before the silence")
	# Off by default: the same stream completes.
	var patient := make_pool()
	var whole := patient.stream(HTTPClient.METHOD_GET, "/trickle?chunks=2&interval_ms=1000", null, HTTPStream.MODE_CHUNKS)
	var r2 := await ended(whole, 30.0)
	assert_true(r2.ok, r2.error_message)


func test_line_chunk_and_finished_handlers_may_cancel_or_free() -> void:
	# cancel() from line_received: nothing after it, one finished.
	var pool := make_pool()
	var lines := pool.stream(HTTPClient.METHOD_GET, "/lines?count=500", null, HTTPStream.MODE_LINES)
	var got := {"lines": 0, "finished": 0}
	lines.line_received.connect(func(_l: String):
		got["lines"] += 1
		lines.cancel())
	lines.finished.connect(func(_r): got["finished"] += 1)
	var res := await ended(lines, 20.0)
	if not assert_not_null(res): return
	assert_eq(res.error, HTTPResponse.ERR_CANCELLED)
	assert_eq(got["lines"], 1)
	# The pool freed from chunk_received: the stream still ends once, cancelled.
	var doomed := make_pool()
	var chunks := doomed.stream(HTTPClient.METHOD_GET, "/trickle?chunks=50&interval_ms=20", null, HTTPStream.MODE_CHUNKS)
	var seen := {"chunks": 0, "finished": 0}
	chunks.chunk_received.connect(func(_c: PackedByteArray):
		seen["chunks"] += 1
		doomed.free())
	chunks.finished.connect(func(_r): seen["finished"] += 1)
	var r2 := await ended(chunks, 20.0)
	if not assert_not_null(r2): return
	assert_eq(r2.error, HTTPResponse.ERR_CANCELLED)
	assert_eq(seen["chunks"], 1)
	await wait_frames(5)
	assert_eq(seen["finished"], 1, "finished once")
	# finished handlers that free their pool and start over on another one.
	var first := make_pool()
	var second := make_pool()
	var state := {"next": null}
	var short := first.stream(HTTPClient.METHOD_GET, "/lines?count=3", null, HTTPStream.MODE_LINES)
	short.finished.connect(func(_r):
		short.cancel()
		first.free()
		state["next"] = second.stream(HTTPClient.METHOD_GET, "/lines?count=3", null, HTTPStream.MODE_LINES))
	assert_true(await wait_until(func(): return state["next"] != null, 20.0), "finished was emitted")
	var r3 := await ended(state["next"], 20.0)
	assert_true(r3.ok, r3.error_message)
	assert_false(is_instance_valid(first))
