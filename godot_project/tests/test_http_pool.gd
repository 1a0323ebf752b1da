extends NetkitTest
## HTTPPool against the real test server (rust/test_support/src/http_server.rs), started by the
## Rust driver and passed in as --http-url / --https-url.

const TIMEOUT := 40.0

var http_url := ""
var https_url := ""


func _ready() -> void:
	http_url = env("http-url")
	https_url = env("https-url")
	if http_url == "":
		fail("no --http-url given: run the suite through `cargo test`")


## A pool on the test server with fast retries; `props` overrides any property.
func make_pool(props := {}) -> HTTPPool:
	return http_pool(http_url, {"retry_base_delay": 0.02}.merged(props, true)) as HTTPPool


## Awaits a task's response (null and a recorded failure on timeout). A task that already
## completed while we awaited another one has its response stored: a signal emitted
## before `await` starts is not seen again, so check first.
func done(task: HTTPTask, timeout_s := 15.0) -> HTTPResponse:
	if task.is_done():
		return task.response
	var args = await wait_signal(task.completed, timeout_s)
	return null if args == null else args[0]


## The test server's counters, read through a pool of its own.
func server_stats() -> Dictionary:
	var pool := make_pool()
	var res := await done(pool.fetch("/stats"))
	pool.queue_free()
	return res.json if res != null else {}


func reset_server_stats() -> void:
	var pool := make_pool()
	await done(pool.request(HTTPClient.METHOD_POST, "/stats/reset", null))
	pool.queue_free()


func test_get_json_keeps_ints() -> void:
	var pool := make_pool()
	var res := await done(pool.fetch("/json"))
	if not assert_not_null(res): return
	assert_true(res.ok, res.error_message)
	assert_eq(res.status, 200)
	assert_eq(res.error, HTTPResponse.ERR_NONE)
	var json: Dictionary = res.json
	assert_eq(json["int"], 42, "an integer stays int")
	assert_eq(typeof(json["int"]), TYPE_INT)
	assert_eq(json["negative"], -7)
	assert_eq(json["float"], 3.5)
	assert_eq(typeof(json["big_int"]), TYPE_FLOAT, "beyond i64 becomes float")
	assert_eq(json["unicode"], "héllo wörld ✓ 日本語 🎮")
	assert_eq(json["nested"]["array"][2][2]["five"], 5)
	assert_eq(json["null"], null)
	assert_eq(json.keys()[0], "int", "key order is kept")
	assert_eq(res.attempts, 1)
	assert_eq(res.http_version, "HTTP/1.1")
	assert_eq(res.get_header("X-HTTP-Version"), "HTTP/1.1")
	assert_true(res.headers.has("content-type"))


func test_concurrency_limit_and_fifo_order() -> void:
	await reset_server_stats()
	var pool := make_pool({"max_concurrent": 4})
	await done(pool.request(HTTPClient.METHOD_POST, "/order/reset", null))
	var tasks: Array[HTTPTask] = []
	# 250 ms per request: long enough that none ends while the loop submits, even on a
	# loaded machine (25 rounds of 4, about 6 s).
	for i in 100:
		tasks.append(pool.fetch("/delay?ms=250&id=%d" % i))
	# On a loaded machine a few may already have finished during the loop: every request
	# is running (at most 4), queued, or done.
	var s := pool.get_stats()
	assert_le(s["in_flight"], 4)
	assert_eq(s["in_flight"] + s["queued"] + s["succeeded"] + s["failed"] - 1, 100, str(s))
	assert_ge(s["queued"], 80, "the rest wait in the queue")
	for task in tasks:
		var res := await done(task)
		if res == null or not res.ok:
			fail("a request failed: %s" % (res.error_message if res else "timeout"))
			return
	var stats := await server_stats()
	assert_le(stats["peak_concurrency"], 4, "the server never saw more than max_concurrent")
	assert_eq(pool.get_stats()["peak_in_flight"], 4)
	var order: Array = (await done(pool.fetch("/order"))).json
	assert_eq(order.size(), 100)
	# Requests start in submission order; the four that run together may reach the server
	# in any order among themselves.
	for pos in order.size():
		var n := int(order[pos])
		if absi(n - pos) >= 4:
			fail("request %d reached the server at position %d: %s" % [n, pos, order])
			return


