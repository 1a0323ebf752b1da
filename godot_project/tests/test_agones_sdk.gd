extends NetkitTest
## AgonesSDK against the test SDK server (rust/test_support/src/agones_sdk.rs), whose port the
## Rust driver passes as --agones-sdk-port. Each test asks it for a fresh instance (its
## own GameServer in state Scheduled, optionally a sidecar that starts late) with
## POST /test/new, and reads what that instance received through its /test/ endpoints.

const TIMEOUT := 40.0

var control_url := ""


func _ready() -> void:
	var port := env("agones-sdk-port")
	if port == "":
		fail("no --agones-sdk-port given: run the suite through `cargo test`")
	control_url = "http://127.0.0.1:%s" % port


## Awaits a task's response (null and a recorded failure on timeout).
func done(task: HTTPTask, timeout_s := 15.0) -> HTTPResponse:
	if task.is_done():
		return task.response
	var args = await wait_signal(task.completed, timeout_s)
	return null if args == null else args[0]


## A request to the test server at `url` through a pool of its own; null on failure.
func control(url: String, method := HTTPClient.METHOD_GET) -> Variant:
	var pool := HTTPPool.new()
	add_child(pool)
	var res := await done(pool.request(method, url, null))
	pool.queue_free()
	if res == null or not res.ok:
		fail("test server call %s failed: %s" % [url, res.error_message if res else "timeout"])
		return null
	return res.json


## A fresh sidecar instance whose port accepts connections after `delay_ms`; 0 on failure.
func new_sidecar(delay_ms := 0) -> int:
	var json = await control("%s/test/new?delay_ms=%d" % [control_url, delay_ms], HTTPClient.METHOD_POST)
	return 0 if json == null else int(json["port"])


## The instance's health pings: {"now_ms", "count", "times_ms"} (ms since it was created).
func pings(port: int) -> Dictionary:
	var json = await control("http://127.0.0.1:%d/test/pings" % port)
	return json if json is Dictionary else {"now_ms": 0, "count": 0, "times_ms": []}


## The instance's SDK requests as "METHOD /path" lines.
func requests(port: int) -> PackedStringArray:
	var json = await control("http://127.0.0.1:%d/test/requests" % port)
	var lines := PackedStringArray()
	if json is Dictionary:
		for r: Dictionary in json["requests"]:
			lines.append(r["line"])
	return lines


func make_sdk(port: int, props := {}) -> AgonesSDK:
	var sdk := AgonesSDK.new()
	sdk.port = port
	for key in props:
		sdk.set(key, props[key])
	add_child(sdk)
	return sdk


## Records every state the watch stream reports, in order.
func track_states(sdk: AgonesSDK) -> Array:
	var states := []
	sdk.game_server_changed.connect(func(gs: Dictionary): states.append(gs["status"]["state"]))
	return states


func count_between(times: Array, from_ms: int, to_ms: int) -> int:
	var n := 0
	for t in times:
		if t > from_ms and t < to_ms:
			n += 1
	return n


func test_ready_moves_the_game_server_to_ready() -> void:
	var port := await new_sidecar()
	if port == 0: return
	var sdk := make_sdk(port)
	var states := track_states(sdk)
	assert_true(sdk.is_under_agones())
	assert_true(await wait_until(func(): return states.has("Scheduled"), 5.0), "the watch stream sends the current record first")
	var res := await done(sdk.ready())
	if not assert_not_null(res): return
	assert_true(res.ok, res.error_message)
	assert_true(await wait_until(func(): return states.has("Ready"), 5.0), "states: %s" % [states])
	assert_eq(states, ["Scheduled", "RequestReady", "Ready"])
	assert_eq(sdk.last_game_server["status"]["state"], "Ready")
	res = await done(sdk.get_game_server())
	assert_true(res.ok, res.error_message)
	assert_eq(res.json["status"]["state"], "Ready")
	assert_eq(res.json["status"]["ports"][0]["port"], 7777)


func test_labels_and_annotations_are_stored_under_the_sdk_prefix() -> void:
	var port := await new_sidecar()
	if port == 0: return
	var sdk := make_sdk(port)
	var label_seen := []
	sdk.game_server_changed.connect(func(gs: Dictionary):
		if gs["object_meta"]["labels"].has("agones.dev/sdk-mode"):
			label_seen.append(gs["object_meta"]["labels"]["agones.dev/sdk-mode"]))
	var label := sdk.set_label("mode", "ranked")
	var note := sdk.set_annotation("motd", "Welcome, players! ✓")
	assert_true((await done(label)).ok)
	assert_true((await done(note)).ok)
	var res := await done(sdk.get_game_server())
	assert_eq(res.json["object_meta"]["labels"]["agones.dev/sdk-mode"], "ranked")
	assert_eq(res.json["object_meta"]["annotations"]["agones.dev/sdk-motd"], "Welcome, players! ✓")
	assert_true(await wait_until(func(): return label_seen.has("ranked"), 5.0), "the label reached game_server_changed")
	# Keys Kubernetes would refuse fail here, with the reason, and are not sent.
	var bad := await done(sdk.set_label("bad key", "x"))
	assert_eq(bad.error, HTTPResponse.ERR_INVALID_REQUEST)
	assert_contains(bad.error_message, "agones.dev/sdk-bad key")
	bad = await done(sdk.set_label("mode", "not a label value"))
	assert_eq(bad.error, HTTPResponse.ERR_INVALID_REQUEST)
	var lines := await requests(port)
	assert_eq(Array(lines).count("PUT /metadata/label"), 1, "only the valid label was sent: %s" % [lines])