func test_queue_full_is_delivered_through_completed() -> void:
	var pool := make_pool({"max_concurrent": 1, "max_queued": 3})
	var tasks: Array[HTTPTask] = []
	for i in 6:
		tasks.append(pool.fetch("/delay?ms=100"))
	var errors := []
	for task in tasks:
		var res := await done(task)
		errors.append(res.error if res else -1)
	assert_eq(errors.count(HTTPResponse.ERR_QUEUE_FULL), 2, str(errors))
	assert_eq(errors.count(HTTPResponse.ERR_NONE), 4, str(errors))
	var full := tasks[4].response
	assert_contains(full.error_message, "queue is full")
	assert_eq(full.get_error_name(), "ERR_QUEUE_FULL")


func test_timeout() -> void:
	var pool := make_pool({"timeout": 0.3, "max_retries": 0})
	var started := Time.get_ticks_msec()
	var res := await done(pool.fetch("/delay?ms=5000"))
	assert_eq(res.error, HTTPResponse.ERR_TIMEOUT, res.error_message)
	assert_false(res.ok)
	assert_lt(Time.get_ticks_msec() - started, 2000)
	assert_contains(res.error_message, "within 0.3 s (the pool's timeout); gave up after 1 attempt, ")


func test_flaky_endpoint_succeeds_on_third_attempt() -> void:
	var key := "gd-flaky-%d" % Time.get_ticks_usec()
	var pool := make_pool({"max_retries": 3})
	var res := await done(pool.fetch("/flaky?key=%s&fail=2" % key))
	assert_true(res.ok, res.error_message)
	assert_eq(res.attempts, 3)
	assert_eq(res.json["attempt"], 3)
	assert_eq(pool.get_stats()["retries"], 2)


func test_retry_after_is_waited_for() -> void:
	var key := "gd-ra-%d" % Time.get_ticks_usec()
	var pool := make_pool()
	var res := await done(pool.fetch("/retry-after?key=%s&seconds=1" % key))
	assert_true(res.ok, res.error_message)
	assert_eq(res.attempts, 2)
	assert_ge(res.json["waited_ms"], 950, "the retry came after Retry-After")


func test_post_is_not_retried_without_idempotency_key() -> void:
	var key := "gd-post-%d" % Time.get_ticks_usec()
	var pool := make_pool({"max_retries": 3})
	var res := await done(pool.request(HTTPClient.METHOD_POST, "/flaky?key=%s&fail=1" % key, {"score": 1}))
	assert_eq(res.status, 503)
	assert_eq(res.error, HTTPResponse.ERR_HTTP_STATUS)
	assert_eq(res.attempts, 1)
	assert_contains(res.error_message, "Idempotency-Key")
	var count := await done(pool.fetch("/count?key=" + key))
	assert_eq(count.json["count"], 1, "the server saw the POST once")

	key += "-k"
	res = await done(pool.request(HTTPClient.METHOD_POST, "/flaky?key=%s&fail=1" % key, {"score": 1}, ["Idempotency-Key: abc"]))
	assert_true(res.ok, res.error_message)
	assert_eq(res.attempts, 2)


func test_cancel_delivers_cancelled() -> void:
	var pool := make_pool({"max_concurrent": 1})
	var running := pool.fetch("/delay?ms=3000")
	var queued := pool.fetch("/delay?ms=3000")
	await wait_frames(2)
	var started := Time.get_ticks_msec()
	running.cancel()
	queued.cancel()
	var a := await done(running)
	var b := await done(queued)
	assert_eq(a.error, HTTPResponse.ERR_CANCELLED)
	assert_eq(b.error, HTTPResponse.ERR_CANCELLED)
	assert_true(running.is_done())
	assert_lt(Time.get_ticks_msec() - started, 1000, "cancel is prompt")
	assert_eq(pool.get_pending_count(), 0)


func test_cancel_all() -> void:
	var pool := make_pool({"max_concurrent": 2})
	var tasks: Array[HTTPTask] = []
	for i in 6:
		tasks.append(pool.fetch("/delay?ms=3000"))
	await wait_frames(1)
	pool.cancel_all()
	for task in tasks:
		var res := await done(task, 3.0)
		assert_eq(res.error, HTTPResponse.ERR_CANCELLED)


func test_freeing_pool_in_flight_delivers_nothing_to_it() -> void:
	var doomed := make_pool({"max_concurrent": 8})
	var seen := {"pool_signals": 0}
	doomed.request_completed.connect(func(_id, _res): seen["pool_signals"] += 1)
	var tasks: Array[HTTPTask] = []
	for i in 20:
		tasks.append(doomed.fetch("/delay?ms=400"))
	await wait_frames(2)
	doomed.queue_free()
	await wait_frames(1)
	var other := make_pool()
	var res := await done(other.fetch("/json"))
	assert_true(res.ok, "another pool keeps working")
	await wait_seconds(0.6)
	assert_eq(seen["pool_signals"], 0, "nothing delivered to the freed pool")
	for task in tasks:
		assert_true(task.is_done(), "every task still ends")
		assert_eq(task.response.error, HTTPResponse.ERR_CANCELLED)
	var stats := await server_stats()
	assert_eq(stats["in_flight"], 0, "the freed pool's requests were aborted")


func test_bad_url() -> void:
	var pool := make_pool()
	pool.base_url = ""
	for url in ["not a url", "ftp://example.com/x", "http://", ""]:
		var res := await done(pool.fetch(url))
		assert_eq(res.error, HTTPResponse.ERR_INVALID_URL, url)
		assert_ne(res.error_message, "")
	var res := await done(pool.request(99, http_url + "/json", null))
	assert_eq(res.error, HTTPResponse.ERR_INVALID_REQUEST)
	res = await done(pool.request(HTTPClient.METHOD_POST, http_url + "/echo", {"node": Node}))
	assert_eq(res.error, HTTPResponse.ERR_INVALID_REQUEST, "an Object cannot be sent as JSON")
	res = await done(pool.request(HTTPClient.METHOD_GET, http_url + "/json", null, ["no colon here"]))
	assert_eq(res.error, HTTPResponse.ERR_INVALID_REQUEST)


func test_a_broken_absolute_url_is_refused_not_sent_as_a_path_of_base_url() -> void:
	var pool := make_pool()
	var before: int = (await server_stats())["requests"]
	for url in ["ht!tp://nope", "://nope", "localhost:8080/json"]:
		var res := await done(pool.fetch(url))
		assert_eq(res.error, HTTPResponse.ERR_INVALID_URL, "%s: %s" % [url, res.error_message])
		assert_contains(res.error_message, "is not a valid URL", url)
	assert_eq((await server_stats())["requests"], before, "nothing was sent to base_url")
	pool.base_url = ""
	var res := await done(pool.fetch("/json"))
	assert_eq(res.error, HTTPResponse.ERR_INVALID_URL, res.error_message)
	assert_contains(res.error_message, "is a relative path and base_url is empty: set base_url")


func test_refused_connection() -> void:
	# Port 9 (discard) on loopback has no listener here.
	var pool := make_pool({"max_retries": 1})
	var res := await done(pool.fetch("http://127.0.0.1:9/x"))
	assert_eq(res.error, HTTPResponse.ERR_CONNECT, res.error_message)
	assert_eq(res.attempts, 2, "connect errors are retried")


func test_bad_json_keeps_body() -> void:
	var pool := make_pool()
	var res := await done(pool.fetch("/bad-json"))
	assert_eq(res.error, HTTPResponse.ERR_DECODE)
	assert_eq(res.status, 200)
	assert_eq(res.text, "{\"a\": 1,,}")
	assert_eq(res.json, null)
	res = await done(pool.fetch("/deep-json?depth=5000"))
	assert_eq(res.error, HTTPResponse.ERR_DECODE)
	assert_contains(res.error_message, "nested deeper")


func test_oversized_body() -> void:
	var pool := make_pool({"max_body_bytes": 100000})
	var res := await done(pool.fetch("/big?bytes=5000000"))
	assert_eq(res.error, HTTPResponse.ERR_BODY_TOO_LARGE)
	res = await done(pool.fetch("/big?bytes=5000000&chunked=1"))
	assert_eq(res.error, HTTPResponse.ERR_BODY_TOO_LARGE)
	assert_eq(res.body.size(), 100000, "what arrived up to the limit is kept")


func test_reset_mid_body() -> void:
	var pool := make_pool({"max_retries": 0})
	var res := await done(pool.fetch("/reset-mid-body"))
	assert_eq(res.error, HTTPResponse.ERR_CONNECTION_LOST, res.error_message)
	assert_eq(res.body.size(), 100, "the partial body is kept")


func test_non_utf8_text_never_crashes() -> void:
	var pool := make_pool()
	var res := await done(pool.fetch("/non-utf8"))
	assert_true(res.ok)
	assert_eq(res.body, PackedByteArray([0xff, 0xfe, 0x41, 0x80]))
	assert_eq(res.text.length(), 4)
	assert_true(res.text.contains("A"))


func test_gzip_decoded() -> void:
	var pool := make_pool()
	var res := await done(pool.fetch("/gzip"))
	assert_true(res.ok)
	assert_eq(res.json["compressed"], true, "the server sent gzip")
	assert_true(String(res.json["text"]).begins_with("the quick brown fox"))