func test_allocation_is_seen_through_game_server_changed() -> void:
	var port := await new_sidecar()
	if port == 0: return
	var sdk := make_sdk(port)
	var states := track_states(sdk)
	assert_true((await done(sdk.ready())).ok)
	assert_true(await wait_until(func(): return states.has("Ready"), 5.0))
	# A matchmaker's GameServerAllocation: the game only learns it from the watch stream.
	# The signal may come before the control call's own answer, so track, don't await it.
	await control("http://127.0.0.1:%d/test/allocate" % port, HTTPClient.METHOD_POST)
	assert_true(await wait_until(func(): return states.back() == "Allocated", 5.0), "states: %s" % [states])
	assert_eq(sdk.last_game_server["status"]["state"], "Allocated")
	# Back to Ready, reserved for 1 s, then Ready again on its own; then self-allocated.
	assert_true((await done(sdk.ready())).ok)
	assert_true((await done(sdk.reserve(1))).ok)
	assert_true(await wait_until(func(): return states.back() == "Reserved", 5.0), "states: %s" % [states])
	assert_true(await wait_until(func(): return states.back() == "Ready", 5.0), "the reservation ends: %s" % [states])
	assert_true((await done(sdk.allocate())).ok)
	assert_true(await wait_until(func(): return states.back() == "Allocated", 5.0), "states: %s" % [states])
	assert_eq((await done(sdk.reserve(-1))).error, HTTPResponse.ERR_INVALID_REQUEST)


func test_health_pings_continue_through_a_2s_main_thread_stall() -> void:
	var port := await new_sidecar()
	if port == 0: return
	var sdk := make_sdk(port, {"health_interval": 0.25})
	assert_eq(sdk.health_tolerance, 5.0, "the default tolerance")
	assert_true(await wait_until(func(): return sdk.get_stats()["pings_ok"] >= 2, 5.0), "pings start")
	var before := await pings(port)
	var t0: int = before["now_ms"]
	OS.delay_msec(2000)   # the main thread hitches: no frame for 2 s
	await wait_frames(2)
	var after := await pings(port)
	# 0.25 s interval: about 6 pings inside the stall; 3 is the floor on a loaded machine.
	var during := count_between(after["times_ms"], t0 + 300, t0 + 1900)
	assert_ge(during, 3, "pings during the stall (t0=%d): %s" % [t0, after["times_ms"]])
	assert_eq(sdk.get_stats()["pings_skipped"], 0)


func test_a_hung_main_loop_stops_pinging() -> void:
	var port := await new_sidecar()
	if port == 0: return
	var sdk := make_sdk(port, {"health_interval": 0.2, "health_tolerance": 1.0})
	assert_true(await wait_until(func(): return sdk.get_stats()["pings_ok"] >= 2, 5.0), "pings start")
	var t0: int = (await pings(port))["now_ms"]
	OS.delay_msec(3000)   # longer than the tolerance: this is what a deadlock looks like
	await wait_frames(2)
	var after := await pings(port)
	# Pings stop once the last frame is older than 1 s (+ one interval + slack) ...
	var late := count_between(after["times_ms"], t0 + 1700, t0 + 2900)
	assert_eq(late, 0, "no ping from a hung main loop (t0=%d): %s" % [t0, after["times_ms"]])
	assert_gt(sdk.get_stats()["pings_skipped"], 0)
	# ... and resume with the frames.
	var count: int = after["count"]
	assert_true(await _pings_above(port, count), "pings resume")


## True once the instance has received more than `count` pings (polled for up to 3 s).
func _pings_above(port: int, count: int) -> bool:
	var deadline := Time.get_ticks_msec() + 3000
	while Time.get_ticks_msec() < deadline:
		if (await pings(port))["count"] > count:
			return true
		await wait_seconds(0.1)
	return false


func test_calls_wait_for_a_sidecar_that_starts_3s_after_the_game() -> void:
	var port := await new_sidecar(3000)
	if port == 0: return
	var started := Time.get_ticks_msec()
	var sdk := make_sdk(port)
	var states := track_states(sdk)
	var res := await done(sdk.ready(), 30.0)
	if not assert_not_null(res): return
	assert_true(res.ok, res.error_message)
	assert_ge(Time.get_ticks_msec() - started, 2800, "the call waited for the sidecar")
	assert_gt(res.attempts, 1, "refused attempts were retried")
	assert_true(await wait_until(func(): return states.has("Ready"), 10.0), "the watch stream reconnected: %s" % [states])
	assert_true(await wait_until(func(): return sdk.get_stats()["pings_ok"] > 0, 5.0), "pings reach the late sidecar")


func test_outside_agones_calls_fail_at_once_and_nothing_is_sent() -> void:
	if not assert_false(OS.has_environment("AGONES_SDK_HTTP_PORT"), "this test needs AGONES_SDK_HTTP_PORT unset"):
		return
	var sdk := AgonesSDK.new()
	add_child(sdk)
	assert_false(sdk.is_under_agones(), "nothing may listen on 127.0.0.1:9358 for this test")
	var started := Time.get_ticks_msec()
	var res := await done(sdk.ready(), 5.0)
	if not assert_not_null(res): return
	assert_lt(Time.get_ticks_msec() - started, 1000)
	assert_eq(res.error, HTTPResponse.ERR_CONNECT)
	assert_contains(res.error_message, "not running under Agones")
	await wait_seconds(0.3)
	assert_eq(sdk.get_stats()["pings_sent"], 0)


func test_freeing_the_node_ends_awaited_calls() -> void:
	var port := await new_sidecar(600000)   # a sidecar that never comes up during the test
	if port == 0: return
	var sdk := make_sdk(port)
	var task := sdk.ready()
	await wait_frames(2)
	sdk.free()
	var res := await done(task, 5.0)
	if not assert_not_null(res): return
	assert_eq(res.error, HTTPResponse.ERR_CANCELLED)