func test_redirect_kinds() -> void:
	var pool := make_pool()
	var expected := {301: "GET", 302: "GET", 303: "GET", 307: "POST", 308: "POST"}
	for code in expected:
		var res := await done(pool.request(HTTPClient.METHOD_POST, "/redirect/%d?to=/echo" % code, "payload"))
		assert_true(res.ok, "%d: %s" % [code, res.error_message])
		assert_eq(res.json["method"], expected[code], "method after %d" % code)
		assert_eq(res.json["body"] == "payload", expected[code] == "POST", "body kept after %d" % code)
		assert_true(res.url.ends_with("/echo"))
	var res := await done(pool.fetch("/redirect-loop"))
	assert_eq(res.error, HTTPResponse.ERR_TOO_MANY_REDIRECTS)


func test_tls_needs_trusted_ca() -> void:
	var pool := make_pool({"max_retries": 0})
	pool.base_url = https_url
	var res := await done(pool.fetch("/json"))
	assert_eq(res.error, HTTPResponse.ERR_TLS, res.error_message)
	assert_contains(res.error_message, "trusted_ca_pem")
	var ca := (await done(pool.fetch(http_url + "/ca.pem"))).text
	assert_true(ca.begins_with("-----BEGIN CERTIFICATE-----"))
	pool.trusted_ca_pem = ca
	res = await done(pool.fetch("/json"))
	assert_true(res.ok, res.error_message)


func test_http2_over_tls() -> void:
	var pool := make_pool()
	pool.trusted_ca_pem = (await done(pool.fetch(http_url + "/ca.pem"))).text
	pool.base_url = https_url
	var res := await done(pool.fetch("/json"))
	assert_true(res.ok, res.error_message)
	assert_eq(res.http_version, "HTTP/2")
	assert_eq(res.json["http_version"], "HTTP/2.0")


func test_sequential_requests_reuse_connections() -> void:
	var pool := make_pool({"max_concurrent": 4})
	await done(pool.fetch("/json"))
	await reset_server_stats()
	for i in 100:
		var res := await done(pool.fetch("/json"))
		if not assert_true(res.ok): return
	var stats := await server_stats()
	# The stats pools themselves open one connection each.
	assert_le(stats["http_connections"], 4 + 2, "connections are reused: %s" % stats)


func test_burst_is_spread_over_frames() -> void:
	var pool := make_pool({"max_concurrent": 64, "dispatch_max_per_frame": 100})
	pool.set_process(false)
	var per_frame := {}
	pool.request_completed.connect(func(_id, _res):
		var f := Engine.get_process_frames()
		per_frame[f] = per_frame.get(f, 0) + 1)
	for i in 1000:
		pool.fetch("/json")
	var all_done := func() -> bool: return pool.get_stats()["waiting_dispatch"] == 1000
	assert_true(await wait_until(all_done, 20.0), "1000 responses finished in the background")
	pool.set_process(true)
	assert_true(await wait_until(func() -> bool: return pool.get_stats()["dispatched"] == 1000, 10.0))
	assert_ge(per_frame.size(), 10, "1000 responses over at least 10 frames")
	assert_le(per_frame.values().max(), 100, "never more than the per-frame budget")
	assert_eq(pool.get_stats()["succeeded"], 1000)


func test_handlers_run_on_main_thread_and_may_reenter() -> void:
	var pool := make_pool()
	var threads := []
	var followups: Array[HTTPTask] = []
	pool.request_completed.connect(func(_id, res: HTTPResponse):
		threads.append(OS.get_thread_caller_id() == OS.get_main_thread_id())
		# A handler may call back into the pool (no "already bound" panic).
		if followups.size() < 3:
			followups.append(pool.fetch("/json")))
	var task := pool.fetch("/json")
	task.completed.connect(func(_res): threads.append(OS.get_thread_caller_id() == OS.get_main_thread_id()))
	await done(task)
	assert_true(await wait_until(func() -> bool: return followups.size() == 3 and followups.all(func(t): return t.is_done()), 10.0))
	assert_ge(threads.size(), 5)
	assert_false(threads.has(false), "every handler ran on the main thread")


func test_idle_connections_expire_after_pool_idle_timeout() -> void:
	var pool := make_pool()
	assert_lt(pool.pool_idle_timeout, 5.0, "below Node's and Apache's 5 s keep-alive")
	pool.pool_idle_timeout = 0.2
	await reset_server_stats()
	assert_true((await done(pool.fetch("/json"))).ok)
	await wait_seconds(0.6)
	assert_true((await done(pool.fetch("/json"))).ok)
	var stats := await server_stats()
	# Two for the pool (the idle one expired), one for the stats pool.
	assert_eq(stats["http_connections"], 3, "the idle connection was not reused: %s" % stats)


func test_trusted_openssl_style_self_signed_certificate() -> void:
	var pool := make_pool({"max_retries": 0})
	var info: Dictionary = (await done(pool.fetch("/self-signed"))).json
	var res := await done(pool.fetch(info["url"] + "/json"))
	assert_eq(res.error, HTTPResponse.ERR_TLS, res.error_message)
	assert_contains(res.error_message, "put its certificate (or its CA) in trusted_ca_pem")
	pool.trusted_ca_pem = info["pem"]
	res = await done(pool.fetch(info["url"] + "/json"))
	assert_true(res.ok, res.error_message)


func test_uppercase_scheme_is_an_absolute_url() -> void:
	var pool := make_pool()
	pool.base_url = http_url + "/v1"
	var res := await done(pool.fetch(http_url.replace("http://", "HTTP://") + "/json"))
	assert_true(res.ok, res.error_message)
	assert_eq(res.url, http_url + "/json")


func test_https_to_plain_http_port_is_tls_error() -> void:
	var pool := make_pool()
	var res := await done(pool.fetch(http_url.replace("http://", "https://") + "/json"))
	assert_eq(res.error, HTTPResponse.ERR_TLS, res.error_message)
	assert_eq(res.attempts, 1, "a TLS failure is not retried")


func test_repeated_header_one_rule() -> void:
	var pool := make_pool()
	var res := await done(pool.fetch("/repeated-header"))
	assert_true(res.ok, res.error_message)
	assert_eq(res.get_header("X-Dup"), "first, second")
	assert_eq(res.headers["x-dup"], "first, second")


func test_default_headers_stay_on_their_origin() -> void:
	var pool := make_pool()
	pool.trusted_ca_pem = (await done(pool.fetch("/ca.pem"))).text
	pool.default_headers = {"X-Api-Key": "secret-key", "Authorization": "Bearer secret"}
	var res := await done(pool.fetch("/redirect/302?to=/headers"))
	assert_true(res.ok, res.error_message)
	assert_eq(res.json.get("x-api-key"), "secret-key", "same origin keeps them")
	assert_eq(res.json.get("authorization"), "Bearer secret")
	res = await done(pool.fetch("/redirect/302?to=" + https_url + "/headers", PackedStringArray(["Cookie: s=1"])))
	assert_true(res.ok, res.error_message)
	assert_true(res.url.begins_with(https_url))
	for name in ["x-api-key", "authorization", "cookie"]:
		assert_false(res.json.has(name), "%s crossed to another origin: %s" % [name, res.json])


func test_json_with_bom_and_out_of_range_numbers() -> void:
	var pool := make_pool()
	var res := await done(pool.fetch("/bom-json"))
	assert_true(res.ok, res.error_message)
	assert_eq(res.json["bom"], true)
	res = await done(pool.fetch("/huge-number"))
	assert_true(res.ok, res.error_message)
	assert_eq(typeof(res.json["ratio"]), TYPE_FLOAT)
	assert_true(is_inf(res.json["ratio"]) and res.json["ratio"] > 0, "1e400 is INF as in Godot's JSON")
	assert_true(is_inf(res.json["negative"]) and res.json["negative"] < 0)
	assert_eq(res.json["ok"], 1)


func test_hundreds_of_headers_and_a_clear_bound() -> void:
	var pool := make_pool({"max_retries": 0})
	var res := await done(pool.fetch("/many-headers?count=300"))
	assert_true(res.ok, res.error_message)
	assert_eq(res.get_header("x-field-299"), "value-299")
	res = await done(pool.fetch("/big-header?bytes=60000"))
	assert_true(res.ok, res.error_message)
	assert_eq(res.get_header("x-big").length(), 60000)
	res = await done(pool.fetch("/big-header?bytes=300000"))
	assert_eq(res.error, HTTPResponse.ERR_HEADERS_TOO_LARGE, res.error_message)
	assert_eq(res.get_error_name(), "ERR_HEADERS_TOO_LARGE")
	assert_contains(res.error_message, "256 KiB")


func test_timeout_mid_body_keeps_status_and_bytes() -> void:
	var pool := make_pool({"timeout": 0.5, "max_retries": 0})
	var res := await done(pool.fetch("/trickle?chunks=5&interval_ms=3000"))
	assert_eq(res.error, HTTPResponse.ERR_TIMEOUT, res.error_message)
	assert_eq(res.status, 200)
	assert_eq(res.text, "chunk 0\n")
